"""Rewards: never raise on garbage, adapters' numbers by hand, cache hit counts, pool order and crash survival."""

import math
import os
import time
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from shared.rewards import (
    VALID,
    CachedReward,
    GroupNormalize,
    OutcomeGate,
    ProcessPoolReward,
    Reward,
    RewardFunction,
    WeightedSum,
)


class LengthReward(RewardFunction):
    """Scores words and characters of a text; module level so worker processes can unpickle it."""

    aspects = ("words", "chars")
    invalid_score = -1.0
    output_types = (str,)
    max_output_len = 10_000

    def score(self, prompt, output, context):
        if output == "crash":
            os._exit(3)
        if output == "hang":
            time.sleep(60)
        if output == "raise":
            raise RuntimeError("boom")
        return {"words": len(output.split()), "chars": len(output)}


class Unprintable:
    def __str__(self):
        raise RuntimeError("no str for you")

    __repr__ = __str__


class StrReward(RewardFunction):
    """No type gate: calls str() on whatever comes in."""

    aspects = ("n",)

    def score(self, prompt, output, context):
        text = str(output)
        if len(text) > 1000:
            return {"n": 0.0, VALID: 0.0}
        return {"n": len(text)}


class Fixed(RewardFunction):
    """Returns the per-sample scores given in each context."""

    def __init__(self, aspects):
        self.aspects = tuple(aspects)
        self.calls = 0
        self.seen = 0

    def score_batch(self, prompts, outputs, contexts):
        self.calls += 1
        self.seen += len(outputs)
        return [c["scores"] for c in contexts]


def test_reward_function_satisfies_protocol():
    assert isinstance(LengthReward(), Reward)


def test_garbage_outputs_are_invalid_and_never_raise():
    reward = LengthReward()
    garbage = [None, b"bytes", "x" * 1_000_000, Unprintable(), 17, "raise", "two words"]
    scores = reward(["p"] * len(garbage), garbage)
    invalid = {"words": -1.0, "chars": -1.0, VALID: 0.0}
    assert scores[:-1] == [invalid] * 6
    assert scores[-1] == {"words": 2.0, "chars": 9.0, VALID: 1.0}
    errors = reward.last_errors
    assert errors[0] == "output is NoneType, expected str"
    assert errors[2] == "output length 1000000 exceeds max_output_len 10000"
    assert errors[5] == "RuntimeError: boom"
    assert errors[6] is None


def test_garbage_without_gates_still_scores_invalid():
    reward = StrReward()
    scores = reward(["p"] * 4, [Unprintable(), None, "y" * 5000, "abc"])
    assert [s[VALID] for s in scores] == [0.0, 1.0, 0.0, 1.0]
    assert reward.last_errors[0] == "RuntimeError: no str for you"
    assert scores[1] == {"n": 4.0, VALID: 1.0}  # str(None) == "None": a valid 4-char text to this reward


@pytest.mark.parametrize(
    "bad, reason",
    [
        ({"a": float("nan")}, "aspect 'a' is nan"),
        ({"a": float("inf")}, "aspect 'a' is inf"),
        ({"a": "1.0"}, "aspect 'a' is str, not a number"),
        ({}, "aspect 'a' missing from the score"),
        ({"a": 1.0, VALID: 0.5}, "aspect 'valid' must be 0 or 1, got 0.5"),
        ([1.0], "score returned list, expected a mapping of aspect -> number"),
    ],
)
def test_bad_score_values_become_invalid(bad, reason):
    reward = Fixed(["a"])
    scores = reward(["p", "p"], ["x", "y"], [{"scores": bad}, {"scores": {"a": np.float32(2.5)}}])
    assert scores == [{"a": 0.0, VALID: 0.0}, {"a": 2.5, VALID: 1.0}]
    assert reward.last_errors == [reason, None]


class Batched(RewardFunction):
    """A batch override that fails on a bad sample, falling back to per-sample scoring."""

    aspects = ("len",)

    def __init__(self):
        self.per_sample = 0

    def score_batch(self, prompts, outputs, contexts):
        return [{"len": len(o)} for o in outputs]

    def score(self, prompt, output, context):
        self.per_sample += 1
        return {"len": len(output)}


def test_failing_batch_falls_back_per_sample():
    reward = Batched()
    assert reward(["p"] * 2, ["ab", "c"]) == [{"len": 2.0, VALID: 1.0}, {"len": 1.0, VALID: 1.0}]
    assert reward.per_sample == 0
    scores = reward(["p"] * 3, ["ab", None, "c"])
    assert [s["len"] for s in scores] == [2.0, 0.0, 1.0]
    assert reward.per_sample == 3
    assert reward.last_errors[1].startswith("TypeError")


def test_mismatched_batch_lengths_are_a_caller_error():
    with pytest.raises(ValueError, match="batch lengths differ"):
        LengthReward()(["p"], ["a", "b"])


def ctx(**scores):
    return {"scores": scores}


