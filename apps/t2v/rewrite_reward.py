"""Prompt-A-Video's reward for a rewrite: the video model draws the rewrite, the critic judges it against the ORIGINAL request.

    reward = sum_d w_d * score_d        (d: object, colour, motion, consistency, smoothness; scores in [0, 1])

The critic is given the user's request and the scene it means, never the rewrite, so a rewrite
cannot raise its reward by changing what was asked for. Prompt-A-Video's overall score is
VQ + TC + FC + 1.1 DD + 1.3 TVA + 0.8 AES + MPS/3 over VideoScore's dimensions, an aesthetic
predictor and MPS; here the critic's dimensions take the weights of their nearest counterparts
by default (object and colour: text-video alignment 1.3; motion: dynamic degree 1.1;
consistency: temporal consistency 1.0; smoothness: visual quality 1.0). An unusable rewrite
(`booster.check_rewrite`) scores 0 on every dimension and gets no video.

Every rewrite of a request is drawn with the same video seeds (common random numbers): rewards of
one request's rewrites then differ by the prompt, not by the noise the video started from. With
`videos` > 1 (Prompt-A-Video draws one), each rewrite's scores are the mean over that many videos
(seeds seed, seed + 1, ...), for a reward less at the mercy of one draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from apps.t2v.booster import check_rewrite, clean_rewrite
from apps.t2v.critic import DIMENSIONS, Critic, summarise
from apps.t2v.data import VideoPrompt
from apps.t2v.model import T2VModel
from shared.generation import Sampled
from shared.kit import DiffusionSampleArgs
from shared.video_io import write_npy


@dataclass
class RewardArgs:
    """How a rewrite is rewarded and which rewrites may be chosen (Prompt-A-Video's DPO data).

    Attributes:
        weights: weight of each critic dimension in the reward.
        thresholds: a rewrite may be chosen only when every one of its dimension scores reaches these.
        margin: a candidate is a rejected partner when its reward is more than this below the chosen one's.
    """

    weights: dict[str, float] = field(default_factory=lambda: {"object": 1.3, "colour": 1.3, "motion": 1.1,
                                                               "consistency": 1.0, "smoothness": 1.0})
    thresholds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0.5))
    margin: float = 0.3

    def check(self) -> None:
        """Raise ValueError (one line) on a weight or threshold for a dimension the critic does not have."""
        for name, table in (("reward.weights", self.weights), ("reward.thresholds", self.thresholds)):
            unknown = [k for k in table if k not in DIMENSIONS]
            if unknown:
                raise ValueError(f"{name}: unknown dimension {unknown[0]!r} (known: {', '.join(DIMENSIONS)})")


def weighted_reward(scores: dict[str, float], weights: dict[str, float]) -> float:
    """sum_d w_d * score_d over the weighted dimensions."""
    return float(sum(w * scores.get(d, 0.0) for d, w in weights.items()))


def invalid_scores(reason: str, words: int) -> dict[str, float]:
    """The scores of an unusable rewrite: every dimension 0, reward 0, valid 0."""
    return {**summarise({}), "reward": 0.0, "valid": 0.0, "words": float(words), "reason_" + reason: 1.0}


class RewriteScorer:
    """Draws a video per usable rewrite and scores it against its request (see the module docstring)."""

    def __init__(self, video_model: T2VModel, critic: Critic, reward: RewardArgs, sample: DiffusionSampleArgs,
                 max_words: int, videos: int = 1):
        reward.check()
        if videos < 1:
            raise ValueError(f"videos per rewrite must be at least 1, got {videos}")
        self.video_model, self.critic, self.reward, self.sample, self.max_words = video_model, critic, reward, sample, max_words
        self.videos = videos

    def score(self, requests: Sequence[VideoPrompt], rewrites: Sequence[Sampled], seeds: Sequence[int],
              videos_to: Sequence[Path | None]) -> list[dict[str, float]]:
        """Scores per rewrite: each dimension, overall, passed, reward, valid, words (and reason_<why> when unusable);
        with several videos per rewrite, each is the mean over its videos (passed: the share that pass).

        `requests[i]` is the request rewrite i was written for; its video (seed `seeds[i]`) is written to
        `videos_to[i]` (.npy; with several videos, <stem>_<j>.npy) unless that is None.
        """
        out: list[dict[str, float] | None] = [None] * len(rewrites)
        usable = []
        for i, sampled in enumerate(rewrites):
            text = clean_rewrite(sampled.text)
            reason = check_rewrite(sampled, self.max_words)
            if reason is None:
                usable.append((i, text))
            else:
                out[i] = invalid_scores(reason, len(text.split()))
        if usable:
            s, k = self.sample, self.videos
            texts = [t for _, t in usable for _ in range(k)]
            videos = self.video_model.generate(texts, [int(seeds[i]) + j for i, _ in usable for j in range(k)],
                                               steps=s.steps, guidance=s.guidance, batch_size=s.batch_size)
            verdicts = self.critic.score(list(videos), [requests[i].prompt for i, _ in usable for _ in range(k)],
                                         [requests[i].scene for i, _ in usable for _ in range(k)])
            for n, (i, text) in enumerate(usable):
                if videos_to[i] is not None:
                    for j, path in enumerate(self.video_paths(Path(videos_to[i]))):
                        write_npy(path, np.asarray(videos[n * k + j]))
                mine = verdicts[n * k:(n + 1) * k]
                scores = {key: float(np.mean([v[key] for v in mine])) for key in mine[0]}
                out[i] = {**scores, "reward": weighted_reward(scores, self.reward.weights), "valid": 1.0,
                          "words": float(len(text.split()))}
        return out  # type: ignore[return-value]

    def video_paths(self, path: Path) -> list[Path]:
        """Where a rewrite's videos go for `videos_to` path: the path itself, or <stem>_<j>.npy for several."""
        return [path] if self.videos == 1 else [path.with_name(f"{path.stem}_{j}.npy") for j in range(self.videos)]

    def clears(self, scores: dict[str, float]) -> bool:
        """Whether a scored rewrite may be chosen: usable and every dimension at its threshold."""
        return bool(scores.get("valid")) and all(scores.get(d, 0.0) >= t for d, t in self.reward.thresholds.items())
