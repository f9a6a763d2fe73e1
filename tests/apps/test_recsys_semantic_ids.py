"""Semantic IDs: balanced k-means (exact and greedy), residual codes, collision modes, serialisation, the trie."""

from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

import apps.recsys.semantic_ids as sid_module
from apps.recsys.semantic_ids import (ItemTrie, SemanticIds, assign_semantic_ids, balanced_kmeans,
                                      residual_codes)


def _ids(n: int) -> list[str]:
    return [f"i{i}" for i in range(n)]


def _prefix_free(codes: list[tuple[int, ...]]) -> bool:
    prefixes = {c[:j] for c in codes for j in range(1, len(c))}
    return not prefixes & set(codes)


# --- balanced k-means ---------------------------------------------------------------------------

@pytest.mark.parametrize("n,k", [(1000, 7), (1682, 16), (600, 150)])
@pytest.mark.parametrize("assignment", ["exact", "greedy"])
def test_balanced_sizes(n, k, assignment):
    x = np.random.default_rng(1).normal(size=(n, 16))
    labels, centroids = balanced_kmeans(x, k, iterations=3, seed=0, assignment=assignment)
    sizes = np.bincount(labels, minlength=k)
    assert labels.shape == (n,) and centroids.shape == (k, 16)
    assert sizes.min() == n // k and sizes.max() == -(-n // k) and sizes.sum() == n
    assert sorted(sizes.tolist()).count(n // k + 1) == n % k
    for j in range(k):
        np.testing.assert_allclose(centroids[j], x[labels == j].mean(0))


def test_auto_goes_greedy_above_the_threshold(monkeypatch):
    def no_exact(d):
        raise AssertionError("exact assignment used above the threshold")

    monkeypatch.setattr(sid_module, "EXACT_MAX_CELLS", 100)
    monkeypatch.setattr(sid_module, "_assign_exact", no_exact)
    labels, _ = balanced_kmeans(np.random.default_rng(0).normal(size=(50, 4)), 3)
    assert sorted(np.bincount(labels).tolist()) == [16, 17, 17]


def test_exact_assignment_is_optimal_and_greedy_no_better():
    rng = np.random.default_rng(3)
    n, k = 7, 3
    d = rng.random((n, k))
    best = min(sum(d[i, l] for i, l in enumerate(lab)) for lab in itertools.product(range(k), repeat=n)
               if sorted(np.bincount(lab, minlength=k).tolist()) == [2, 2, 3])
    exact = sid_module._assign_exact(d)
    greedy = sid_module._assign_greedy(d)
    assert d[np.arange(n), exact].sum() == pytest.approx(best)
    assert sorted(np.bincount(greedy, minlength=k).tolist()) == [2, 2, 3]
    assert d[np.arange(n), greedy].sum() >= best - 1e-12


@pytest.mark.parametrize("assignment", ["exact", "greedy"])
def test_recovers_separated_blobs(assignment):
    rng = np.random.default_rng(7)
    centres = rng.normal(scale=20.0, size=(4, 8))
    x = np.concatenate([c + rng.normal(size=(50, 8)) for c in centres])
    truth = np.repeat(np.arange(4), 50)
    labels, centroids = balanced_kmeans(x, 4, seed=0, assignment=assignment)
    for blob in range(4):
        assert len(set(labels[truth == blob].tolist())) == 1
    assert len(set(labels.tolist())) == 4
    assert np.abs(np.sort(centroids, 0) - np.sort(centres, 0)).max() < 1.0


def test_balanced_kmeans_errors():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        balanced_kmeans(x, 0)
    with pytest.raises(ValueError, match="need at least 6 points"):
        balanced_kmeans(x, 6)
    with pytest.raises(ValueError, match="2-D"):
        balanced_kmeans(np.zeros(5), 2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        balanced_kmeans(np.array([[0.0, np.nan], [1.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="assignment must be one of"):
        balanced_kmeans(x, 2, assignment="fast")


def test_identical_points_still_balanced():
    labels, _ = balanced_kmeans(np.ones((10, 3)), 3)
    assert sorted(np.bincount(labels).tolist()) == [3, 3, 4]


# --- residual codes -----------------------------------------------------------------------------

def test_residual_codes_shape_and_error_decreases():
    x = np.random.default_rng(2).normal(size=(400, 12))
    codes = residual_codes(x, [8, 8, 8], iterations=10, seed=0)
    assert codes.shape == (400, 3) and codes.dtype == np.int64
    residual, errors = x.copy(), [float((x ** 2).sum())]
    for level in range(3):
        assert sorted(np.bincount(codes[:, level]).tolist()) == [50] * 8
        means = np.stack([residual[codes[:, level] == j].mean(0) for j in range(8)])
        residual = residual - means[codes[:, level]]
        errors.append(float((residual ** 2).sum()))
    assert all(a > b for a, b in zip(errors, errors[1:]))


# --- semantic IDs and collisions ----------------------------------------------------------------

def test_extra_level_gives_unique_prefix_free_codes():
    x = np.random.default_rng(4).normal(size=(300, 16))
    sids = assign_semantic_ids(_ids(300), x, [4, 4, 4], collisions="extra_level", iterations=5)
    assert len(set(sids.codes)) == 300 and _prefix_free(sids.codes)
    assert {len(c) for c in sids.codes} == {3, 4}
    long = [c for c in sids.codes if len(c) == 4]
    assert sids.collisions == len(long) > 0
    by_base: dict[tuple[int, ...], list[int]] = {}
    for c in long:
        by_base.setdefault(c[:3], []).append(c[3])
    assert all(sorted(t) == list(range(len(t))) for t in by_base.values())
    assert sids.extra_size == max(len(t) for t in by_base.values())
    assert not set(by_base) & {c for c in sids.codes if len(c) == 3}
    for item, code in zip(sids.item_ids, sids.codes):
        assert sids.code_of(item) == code and sids.item_of(list(code)) == item
    stats = sids.stats()
    assert stats["extra_token_items"] == len(long) and stats["max_code_length"] == 4
    assert [lv["size"] for lv in stats["levels"]] == [4, 4, 4, sids.extra_size]
    assert all(lv["min_cluster"] == lv["max_cluster"] == 75 for lv in stats["levels"][:3])


def test_extra_token_orders_by_distance_to_the_centroid():
    x = np.array([[0.0, 3.0], [0.0, 0.5], [2.0, 0.0], [0.0, -1.0], [-0.5, 0.0]])  # mean (0.3, 0.5)
    sids = assign_semantic_ids(list("abcde"), x, [1])
    dist = ((x - x.mean(0)) ** 2).sum(1)
    assert [sids.code_of(i)[1] for i in "abcde"] == np.argsort(np.argsort(dist)).tolist()
    assert sids.collisions == 5 and sids.extra_size == 5


def test_reassign_fills_unused_codes():
    x = np.random.default_rng(5).normal(size=(200, 16))
    sids = assign_semantic_ids(_ids(200), x, [8, 8, 8], collisions="reassign", iterations=5)
    assert len(set(sids.codes)) == 200 and all(len(c) == 3 for c in sids.codes)
    assert sids.collisions > 0 and sids.extra_size == 0 and sids.method == "reassign"
    small = assign_semantic_ids(_ids(8), x[:8], [2, 4], collisions="reassign")
    assert set(small.codes) == set(itertools.product(range(2), range(4)))


def test_reassign_overfull_prefix_raises():
    x = np.random.default_rng(6).normal(size=(20, 4))
    with pytest.raises(ValueError, match="holds 10 items but the last codebook has 2 codes.*extra_level"):
        assign_semantic_ids(_ids(20), x, [2, 2], collisions="reassign")


def test_assign_input_errors():
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="duplicate item id 'a'"):
        assign_semantic_ids(["a", "b", "a"], x, [2])
    with pytest.raises(ValueError, match="3 embedding rows for 2 items"):
        assign_semantic_ids(["a", "b"], x, [2])
    with pytest.raises(ValueError, match="codebook sizes must be integers >= 1"):
        assign_semantic_ids(["a", "b", "c"], x, [2, 0])
    with pytest.raises(ValueError, match="collisions must be one of"):
        assign_semantic_ids(["a", "b", "c"], x, [2], collisions="drop")
    with pytest.raises(ValueError, match="exceeds the number of items"):
        assign_semantic_ids(["a", "b", "c"], x, [4])


def test_round_trip_and_malformed_dicts():
    x = np.random.default_rng(8).normal(size=(60, 6))
    sids = assign_semantic_ids(_ids(60), x, [3, 3], iterations=5)
    back = SemanticIds.from_dict(json.loads(json.dumps(sids.to_dict())))
    assert back == sids and back.to_dict() == sids.to_dict()
    assert back.code_of("i7") == sids.code_of("i7")
    with pytest.raises(ValueError, match="unknown item 'zz'"):
        sids.code_of("zz")
    assert sids.item_of((9, 9)) is None

    good = sids.to_dict()
    cases = [
        ({k: v for k, v in good.items() if k != "codes"}, "'codes': missing"),
        ({**good, "codes": good["codes"][:-1]}, "'codes': 59 codes for 60 items"),
        ({**good, "codes": [["0", 1]] + good["codes"][1:]}, "'codes': each code must be a list of integers"),
        ({**good, "codes": [[0, 7]] + good["codes"][1:]}, "'codes': .* outside codebook sizes"),
        ({**good, "item_ids": ["i1"] + good["item_ids"][1:]}, "'item_ids': duplicate item 'i1'"),
        ({**good, "method": "magic"}, "'method': must be one of"),
        ({**good, "extra_size": -1}, "'extra_size'"),
        ({**good, "codebook_sizes": [3, 0]}, "'codebook_sizes'"),
        ({**good, "collisions": "many"}, "'collisions'"),
        (["not", "a", "dict"], "needs a dict"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            SemanticIds.from_dict(bad)
    clash = {**good, "item_ids": ["a", "b"], "codes": [[0, 1], [0, 1, 0]], "extra_size": 1, "collisions": 0}
    with pytest.raises(ValueError, match="'codes': code \\(0, 1\\) is a prefix"):
        SemanticIds.from_dict(clash)


# --- trie ---------------------------------------------------------------------------------------

def _small_trie() -> ItemTrie:
    codes = {"a": (0, 0, 0), "b": (0, 0, 1), "c": (0, 1, 1), "d": (1, 1, 0, 0), "e": (1, 1, 0, 1), "f": (1, 0, 0)}
    return ItemTrie(SemanticIds(list(codes), list(codes.values()), [2, 2, 2], 2, 2, "extra_level"))


def test_trie_children_and_items():
    trie = _small_trie()
    assert trie.children(()) == [0, 1] and trie.children((0,)) == [0, 1] and trie.children((0, 1)) == [1]
    assert trie.children((1, 1, 0)) == [0, 1] and trie.children((0, 0, 0)) == [] and trie.children((5,)) == []
    assert trie.item_at((1, 1, 0, 1)) == "e" and trie.item_at((1, 1, 0)) is None and trie.item_at((0, 1)) is None
    assert trie.is_leaf((1, 0, 0)) and not trie.is_leaf((1, 1, 0)) and not trie.is_leaf(())


def test_trie_allowed_with_banned_sets():
    trie = _small_trie()
    assert trie.allowed(()) == [0, 1] and trie.allowed((1, 1, 0)) == [0, 1]
    assert trie.allowed((), frozenset("abc")) == [1]  # every item under branch 0 banned
    assert trie.allowed((0,), frozenset("abc")) == []
    assert trie.allowed((1, 1, 0), frozenset("d")) == [1] and trie.allowed((1,), frozenset("d")) == [0, 1]
    assert trie.allowed((1,), frozenset("de")) == [0]
    assert trie.allowed((0, 0), frozenset({"a", "unknown"})) == [1]
    assert trie.allowed((), frozenset("abcdef")) == []
    assert trie.allowed((0, 0, 0), frozenset("b")) == [] and trie.allowed((7, 7), frozenset("a")) == []
    assert trie.allowed([1, 1, 0], {"e"}) == [0]  # lists and plain sets work too


def test_trie_walk_reaches_exactly_the_unbanned_items():
    x = np.random.default_rng(9).normal(size=(300, 8))
    sids = assign_semantic_ids(_ids(300), x, [4, 4, 4], iterations=5)
    trie = ItemTrie(sids)
    banned = frozenset(sids.item_ids[::3])
    reached, stack = set(), [()]
    while stack:
        prefix = stack.pop()
        item = trie.item_at(prefix)
        if item is not None:
            reached.add(item)
            continue
        options = trie.allowed(prefix, banned)
        assert options, f"dead end at {prefix}"
        stack.extend(prefix + (c,) for c in options)
    assert reached == set(sids.item_ids) - banned


def test_trie_allowed_is_fast():
    rng = np.random.default_rng(10)
    n = 1700
    flat = rng.choice(16 ** 3, size=n, replace=False)
    codes = [(int(c) // 256, int(c) // 16 % 16, int(c) % 16) for c in flat]
    sids = SemanticIds(_ids(n), codes, [16, 16, 16], 0, 0, "extra_level")
    trie = ItemTrie(sids)
    banned = frozenset(rng.choice(sids.item_ids, size=300, replace=False).tolist())
    prefixes = [c[:j] for c in (codes[i] for i in rng.integers(n, size=200)) for j in range(3)]
    trie.allowed((), banned)  # first use computes the banned counts
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        for p in prefixes:
            trie.allowed(p, banned)
    mean = (time.perf_counter() - start) / (rounds * len(prefixes))
    assert mean < 200e-6, f"allowed() took {mean * 1e6:.1f} µs per call"