def test_weighted_sum_by_hand():
    reward = WeightedSum(Fixed(["a", "b"]), {"a": 0.5, "b": 2.0})
    scores = reward(["p", "p"], ["x", "y"], [ctx(a=1.0, b=3.0), ctx(a=-2.0, b=0.25)])
    assert reward.aspects == ("a", "b", "total")
    assert [s["total"] for s in scores] == [6.5, -0.5]  # 0.5*1 + 2*3 ; 0.5*-2 + 2*0.25
    with pytest.raises(ValueError, match="no aspect 'c'"):
        WeightedSum(Fixed(["a"]), {"c": 1.0})


def test_group_normalize_bessel_by_hand():
    reward = GroupNormalize(Fixed(["r"]), "r", group_size=4)
    rs = [1.0, 0.0, 0.0, 1.0, 3.0, 3.0, 3.0, 3.0]
    scores = reward(["p"] * 8, ["o"] * 8, [ctx(r=r) for r in rs])
    # group 1: mean 0.5, Bessel std sqrt((4 * 0.25) / 3) = 0.57735; group 2: std 0 -> 0 / 1e-4 = 0
    expected = [0.5 / (math.sqrt(1 / 3) + 1e-4), -0.5 / (math.sqrt(1 / 3) + 1e-4)]
    got = [s["r/normalized"] for s in scores]
    assert got[:4] == pytest.approx([expected[0], expected[1], expected[1], expected[0]], abs=1e-12)
    assert got[4:] == [0.0] * 4


def test_group_normalize_by_context_group():
    reward = GroupNormalize(Fixed(["r"]), "r")
    contexts = [{"group": "a", **ctx(r=2.0)}, {"group": "b", **ctx(r=5.0)}, {"group": "a", **ctx(r=4.0)}]
    got = [s["r/normalized"] for s in reward(["p"] * 3, ["o"] * 3, contexts)]
    std = math.sqrt(2.0)  # values 2, 4: mean 3, Bessel var (1 + 1) / 1
    assert got == pytest.approx([-1 / (std + 1e-4), 0.0, 1 / (std + 1e-4)])
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        GroupNormalize(Fixed(["r"]), "r", group_size=2)(["p"] * 3, ["o"] * 3, [ctx(r=1.0)] * 3)


def test_outcome_gate_posterior_grpo_by_hand():
    inner = Fixed(["format", "outcome", "process"])
    contexts = [
        ctx(format=1.0, outcome=1.0, process=0.7),  # 1 + 1 + 0.7
        ctx(format=1.0, outcome=0.0, process=0.9),  # process ignored: tests failed
        ctx(format=0.0, outcome=0.5, process=0.9),  # partial outcome: no process reward
    ]
    gated = [s["total"] for s in OutcomeGate(inner)(["p"] * 3, ["o"] * 3, contexts)]
    assert gated == pytest.approx([2.7, 1.0, 0.5])
    baseline = [s["total"] for s in OutcomeGate(inner, gate=False)(["p"] * 3, ["o"] * 3, contexts)]
    assert baseline == [2.0, 1.0, 0.5]


def test_adapters_stack_and_pass_invalid_through():
    reward = GroupNormalize(WeightedSum(LengthReward(), {"words": 1.0, "chars": 0.0}), "total", group_size=2)
    scores = reward(["p"] * 2, ["one two three", None])
    assert scores[1][VALID] == 0.0 and scores[1]["total"] == -1.0  # invalid_score flows into the sum
    assert scores[0]["total/normalized"] > 0 > scores[1]["total/normalized"]
    assert reward.last_errors == [None, "output is NoneType, expected str"]


def test_cache_in_memory_counts_calls():
    inner = Fixed(["a"])
    reward = CachedReward(inner)
    c1, c2 = ctx(a=1.0), ctx(a=2.0)
    assert [s["a"] for s in reward(["p", "p", "p"], ["x", "y", "x"], [c1, c2, c1])] == [1.0, 2.0, 1.0]
    assert (inner.calls, inner.seen, reward.hits, reward.misses) == (1, 2, 1, 2)  # duplicate scored once
    assert [s["a"] for s in reward(["p", "p"], ["y", "x"], [c2, c1])] == [2.0, 1.0]
    assert (inner.calls, inner.seen) == (1, 2)


def test_cache_does_not_keep_invalid_scores():
    inner = Fixed(["a"])
    reward = CachedReward(inner)
    reward(["p"], ["x"], [ctx(a=float("nan"))])
    reward(["p"], ["x"], [ctx(a=float("nan"))])
    assert inner.seen == 2


def test_cache_on_disk_survives_a_new_instance(tmp_path):
    first = Fixed(["a"])
    cached = CachedReward(first, cache_dir=tmp_path / "cache")
    cached(["p", "q"], ["x", "x"], [ctx(a=1.0), ctx(a=3.0)])
    cached.close()
    second = Fixed(["a"])
    again = CachedReward(second, cache_dir=tmp_path / "cache")
    # the context is part of the key: the same output under a new context is scored
    scores = again(["p", "q", "p"], ["x", "x", "x"], [ctx(a=1.0), ctx(a=3.0), ctx(a=9.0)])
    assert [s["a"] for s in scores] == [1.0, 3.0, 9.0]
    assert second.seen == 1 and again.hits == 2
    again.close()


