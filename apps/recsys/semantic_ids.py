"""Semantic IDs: each item becomes a short tuple of codebook indices, and a trie of them constrains decoding.

OneRec's tokenizer is residual balanced k-means over item embeddings: level 1 clusters the embeddings,
level l clusters the residuals left after subtracting the centroids chosen at levels 1..l-1, and every
level's clusters are exactly balanced (floor(n/k) or ceil(n/k) items), so every code token is used about
equally often. Each level's codebook is global: one set of centroids for all items.

Items that end on the same full code (a collision) are told apart in one of two ways:

- "extra_level" (MiniOneRec): every item of a colliding group gets a 4th token 0..g-1, nearest to the
  last-level centroid first; items with a unique code keep the base length. No code is a prefix of another.
- "reassign": the item nearest the last-level centroid keeps the code, the others move to unused
  last-level codes under the same prefix, nearest first; all codes keep the base length.

`ItemTrie` answers, for a partial code, which next tokens still lead to an item, optionally leaving out
a banned set of items (the user's history), in O(children) per call once a banned set has been seen.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

# The exact assignment builds an n x (k*ceil(n/k)) cost matrix (about n*n cells); above this it is greedy.
EXACT_MAX_CELLS = 4_000_000
ASSIGNMENTS = ("auto", "exact", "greedy")
COLLISION_MODES = ("extra_level", "reassign")


def _check_points(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows x dims), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contain NaN or infinite values")
    return x


def _sq_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Return the (n, k) squared Euclidean distances from each point to each centroid."""
    d = (x * x).sum(1)[:, None] - 2.0 * (x @ centroids.T) + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d, 0.0)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Return k initial centroids drawn by k-means++ (D^2 sampling)."""
    n = x.shape[0]
    chosen = [int(rng.integers(n))]
    d2 = _sq_distances(x, x[chosen]).ravel()
    for _ in range(1, k):
        total = d2.sum()
        if total > 0:
            i = int(rng.choice(n, p=d2 / total))
        else:  # every point coincides with a chosen centroid: any unchosen point will do
            free = np.setdiff1d(np.arange(n), chosen)
            i = int(rng.choice(free))
        chosen.append(i)
        d2 = np.minimum(d2, _sq_distances(x, x[i : i + 1]).ravel())
    return x[chosen].copy()


def _assign_exact(d: np.ndarray) -> np.ndarray:
    """Return labels minimising total distance with every cluster holding floor(n/k) or ceil(n/k) points.

    Columns are cluster slots: floor(n/k) mandatory slots per cluster plus, when k does not divide n, one
    optional slot per cluster. The k - n%k optional slots left over are filled by dummy rows that cost
    nothing there and cannot take a mandatory slot, so exactly n%k clusters get the extra point.
    """
    n, k = d.shape
    floor, rem = divmod(n, k)
    mandatory = np.repeat(np.arange(k), floor)
    if rem == 0:
        _, cols = linear_sum_assignment(d[:, mandatory])
        return mandatory[cols]
    slots = np.concatenate([mandatory, np.arange(k)])
    cost = np.zeros((n + k - rem, slots.size))
    cost[:n] = d[:, slots]
    cost[n:, : mandatory.size] = np.inf
    _, cols = linear_sum_assignment(cost)  # rows come back in order, so the first n are the points
    return slots[cols[:n]]


def _assign_greedy(d: np.ndarray) -> np.ndarray:
    """Return balanced labels chosen greedily (an approximation of `_assign_exact` for large n).

    Points go in order of regret (second-best minus best distance, largest first), each to its nearest
    cluster with room left; a cluster has room for ceil(n/k) points until n%k clusters have reached that,
    then floor(n/k), so the sizes are exactly those of the exact assignment.
    """
    n, k = d.shape
    if k == 1:
        return np.zeros(n, dtype=np.int64)
    floor, rem = divmod(n, k)
    # Only the few nearest clusters of each point are sorted; a point whose few are all full scans its row.
    top = min(k, 8)
    near = np.argpartition(d, top - 1, axis=1)[:, :top] if top < k else np.tile(np.arange(k), (n, 1))
    near = np.take_along_axis(near, np.argsort(np.take_along_axis(d, near, axis=1), axis=1, kind="stable"), 1)
    best = np.take_along_axis(d, near[:, :2], axis=1)
    order = np.argsort(best[:, 0] - best[:, 1], kind="stable")  # most negative = largest regret first
    cap = [floor + (rem > 0)] * k
    size = [0] * k
    full_at_ceil = 0
    labels = np.empty(n, dtype=np.int64)
    near_rows = near.tolist()
    for i in order.tolist():
        j = next((j for j in near_rows[i] if size[j] < cap[j]), -1)
        if j < 0:
            j = next(int(j) for j in np.argsort(d[i], kind="stable") if size[j] < cap[j])
        labels[i] = j
        size[j] += 1
        if rem and size[j] == floor + 1:
            full_at_ceil += 1
            if full_at_ceil == rem:
                cap = [floor + 1 if s == floor + 1 else floor for s in size]
    return labels


def _centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    sums = np.zeros((k, x.shape[1]))
    np.add.at(sums, labels, x)
    return sums / np.bincount(labels, minlength=k)[:, None]


def balanced_kmeans(
    x: np.ndarray, k: int, *, iterations: int = 20, seed: int = 0, assignment: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the rows of x into k clusters of floor(n/k) or ceil(n/k) points each.

    k-means++ initialisation (seeded), then Lloyd iterations whose assignment step respects the sizes,
    stopping early when the labels stop changing. `assignment`: "exact" (linear_sum_assignment over
    cluster slots, about n*n cells), "greedy" (regret order, an approximation), or "auto": exact when
    n*n <= EXACT_MAX_CELLS. Returns (labels (n,) int64, centroids (k, d): the mean of each cluster).
    """
    x = _check_points(x, "points")
    n = x.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if k > n:
        raise ValueError(f"k={k} clusters need at least {k} points, got {n}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {assignment!r}")
    exact = assignment == "exact" or (assignment == "auto" and n * n <= EXACT_MAX_CELLS)
    assign = _assign_exact if exact else _assign_greedy
    k = int(k)
    centroids = _kmeans_pp(x, k, np.random.default_rng(seed))
    labels: np.ndarray | None = None
    for _ in range(iterations):
        new = assign(_sq_distances(x, centroids))
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centroids = _centroids(x, labels, k)
    assert labels is not None
    return labels.astype(np.int64), centroids


