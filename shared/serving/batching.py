"""Merge concurrent requests into batched generator calls, run one at a time in a worker thread."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from shared.rewards import describe_error
from shared.serving.worker import Worker

_log = logging.getLogger(__name__)


class GeneratorError(RuntimeError):
    """The generator raised, or returned the wrong number of outputs, for a batch."""


@dataclass
class _Item:
    prompt: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class _Group:
    params: dict[str, Any]
    items: list[_Item]


class Batcher:
    """Queues prompts and hands them to `generate(prompts, params)` in batches of equal params.

    A batch holds up to `max_batch_size` prompts. It leaves as soon as it is full, or once its
    oldest prompt has waited `max_wait_ms`; prompts keep queueing while the generator is busy, so
    under load every call is as full as allowed. Calls run one at a time in a single worker thread
    (a model is rarely thread-safe and a GPU runs one batch at a time anyway), so the event loop
    stays free to answer; pass the app's `worker` to share that thread with its other model calls.
    A request larger than `max_batch_size` spans several calls; its outputs come back in prompt
    order. A prompt is any object `generate` takes (text, a conversation).
    """

    def __init__(
        self,
        generate: Callable[[list[Any], dict[str, Any]], list[Any]],
        max_batch_size: int,
        max_wait_ms: float,
        worker: Worker | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._generate = generate
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self._groups: dict[Hashable, _Group] = {}
        self._alone = itertools.count()
        self._task: asyncio.Task | None = None
        self._owns_worker = worker is None
        self._worker = worker or Worker()
        self._wake: asyncio.Event | None = None
        self.in_flight = 0

    @property
    def queue_depth(self) -> int:
        """Return the number of prompts waiting for a generator call."""
        return sum(len(g.items) for g in self._groups.values())

    async def submit(self, prompts: list[Any], params: dict[str, Any], alone: bool = False) -> list[Any]:
        """Return the outputs for prompts, in order; `alone` keeps them out of other requests' batches."""
        self._start()
        loop = asyncio.get_running_loop()
        items = [_Item(p, loop.create_future()) for p in prompts]
        # params are validated JSON scalars, so a sorted tuple of them is a hashable key
        key = ("alone", next(self._alone)) if alone else tuple(sorted(params.items()))
        self._groups.setdefault(key, _Group(params, [])).items.extend(items)
        self._wake.set()
        results = await asyncio.gather(*(item.future for item in items), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results

    async def close(self) -> None:
        """Stop batching, cancel every queued prompt and release the thread (unless the worker was given)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for group in self._groups.values():
            for item in group.items:
                item.future.cancel()
        self._groups.clear()
        if self._owns_worker:
            self._worker.close()
        self._task = self._wake = None

    def _start(self) -> None:
        # started on first use, inside the serving event loop, whoever runs the app
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            params, items = await self._next_batch()
            self.in_flight = len(items)
            try:
                outputs = await self._worker.run(self._call, [i.prompt for i in items], params)
            except Exception as exc:
                _log.error("generator call on %d prompts failed", len(items), exc_info=exc)
                error = exc if isinstance(exc, GeneratorError) else GeneratorError(describe_error(exc))
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(error)
            else:
                for item, output in zip(items, outputs, strict=True):
                    if not item.future.done():
                        item.future.set_result(output)
            finally:
                self.in_flight = 0

    def _call(self, prompts: list[Any], params: dict[str, Any]) -> list[Any]:
        outputs = self._generate(prompts, params)
        if not isinstance(outputs, (list, tuple)):
            raise GeneratorError(f"generator returned {type(outputs).__name__}, expected a list")
        if len(outputs) != len(prompts):
            raise GeneratorError(f"generator returned {len(outputs)} outputs for {len(prompts)} prompts")
        return outputs

    async def _next_batch(self) -> tuple[dict[str, Any], list[_Item]]:
        while True:
            self._drop_cancelled()
            now = time.monotonic()
            by_age = sorted(self._groups.items(), key=lambda kv: kv[1].items[0].enqueued)
            full = [kv for kv in by_age if len(kv[1].items) >= self.max_batch_size]
            if full or (by_age and now - by_age[0][1].items[0].enqueued >= self.max_wait_s):
                key, group = (full or by_age)[0]
                batch, group.items = group.items[: self.max_batch_size], group.items[self.max_batch_size :]
                if not group.items:
                    del self._groups[key]
                return group.params, batch
            self._wake.clear()
            timeout = self.max_wait_s - (now - by_age[0][1].items[0].enqueued) if by_age else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _drop_cancelled(self) -> None:
        # a client that disconnected cancels its futures; don't spend a generator call on them
        for key in list(self._groups):
            group = self._groups[key]
            group.items = [item for item in group.items if not item.future.cancelled()]
            if not group.items:
                del self._groups[key]