def test_cache_scores_unserialisable_items_every_time():
    inner = LengthReward()
    reward = CachedReward(inner)
    reward(["p"], [b"raw"])
    assert reward.misses == 1 and reward(["p"], [b"raw"])[0][VALID] == 0.0 and reward.misses == 2


def test_pool_keeps_order_and_matches_in_process():
    outputs = [" ".join(["w"] * i) for i in range(7)]
    with ProcessPoolReward(LengthReward(), workers=2, timeout_s=30) as pool:
        pool.start()  # workers up before the first call
        started = pool._pool
        assert started is not None
        assert pool(["p"] * 7, outputs) == LengthReward()(["p"] * 7, outputs)
        assert pool(["p"], ["a b"]) == [{"words": 2.0, "chars": 3.0, VALID: 1.0}]  # pool reused
        assert pool._pool is started


class EnvironmentReward(RewardFunction):
    """Reports the worker's thread settings and whether warm_up ran in it."""

    aspects = ("omp", "torch_threads", "warmed")
    warmed = 0.0

    def warm_up(self):
        self.warmed = 1.0

    def score(self, prompt, output, context):
        import torch

        return {"omp": float(os.environ.get("OMP_NUM_THREADS", -1)), "torch_threads": torch.get_num_threads(),
                "warmed": self.warmed}


def test_pool_workers_get_their_thread_count_and_warm_up(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    with ProcessPoolReward(EnvironmentReward(), workers=2, timeout_s=60, threads_per_worker=1) as pool:
        scores = pool(["p"] * 2, ["a", "b"])
    assert [(s["omp"], s["torch_threads"], s["warmed"]) for s in scores] == [(1.0, 1.0, 1.0)] * 2
    assert os.environ["OMP_NUM_THREADS"] == "7"  # the parent's environment is restored


def test_pool_survives_a_worker_that_exits():
    outputs = ["a", "b c", "crash", "d e f", "g"]
    with ProcessPoolReward(LengthReward(), workers=2, timeout_s=30, chunk_size=1) as pool:
        scores = pool(["p"] * 5, outputs)
        assert [s[VALID] for s in scores] == [1.0, 1.0, 0.0, 1.0, 1.0]
        assert [s["words"] for s in scores] == [1.0, 2.0, -1.0, 3.0, 1.0]
        assert pool.last_errors[2] == "reward worker process died"
        assert pool(["p"], ["still works"])[0]["words"] == 2.0


def test_pool_treats_a_pool_broken_during_submission_as_a_crash(monkeypatch):
    # A worker can die (and break the executor) before the rest of its wave is submitted.
    with ProcessPoolReward(LengthReward(), workers=2, timeout_s=30, chunk_size=1) as pool:
        executor = pool._get_pool()
        real_submit, calls = executor.submit, []

        def submit_then_break(fn, *args):
            calls.append(args)
            if len(calls) == 2:
                raise BrokenProcessPool("a child process terminated abruptly")
            return real_submit(fn, *args)

        monkeypatch.setattr(executor, "submit", submit_then_break)
        scores = pool(["p"] * 2, ["a", "b c"])
        assert [s["words"] for s in scores] == [1.0, 2.0]
        assert pool.last_errors == [None, None]


def test_pool_times_out_a_hanging_chunk_only():
    with ProcessPoolReward(LengthReward(), workers=2, timeout_s=2, chunk_size=2) as pool:
        start = time.monotonic()
        scores = pool(["p"] * 4, ["hang", "a", "b c", "d"])
        assert time.monotonic() - start < 20
        assert [s[VALID] for s in scores] == [0.0, 0.0, 1.0, 1.0]
        assert pool.last_errors[:2] == ["reward timed out after 2 s"] * 2


def test_pool_scores_unpicklable_samples_invalid():
    with ProcessPoolReward(LengthReward(), workers=1, timeout_s=30) as pool:
        scores = pool(["p", "p"], [lambda: 0, "ok"])
        assert [s[VALID] for s in scores] == [0.0, 1.0]
        assert pool.last_errors[0].startswith("cannot send the sample to a worker")


def test_pool_rejects_unpicklable_reward():
    reward = LengthReward()
    reward.hook = lambda: 0
    with pytest.raises(ValueError, match="picklable"):
        ProcessPoolReward(reward)


class RaisingProtocolReward:
    """A bare Protocol reward (not a RewardFunction) that raises on its own."""

    aspects = ("a",)

    def __call__(self, prompts, outputs, contexts=None):
        if "bad" in outputs:
            raise ValueError("cannot score")
        return [{"a": 1.0, VALID: 1.0} for _ in outputs]


def test_pool_scores_a_chunk_whose_reward_raised_invalid():
    with ProcessPoolReward(RaisingProtocolReward(), workers=2, timeout_s=30, chunk_size=2) as pool:
        scores = pool(["p"] * 4, ["ok", "bad", "ok", "ok"])
        assert [s[VALID] for s in scores] == [0.0, 0.0, 1.0, 1.0]
        assert pool.last_errors[:2] == ["ValueError: cannot score"] * 2
