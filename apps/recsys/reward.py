"""OneRec's reward model: towers per engagement signal over (user history, item), trained with BCE on logged
impressions, and the session reward IPA ranks beam-searched sessions by.

Architecture: item embeddings; the user is an attention-pooled summary of their history's embeddings
(recency through a learned position embedding) plus, with `user_embeddings`, a learned vector per
known user (OneRec's reward model reads user features; an unknown user gets a shared vector); a
shared layer reads
[u, v, u * v, v_pop] and one small MLP tower per signal gives that signal's logit. Training goes
through the core's SignalRewardModule (BCE per tower, shared.modules). Here the impressions come
from the user simulator, so each tower's AUC against the logged labels and its correlation with the
simulator's true probabilities are measured (`reward_report`).

Session reward r(u, s) = mean over the session's items of sum_k w_k * P_k(u, item), the per-signal
probabilities weighted by `weights` (default equal).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.atomic import atomic_writer, write_json


@dataclass
class RewardArgs:
    """The reward model and its training on simulated impressions.

    Attributes:
        dim: embedding and hidden width.
        max_history: most recent history items the user summary reads.
        impressions_per_user: simulated impressions logged per training user.
        steps: optimiser steps.
        batch_size: impressions per step.
        lr: AdamW learning rate.
        weights: per-signal weights of the session reward (empty: equal).
        user_embeddings: also learn a vector per training user (measured worse on the embedded data: it overfits
            the impressions a user has; docs/apps/recsys.md).
    """

    dim: int = 64
    max_history: int = 50
    impressions_per_user: int = 200
    steps: int = 3000
    batch_size: int = 256
    lr: float = 3e-3
    weights: list[float] = field(default_factory=list)
    user_embeddings: bool = False


class RewardTowers(nn.Module):
    """Logits (batch, signals) of each engagement signal for (history, item) rows."""

    def __init__(self, num_items: int, signals: Sequence[str], dim: int = 64, max_history: int = 50, num_users: int = 0):
        super().__init__()
        self.users = nn.Embedding(num_users + 1, dim) if num_users else None  # row 0: any unknown user
        self.signals, self.max_history = tuple(signals), max_history
        self.items = nn.Embedding(num_items + 1, dim, padding_idx=0)  # index 0 pads histories
        self.positions = nn.Embedding(max_history, dim)
        self.attend = nn.Linear(dim, 1)
        self.shared = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU())
        self.towers = nn.ModuleList(nn.Sequential(nn.Linear(dim, dim // 2), nn.ReLU(), nn.Linear(dim // 2, 1))
                                    for _ in self.signals)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        history, item = batch["history"], batch["item"]
        mask = history > 0
        h = self.items(history) + self.positions(torch.arange(history.size(1), device=history.device))[None]
        weights = self.attend(h).squeeze(-1).masked_fill(~mask, -1e9).softmax(-1) * mask.any(1, keepdim=True)
        user = (weights[..., None] * h).sum(1)
        if self.users is not None:
            user = user + self.users(batch["user"])
        v = self.items(item)
        shared = self.shared(torch.cat([user, v, user * v], -1))
        return torch.cat([tower(shared) for tower in self.towers], -1)


class RewardData:
    """Index items and turn (history, item[, labels]) rows into padded batches."""

    def __init__(self, item_ids: Sequence[str], signals: Sequence[str], max_history: int, user_ids: Sequence[str] = ()):
        self.index = {item: i + 1 for i, item in enumerate(item_ids)}
        self.user_index = {user: i + 1 for i, user in enumerate(user_ids)}
        self.signals, self.max_history = tuple(signals), max_history

    def row(self, history: Sequence[str], item: str, labels: Mapping[str, float] | None = None,
            user: str | None = None) -> dict:
        for name in (*history[-self.max_history:], item):
            if name not in self.index:
                raise ValueError(f"reward model: unknown item '{name}'")
        out = {"history": [self.index[h] for h in history[-self.max_history:]][::-1], "item": self.index[item],
               "user": self.user_index.get(user, 0)}
        if labels is not None:
            out["labels"] = [float(labels[s]) for s in self.signals]
        return out

    def collate(self, rows: Sequence[dict]) -> dict[str, torch.Tensor]:
        width = max(1, max(len(r["history"]) for r in rows))
        history = torch.zeros((len(rows), width), dtype=torch.long)  # newest first: position 0 is the latest
        for i, r in enumerate(rows):
            history[i, :len(r["history"])] = torch.tensor(r["history"], dtype=torch.long)
        batch = {"history": history, "item": torch.tensor([r["item"] for r in rows], dtype=torch.long),
                 "user": torch.tensor([r["user"] for r in rows], dtype=torch.long)}
        if "labels" in rows[0]:
            batch["labels"] = torch.tensor([r["labels"] for r in rows], dtype=torch.float32)
        return batch


class RewardScorer:
    """A trained reward model: per-signal probabilities of items and weighted session rewards."""

    def __init__(self, model: RewardTowers, data: RewardData, weights: Sequence[float] = ()):
        self.model, self.data = model.eval(), data
        w = list(weights) or [1.0] * len(data.signals)
        if len(w) != len(data.signals):
            raise ValueError(f"reward.weights: {len(w)} weights for signals {', '.join(data.signals)}")
        self.weights = np.asarray(w, dtype=np.float64) / sum(w)

    @torch.no_grad()
    def probabilities(self, history: Sequence[str], items: Sequence[str], user: str | None = None) -> np.ndarray:
        """(len(items), signals) predicted probabilities for one user (None or unknown: the shared user vector)."""
        if not items:
            return np.zeros((0, len(self.data.signals)))
        batch = self.data.collate([self.data.row(history, item, user=user) for item in items])
        return torch.sigmoid(self.model(batch)).numpy().astype(np.float64)

    def session_signals(self, history: Sequence[str], session: Sequence[str], user: str | None = None) -> dict[str, float]:
        """Mean predicted probability of each signal over the session's items, and the weighted reward."""
        if not session:
            return {**{s: 0.0 for s in self.data.signals}, "reward": 0.0}
        p = self.probabilities(history, session, user).mean(0)
        return {**{s: float(v) for s, v in zip(self.data.signals, p)}, "reward": float(p @ self.weights)}

    def save(self, folder: Path | str, args: RewardArgs, item_ids: Sequence[str]) -> Path:
        """Write model.pt (the weights) and config.json (args, signals, item and user ids)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_writer(folder / "model.pt") as handle:
            torch.save(self.model.state_dict(), handle)
        write_json(folder / "config.json", {"args": asdict(args), "signals": list(self.data.signals),
                                            "items": list(item_ids), "users": list(self.data.user_index)})
        return folder

    @classmethod
    def load(cls, folder: Path | str) -> RewardScorer:
        folder = Path(folder)
        meta = json.loads((folder / "config.json").read_text())
        args = RewardArgs(**meta["args"])
        users = meta.get("users", [])
        model = RewardTowers(len(meta["items"]), meta["signals"], args.dim, args.max_history, len(users))
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        return cls(model, RewardData(meta["items"], meta["signals"], args.max_history, users), args.weights)


def auc(labels: Sequence[float], scores: Sequence[float]) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, ties averaged; nan when only one class is present."""
    from scipy.stats import rankdata

    y, s = np.asarray(labels) > 0.5, np.asarray(scores, dtype=np.float64)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(s)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def reward_report(scorer: RewardScorer, impressions: Sequence[dict], histories: Mapping[str, Sequence[str]]) -> dict:
    """Per signal: AUC against the logged labels, AUC of the simulator's truth (the ceiling), and the Pearson
    correlation of predicted with true probabilities, on held-out impressions (fresh draws, other histories)."""
    by_user: dict[str, list[dict]] = {}
    for imp in impressions:
        by_user.setdefault(imp["user"], []).append(imp)
    predicted = []
    for user, rows in by_user.items():
        predicted.extend(scorer.probabilities(histories[user], [r["item"] for r in rows], user))
    rows = [r for user_rows in by_user.values() for r in user_rows]
    p = np.asarray(predicted)
    report = {}
    for k, name in enumerate(scorer.data.signals):
        labels = [r[name] for r in rows]
        truth = np.asarray([r["truth"][name] for r in rows])
        report[name] = {"auc": auc(labels, p[:, k]), "truth_auc": auc(labels, truth),
                        "pearson_truth": float(np.corrcoef(p[:, k], truth)[0, 1]), "positive_rate": float(np.mean(labels))}
    report["impressions"] = len(rows)
    return report
