"""A reward cache keyed by (prompt, output, context): in memory, or in a SQLite file that survives restarts."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from shared.rewards.protocol import VALID, Reward, normalize_batch

KeyFn = Callable[[Any, Any, dict], str | None]


def default_key(prompt: Any, output: Any, context: dict) -> str | None:
    """Return a SHA-256 of the JSON of (prompt, output, context), or None when they are not JSON (not cached)."""
    try:
        text = json.dumps([prompt, output, context], sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachedReward:
    """Scores each distinct (prompt, output, context) once; only valid scores are cached, so a
    transient failure (a timeout) is retried next time. On disk, `cache_dir/reward_cache.sqlite`
    commits each batch in one transaction. Use one cache_dir per reward configuration."""

    def __init__(self, reward: Reward, cache_dir: str | os.PathLike | None = None, key_fn: KeyFn = default_key) -> None:
        self.reward = reward
        self.aspects = tuple(reward.aspects)
        self.invalid_score = getattr(reward, "invalid_score", 0.0)
        self.key_fn = key_fn
        self.hits = 0
        self.misses = 0
        self.last_errors: list[str | None] = []
        self._memory: dict[str, dict[str, float]] = {}
        self._db: sqlite3.Connection | None = None
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(Path(cache_dir) / "reward_cache.sqlite")
            with self._db:
                self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")

    def __call__(
        self, prompts: Sequence[Any], outputs: Sequence[Any], contexts: Sequence[dict] | None = None
    ) -> list[dict[str, float]]:
        """Return scores, from the cache where present; misses are scored in one call to the wrapped reward."""
        prompts, outputs, contexts = normalize_batch(prompts, outputs, contexts)
        keys = [self.key_fn(p, o, c) for p, o, c in zip(prompts, outputs, contexts)]
        found = self._lookup({k for k in keys if k is not None})
        results: list[dict[str, float] | None] = [None] * len(keys)
        self.last_errors = [None] * len(keys)
        first_of: dict[str, int] = {}  # a duplicate inside the batch is scored once
        todo: list[int] = []
        for i, key in enumerate(keys):
            if key in found:
                results[i] = dict(found[key])
                self.hits += 1
            elif key is not None and key in first_of:
                self.hits += 1
            else:
                if key is not None:
                    first_of[key] = i
                todo.append(i)
        self.misses += len(todo)
        if todo:
            scored = self.reward([prompts[i] for i in todo], [outputs[i] for i in todo], [contexts[i] for i in todo])
            errors = getattr(self.reward, "last_errors", None) or [None] * len(todo)
            new = {}
            for i, s, err in zip(todo, scored, errors):
                results[i], self.last_errors[i] = dict(s), err
                if keys[i] is not None and s.get(VALID, 1.0) == 1.0:
                    new[keys[i]] = dict(s)
            self._store(new)
        for i, key in enumerate(keys):
            if results[i] is None:  # a duplicate of an item scored in this batch
                j = first_of[key]  # type: ignore[index]
                results[i], self.last_errors[i] = dict(results[j]), self.last_errors[j]  # type: ignore[arg-type]
        return results  # type: ignore[return-value]

    def _lookup(self, keys: set[str]) -> dict[str, dict[str, float]]:
        found = {k: self._memory[k] for k in keys if k in self._memory}
        missing = [k for k in keys if k not in found]
        if self._db is not None and missing:
            for start in range(0, len(missing), 500):  # SQLite caps the number of bound parameters
                part = missing[start : start + 500]
                rows = self._db.execute(
                    f"SELECT key, value FROM scores WHERE key IN ({','.join('?' * len(part))})", part
                )
                for key, value in rows:
                    found[key] = self._memory[key] = json.loads(value)
        return found

    def _store(self, new: dict[str, dict[str, float]]) -> None:
        self._memory.update(new)
        if self._db is not None and new:
            with self._db:
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)",
                    [(k, json.dumps(v)) for k, v in new.items()],
                )

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None
