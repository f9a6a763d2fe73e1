"""Score a slow reward in worker processes; a chunk whose worker crashed or timed out is scored invalid."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import pickle
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from shared.rewards.protocol import Reward, describe_error, invalid_scores, normalize_batch

_worker_reward: Any = None


def _init_worker(reward: Reward) -> None:
    global _worker_reward
    _worker_reward = reward
    warm_up = getattr(reward, "warm_up", None)
    if callable(warm_up):  # load models now, before any chunk's timeout clock runs
        warm_up()


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def _thread_environment(threads: int | None):
    """Set the thread-count variables that processes spawned inside the block start with."""
    if threads is None:
        yield
        return
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    os.environ.update({k: str(threads) for k in THREAD_VARIABLES})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _ping() -> None:
    return None


def _score_chunk(prompts: list, outputs: list, contexts: list) -> tuple[list[dict[str, float]], list[str | None]]:
    scores = list(_worker_reward(prompts, outputs, contexts))
    errors = getattr(_worker_reward, "last_errors", None) or [None] * len(scores)
    return scores, list(errors)


def _picklable(*values: Any) -> str | None:
    try:
        pickle.dumps(values)
    except Exception as exc:
        return f"cannot send the sample to a worker: {describe_error(exc)}"
    return None


class ProcessPoolReward:
    """Runs a picklable reward over chunks of a batch in `workers` spawned processes, keeping order.

    The pool starts on first use (workers load the reward once, calling its `warm_up()` if it has
    one) and is reused across calls. Each
    wave of up to `workers` chunks must finish within `timeout_s` of its submission. A timed-out
    chunk is scored invalid and the pool is killed and restarted. When a worker dies (os._exit,
    segfault) every chunk in flight fails; those are retried one at a time, and the one that dies
    alone is scored invalid. Only a reward that cannot be loaded in a worker makes a call raise.
    With `threads_per_worker`, each worker's OpenMP / BLAS / torch thread pools get that many
    threads (set through the environment the workers start with), so that `workers` processes
    do not oversubscribe the cores.
    """

    def __init__(
        self, reward: Reward, workers: int = 2, timeout_s: float = 60.0, chunk_size: int | None = None,
        threads_per_worker: int | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
        try:
            pickle.dumps(reward)
        except Exception as exc:
            raise ValueError(f"ProcessPoolReward needs a picklable reward: {describe_error(exc)}") from exc
        self.reward = reward
        self.aspects = tuple(reward.aspects)
        self.invalid_score = getattr(reward, "invalid_score", 0.0)
        self.workers, self.timeout_s, self.chunk_size = workers, timeout_s, chunk_size
        self.threads_per_worker = threads_per_worker
        self.last_errors: list[str | None] = []
        self._pool: ProcessPoolExecutor | None = None

    def __call__(
        self, prompts: Sequence[Any], outputs: Sequence[Any], contexts: Sequence[dict] | None = None
    ) -> list[dict[str, float]]:
        """Return one score dict per sample, in input order; never raises on a crashing or hanging reward."""
        prompts, outputs, contexts = normalize_batch(prompts, outputs, contexts)
        n = len(outputs)
        results: list[dict[str, float]] = [invalid_scores(self.aspects, self.invalid_score) for _ in range(n)]
        self.last_errors = [None] * n
        sendable = []
        for i in range(n):
            reason = _picklable(prompts[i], outputs[i], contexts[i])
            if reason is None:
                sendable.append(i)
            else:
                self.last_errors[i] = reason
        size = self.chunk_size or max(1, math.ceil(len(sendable) / self.workers))
        queue = [sendable[s : s + size] for s in range(0, len(sendable), size)]
        suspects: list[list[int]] = []
        while queue or suspects:
            if queue:
                wave, queue = queue[: self.workers], queue[self.workers :]
            else:
                wave, suspects = suspects[:1], suspects[1:]
            isolated = len(wave) == 1
            for chunk, (status, payload) in zip(wave, self._run_wave(wave, prompts, outputs, contexts)):
                if status == "ok":
                    scores, errors = payload
                    for i, s, err in zip(chunk, scores, errors):
                        results[i], self.last_errors[i] = dict(s), err
                elif status == "crashed" and not isolated:
                    suspects.append(chunk)
                else:
                    for i in chunk:
                        self.last_errors[i] = payload
        return results

    def _run_wave(self, wave: list[list[int]], prompts: list, outputs: list, contexts: list) -> list[tuple[str, Any]]:
        pool = self._get_pool()
        futures: list[Future] = []
        for c in wave:
            try:
                future = pool.submit(
                    _score_chunk, [prompts[i] for i in c], [outputs[i] for i in c], [contexts[i] for i in c]
                )
            except BrokenProcessPool as exc:
                # A chunk submitted earlier in this wave already killed its worker.
                future = Future()
                future.set_exception(exc)
            futures.append(future)
        _, not_done = wait(futures, timeout=self.timeout_s)
        out: list[tuple[str, Any]] = []
        for chunk, f in zip(wave, futures):
            if f in not_done:
                out.append(("timeout", f"reward timed out after {self.timeout_s} s"))
                continue
            exc = f.exception()
            if isinstance(exc, BrokenProcessPool):
                out.append(("crashed", "reward worker process died"))
            elif exc is not None:
                out.append(("error", describe_error(exc)))
            elif len(f.result()[0]) != len(chunk):
                out.append(("error", f"reward returned {len(f.result()[0])} scores for {len(chunk)} samples"))
            else:
                out.append(("ok", f.result()))
        if not_done or any(status == "crashed" for status, _ in out):
            self._discard_pool()
        return out

    def start(self) -> None:
        """Start the worker processes (each loads the reward) now rather than on the first call."""
        self._get_pool()

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.reward,),
            )
            # Start the workers (and load the reward) before any timeout clock runs.
            with _thread_environment(self.threads_per_worker):
                pings = [self._pool.submit(_ping) for _ in range(self.workers)]
            for f in pings:
                f.result()
        return self._pool

    def _discard_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
        if kill is not None:
            kill()
        else:
            # Before 3.14 the executor has no public way to stop a running task.
            for proc in list((pool._processes or {}).values()):
                proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Shut the worker processes down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ProcessPoolReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