def _check_sizes(codebook_sizes: Sequence[int]) -> list[int]:
    sizes = list(codebook_sizes)
    if not sizes:
        raise ValueError("codebook_sizes must name at least one level")
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"codebook sizes must be integers >= 1, got {sizes}")
    return [int(s) for s in sizes]


def _residual_quantize(
    x: np.ndarray, sizes: list[int], iterations: int, seed: int
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Return (codes (n, levels), each level's centroids, the residual each level clustered)."""
    codes = np.empty((x.shape[0], len(sizes)), dtype=np.int64)
    centroids, residuals = [], []
    residual = x
    for level, k in enumerate(sizes):
        labels, cents = balanced_kmeans(residual, k, iterations=iterations, seed=seed + level)
        codes[:, level] = labels
        centroids.append(cents)
        residuals.append(residual)
        residual = residual - cents[labels]
    return codes, centroids, residuals


def residual_codes(
    x: np.ndarray, codebook_sizes: Sequence[int], *, iterations: int = 20, seed: int = 0
) -> np.ndarray:
    """Return the (n, levels) int64 codes of residual balanced k-means (level l uses seed + l)."""
    x = _check_points(x, "embeddings")
    codes, _, _ = _residual_quantize(x, _check_sizes(codebook_sizes), iterations, seed)
    return codes


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass
class SemanticIds:
    """Each item's semantic ID: `codes[i]` is the code of `item_ids[i]`.

    Codes have len(codebook_sizes) tokens, or one more (a token < extra_size) for items whose base code
    collided under the "extra_level" method. `collisions` counts the items that shared a full base code
    before resolution. Constructing one validates it (ValueError naming the bad field).
    """

    item_ids: list[str]
    codes: list[tuple[int, ...]]
    codebook_sizes: list[int]
    extra_size: int
    collisions: int
    method: str
    _by_item: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    _by_code: dict[tuple[int, ...], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.item_ids = list(self.item_ids)
        self.codes = [tuple(int(c) for c in code) for code in self.codes]
        self.codebook_sizes = list(self.codebook_sizes)
        self._validate()
        self._by_item = dict(zip(self.item_ids, self.codes))
        self._by_code = dict(zip(self.codes, self.item_ids))

    def _validate(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"SemanticIds field '{name}': {why}")

        if not all(isinstance(i, str) for i in self.item_ids):
            raise bad("item_ids", "every item id must be a string")
        dup = next((i for i, c in Counter(self.item_ids).items() if c > 1), None)
        if dup is not None:
            raise bad("item_ids", f"duplicate item {dup!r}")
        if not self.codebook_sizes or not all(_is_int(s) and s >= 1 for s in self.codebook_sizes):
            raise bad("codebook_sizes", f"must be a non-empty list of integers >= 1, got {self.codebook_sizes}")
        if not _is_int(self.extra_size) or self.extra_size < 0:
            raise bad("extra_size", f"must be an integer >= 0, got {self.extra_size!r}")
        if not _is_int(self.collisions) or not 0 <= self.collisions <= len(self.item_ids):
            raise bad("collisions", f"must be an integer in 0..{len(self.item_ids)}, got {self.collisions!r}")
        if self.method not in COLLISION_MODES:
            raise bad("method", f"must be one of {COLLISION_MODES}, got {self.method!r}")
        if len(self.codes) != len(self.item_ids):
            raise bad("codes", f"{len(self.codes)} codes for {len(self.item_ids)} items")
        base = len(self.codebook_sizes)
        limits = self.codebook_sizes + [self.extra_size]
        for item, code in zip(self.item_ids, self.codes):
            if len(code) != base and not (len(code) == base + 1 and self.extra_size > 0):
                raise bad("codes", f"code {code} of item {item!r} has {len(code)} tokens, expected {base}"
                          + (f" or {base + 1}" if self.extra_size else ""))
            if any(not 0 <= c < size for c, size in zip(code, limits)):
                raise bad("codes", f"code {code} of item {item!r} is outside codebook sizes {limits}")
        if len(set(self.codes)) != len(self.codes):
            raise bad("codes", "two items share a code")
        prefixes = {code[:i] for code in self.codes for i in range(1, len(code))}
        clash = next((code for code in self.codes if code in prefixes), None)
        if clash is not None:
            raise bad("codes", f"code {clash} is a prefix of another item's code")

    def code_of(self, item_id: str) -> tuple[int, ...]:
        """Return the item's code (ValueError for an unknown item)."""
        try:
            return self._by_item[item_id]
        except KeyError:
            raise ValueError(f"unknown item {item_id!r}") from None

    def item_of(self, code: Sequence[int]) -> str | None:
        """Return the item whose complete code this is, or None."""
        return self._by_code.get(tuple(int(c) for c in code))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict; `from_dict` rebuilds an equal SemanticIds from it."""
        return {
            "item_ids": list(self.item_ids),
            "codes": [list(code) for code in self.codes],
            "codebook_sizes": list(self.codebook_sizes),
            "extra_size": self.extra_size,
            "collisions": self.collisions,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SemanticIds:
        """Return the SemanticIds a `to_dict` dict describes (ValueError naming the bad or missing field)."""
        if not isinstance(d, dict):
            raise ValueError(f"SemanticIds.from_dict needs a dict, got {type(d).__name__}")
        names = ("item_ids", "codes", "codebook_sizes", "extra_size", "collisions", "method")
        for name in names:
            if name not in d:
                raise ValueError(f"SemanticIds field '{name}': missing")
        for name in ("item_ids", "codes", "codebook_sizes"):
            if not isinstance(d[name], list):
                raise ValueError(f"SemanticIds field '{name}': must be a list, got {type(d[name]).__name__}")
        for code in d["codes"]:
            if not isinstance(code, (list, tuple)) or not all(_is_int(c) for c in code):
                raise ValueError(f"SemanticIds field 'codes': each code must be a list of integers, got {code!r}")
        if not isinstance(d["method"], str):
            raise ValueError(f"SemanticIds field 'method': must be a string, got {d['method']!r}")
        return cls(**{name: d[name] for name in names})

    def stats(self) -> dict[str, Any]:
        """Return a summary: per level (extra level last, if any) the codebook size, codes used, usage share
        and the smallest and largest cluster; collisions; items with an extra token; the longest code."""
        levels = []
        for level, size in enumerate(self.codebook_sizes + ([self.extra_size] if self.extra_size else [])):
            counts = Counter(code[level] for code in self.codes if len(code) > level)
            levels.append({
                "size": size,
                "used": len(counts),
                "usage": len(counts) / size,
                "min_cluster": min(counts.values()),
                "max_cluster": max(counts.values()),
            })
        return {
            "items": len(self.item_ids),
            "method": self.method,
            "levels": levels,
            "collisions": self.collisions,
            "extra_token_items": sum(len(c) > len(self.codebook_sizes) for c in self.codes),
            "max_code_length": max((len(c) for c in self.codes), default=0),
        }


def assign_semantic_ids(
    item_ids: Sequence[str],
    embeddings: np.ndarray,
    codebook_sizes: Sequence[int],
    *,
    collisions: str = "extra_level",
    iterations: int = 20,
    seed: int = 0,
) -> SemanticIds:
    """Return every item's semantic ID: residual balanced k-means codes, collisions resolved (module doc)."""
    ids = list(item_ids)
    if not all(isinstance(i, str) for i in ids):
        raise ValueError("item_ids must be strings")
    dup = next((i for i, c in Counter(ids).items() if c > 1), None)
    if dup is not None:
        raise ValueError(f"duplicate item id {dup!r}")
    x = _check_points(embeddings, "embeddings")
    if x.shape[0] != len(ids):
        raise ValueError(f"{x.shape[0]} embedding rows for {len(ids)} items")
    sizes = _check_sizes(codebook_sizes)
    if collisions not in COLLISION_MODES:
        raise ValueError(f"collisions must be one of {COLLISION_MODES}, got {collisions!r}")
    for size in sizes:
        if size > len(ids):
            raise ValueError(f"codebook size {size} exceeds the number of items ({len(ids)})")

    codes, centroids, residuals = _residual_quantize(x, sizes, iterations, seed)
    last, last_res = centroids[-1], residuals[-1]
    # Squared distance from each item's last-level residual to its own and to every last-level centroid.
    d_last = _sq_distances(last_res, last)
    own = d_last[np.arange(len(ids)), codes[:, -1]]

    groups: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, code in enumerate(map(tuple, codes.tolist())):
        groups[code].append(i)
    colliding = [members for members in groups.values() if len(members) > 1]
    n_collisions = sum(len(m) for m in colliding)
    out: list[tuple[int, ...]] = [tuple(c) for c in codes.tolist()]

    if collisions == "extra_level":
        extra = 0
        for members in colliding:
            ranked = sorted(members, key=lambda i: (own[i], i))
            for token, i in enumerate(ranked):
                out[i] = out[i] + (token,)
            extra = max(extra, len(members))
        # SemanticIds checks that codes are unique and that none is a prefix of another.
        return SemanticIds(ids, out, sizes, extra, n_collisions, collisions)

    by_prefix: dict[tuple[int, ...], list[int]] = defaultdict(list)
    for i, code in enumerate(out):
        by_prefix[code[:-1]].append(i)
    k_last = sizes[-1]
    for prefix, members in by_prefix.items():
        used = {out[i][-1] for i in members}
        if len(used) == len(members):
            continue
        if len(members) > k_last:
            raise ValueError(
                f"prefix {prefix} holds {len(members)} items but the last codebook has {k_last} codes; "
                "use collisions='extra_level' or a larger codebook")
        movers = []
        for token in sorted(used):
            group = sorted((i for i in members if out[i][-1] == token), key=lambda i: (own[i], i))
            movers.extend(group[1:])
        free = np.array(sorted(set(range(k_last)) - used))
        # Movers take the unused codes by least total distance; a lone mover gets its nearest unused code.
        rows, cols = linear_sum_assignment(d_last[np.ix_(movers, free)])
        for r, c in zip(rows, cols):
            out[movers[r]] = prefix + (int(free[c]),)
    return SemanticIds(ids, out, sizes, 0, n_collisions, collisions)


class ItemTrie:
    """Prefix tree over a SemanticIds' codes, for constrained decoding.

    `allowed(prefix, banned)` lists the next tokens that lead to at least one item outside `banned`. Each
    prefix's children and item count are precomputed; the banned items' count per prefix is computed once
    per banned frozenset (LRU cache of 4096 sets), so a call costs O(children) and prefixes with no banned
    item below them return the precomputed list.
    """

    def __init__(self, sids: SemanticIds):
        self.sids = sids
        children: dict[tuple[int, ...], set[int]] = defaultdict(set)
        counts: Counter[tuple[int, ...]] = Counter()
        for code in sids.codes:
            for j in range(len(code)):
                children[code[:j]].add(code[j])
                counts[code[: j + 1]] += 1
            children.setdefault(code, set())
        self._children = {p: sorted(c) for p, c in children.items()}
        # Per prefix: (token, child prefix, items below the child), for the banned filter.
        self._edges = {p: [(c, p + (c,), counts[p + (c,)]) for c in kids] for p, kids in self._children.items()}
        self._banned_counts = functools.lru_cache(maxsize=4096)(self._count_banned)

    def _count_banned(self, banned: frozenset[str]) -> dict[tuple[int, ...], int]:
        """Return, per prefix (complete codes included), how many banned items lie at or below it."""
        counts: dict[tuple[int, ...], int] = defaultdict(int)
        by_item = self.sids._by_item
        for item in banned:
            code = by_item.get(item)
            if code is None:
                continue
            for j in range(len(code) + 1):
                counts[code[:j]] += 1
        return dict(counts)

    def children(self, prefix: tuple[int, ...]) -> list[int]:
        """Return the sorted tokens that continue prefix ([] for a complete code or an unknown prefix)."""
        return list(self._children.get(tuple(prefix), ()))

    def item_at(self, codes: Sequence[int]) -> str | None:
        """Return the item whose complete code this is, or None."""
        return self.sids.item_of(codes)

    def is_leaf(self, prefix: Sequence[int]) -> bool:
        """Return whether prefix is a complete item code."""
        return self.sids.item_of(prefix) is not None

    def allowed(self, prefix: tuple[int, ...], banned: frozenset[str] = frozenset()) -> list[int]:
        """Return the sorted next tokens after prefix that lead to at least one item not in banned."""
        if type(prefix) is not tuple:
            prefix = tuple(prefix)
        kids = self._children.get(prefix)
        if kids is None:
            return []
        if not banned:
            return list(kids)
        if type(banned) is not frozenset:
            banned = frozenset(banned)
        below = self._banned_counts(banned)
        if prefix not in below:
            return list(kids)
        return [c for c, child, n in self._edges[prefix] if below.get(child, 0) < n]
