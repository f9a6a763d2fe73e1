"""RAFT's retrieval: the k training tasks most similar to a task by BM25 over instruction and variable table.

A training task never retrieves itself (same id), so fine-tuning with retrieved examples cannot
learn to copy its own answer. Ranked best first; the prompt lists them with the best one last,
nearest to the task (apps/ladder/prompts.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from apps.ladder.prompts import describe
from apps.ladder.tasks import Task
from shared.retrieval import BM25Index


class ExampleRetriever:
    """BM25 over the training tasks' descriptions; `examples(task, k)` gives the k nearest other tasks."""

    def __init__(self, pool: Sequence[Task]):
        self.pool = list(pool)
        self.position = {t.id: i for i, t in enumerate(self.pool)}
        self.index = BM25Index([describe(t) for t in self.pool])

    def examples(self, task: Task, k: int) -> list[Task]:
        """The k most similar pool tasks other than `task` itself, in prompt order (most similar last)."""
        if k <= 0:
            return []
        own = self.position.get(task.id)
        hits = self.index.search(describe(task), k, exclude=() if own is None else (own,))
        return [self.pool[i] for i in reversed(hits)]
