"""The critic: scores a generated video against its prompt, per dimension, behind one interface.

IPO's critic is a multimodal LLM trained on human labels; here it is either
- `RuleCritic` (the embedded default): the prompt is read back into a scene (`parse_caption`, or the
  scene a prompt file gave), the video's frames go through the core's shape detector and tracker
  (`shared.scenes.video_checker.check_video`), and each dimension is scored in [0, 1]: object
  (the prompt's objects are found), colour (in the right colour), motion (moving the right way, or
  still), consistency (the right objects visible in each frame: appear / disappear at the right
  time, no flicker in and out) and smoothness (tracks move at a steady velocity); or
- `LearnedCritic` (apps/t2v/learned_critic.py): a small video classifier trained on critic or human
  labels from a JSONL file (`critic.kind: learned`, `critic.path: <folder>`).

Both give `score(videos, prompts) -> [{dimension: score, "overall": mean, "passed": 0 or 1}]` and
never raise on a degenerate video (all black, one frame, NaN pixels): it scores low. A prompt the
rule critic cannot read scores 0 on every dimension with "readable" 0.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from shared.scenes.video import VideoScene, parse_caption, render_video, sample_video_scene
from shared.scenes.video_checker import DIMENSIONS, SMOOTH_PASS, check_video, corrupt_video

CRITICS = ("rule", "learned")


@dataclass
class CriticArgs:
    """Which critic labels videos.

    Attributes:
        kind: "rule" (detection on frames) or "learned" (a classifier folder written by
            `python -m apps.t2v.learned_critic`, trained on a label file).
        path: the learned critic's folder.
    """

    kind: str = "rule"
    path: str = ""


class Critic(Protocol):
    name: str
    thresholds: dict[str, float]

    def score(self, videos: Sequence[np.ndarray], prompts: Sequence[str],
              scenes: Sequence[VideoScene | None] | None = None) -> list[dict[str, float]]:
        """One dict per video: every dimension in [0, 1], "overall" and "passed"."""
        ...


# A dimension is right when its score reaches the critic's threshold. Rule critic: exact checks must score 1,
# smoothness the checker's pass level; learned critic: its scores are probabilities of "right".
RULE_THRESHOLDS = {**dict.fromkeys(DIMENSIONS, 1.0), "smoothness": SMOOTH_PASS}
LEARNED_THRESHOLDS = dict.fromkeys(DIMENSIONS, 0.5)


def summarise(dims: dict[str, float], thresholds: dict[str, float] = RULE_THRESHOLDS) -> dict[str, float]:
    """Add "overall" (the mean of the dimensions) and "passed" (every dimension right) to per-dimension scores."""
    out = {d: float(np.clip(np.nan_to_num(dims.get(d, 0.0)), 0.0, 1.0)) for d in DIMENSIONS}
    out["overall"] = float(np.mean([out[d] for d in DIMENSIONS]))
    out["passed"] = float(all(correct(out, d, thresholds) for d in DIMENSIONS))
    return out


def correct(scores: dict[str, float], dimension: str, thresholds: dict[str, float] = RULE_THRESHOLDS) -> bool:
    """Whether a video is right on `dimension` (its score reaches the critic's threshold)."""
    return scores[dimension] >= thresholds[dimension]


class RuleCritic:
    """Detection-based critic (see the module docstring)."""

    name = "rule"
    thresholds = RULE_THRESHOLDS

    def score(self, videos: Sequence[np.ndarray], prompts: Sequence[str],
              scenes: Sequence[VideoScene | None] | None = None) -> list[dict[str, float]]:
        out = []
        for i, (video, prompt) in enumerate(zip(videos, prompts)):
            scene = scenes[i] if scenes is not None and scenes[i] is not None else parse_caption(prompt)
            if scene is None:
                out.append({**summarise({}), "readable": 0.0})
                continue
            result = check_video(video, scene)
            out.append({**summarise({d: float(result[d]) for d in DIMENSIONS}), "readable": 1.0})
        return out


class LearnedVideoCritic:
    """A learned critic folder (apps/t2v/learned_critic.py) behind the critic interface: its per-dimension
    probabilities are the scores, and a dimension is right at probability 0.5 or more."""

    name = "learned"
    thresholds = LEARNED_THRESHOLDS

    def __init__(self, folder: str | Path):
        from apps.t2v.learned_critic import LearnedCritic

        self.model = LearnedCritic.load(folder)

    def score(self, videos: Sequence[np.ndarray], prompts: Sequence[str],
              scenes: Sequence[VideoScene | None] | None = None) -> list[dict[str, float]]:
        rows = self.model.probabilities(list(videos), list(prompts))
        return [summarise(dict(zip(DIMENSIONS, map(float, row))), self.thresholds) for row in rows]


def load_critic(args: CriticArgs) -> Critic:
    """The configured critic; a bad kind or a missing learned-critic folder raises ValueError in one line."""
    if args.kind == "rule":
        return RuleCritic()
    if args.kind == "learned":
        if not args.path or not (Path(args.path) / "config.json").is_file():
            raise ValueError(f"critic.path {args.path!r}: not a learned-critic folder (no config.json)")
        return LearnedVideoCritic(args.path)
    raise ValueError(f"critic.kind: {args.kind!r} is not one of {', '.join(CRITICS)}")


# The corruptions the validation applies to rendered clips; `_truth` says what each does to each dimension.
CORRUPTIONS = ("none", "noise", "reverse", "shuffle", "freeze", "drop_object", "miscolour")
VALIDATION_NOISE = 16.0  # of 255: pixel noise a viewer ignores; the critic should too (every dimension stays right)


def validation_clips(n_per_category: int, seed: int = 0, frames: int = 8, resolution: int = 32,
                     categories: Sequence[str] = ("moving", "two_moving", "still", "appearing", "disappearing")):
    """Rendered clips with known per-dimension truth: clean renders and corrupted ones (`CORRUPTIONS`).

    Yields (video, prompt, scene, corruption, truth): truth maps each dimension to True (the clip is
    right on it), False (wrong) or None (the corruption leaves it ambiguous: a shuffled clip's first
    and last frames may still point the right way), and ambiguous cells are not scored. The prompt
    is always the original caption: "miscolour" renders the scene with one object's colour changed."""
    from shared.scenes.video import caption_of
    from shared.scenes.video_checker import miscolour

    rng = random.Random(f"t2v-critic-validation:{seed}")
    for category in categories:
        for i in range(n_per_category):
            scene = sample_video_scene(rng, category)
            render_seed = seed * 7919 + i
            rendering = render_video(scene, frames, resolution, render_seed)
            for kind in CORRUPTIONS:
                if kind == "miscolour":
                    video = render_video(miscolour(scene), frames, resolution, render_seed).frames
                else:
                    video = corrupt_video(rendering.frames, np.random.default_rng(render_seed), kind,
                                          masks=rendering.masks, noise=VALIDATION_NOISE)
                yield video, caption_of(scene), scene, kind, _truth(kind, scene)


def _truth(kind: str, scene: VideoScene) -> dict[str, bool | None]:
    moving = any(o.motion != "still" for o in scene.objects)
    appears = any(o.appear > 0 for o in scene.objects)
    disappears = any(o.disappear < 1 for o in scene.objects)
    truth: dict[str, bool | None] = dict.fromkeys(DIMENSIONS, True)
    if kind == "reverse":
        truth.update(motion=not moving)
        if appears or disappears:
            truth.update(object=None, colour=None, motion=None, consistency=False, smoothness=None)
    elif kind == "shuffle":
        truth.update(motion=None if moving else True, smoothness=not moving)
        if appears or disappears:
            truth.update(object=None, colour=None, consistency=None)
    elif kind == "freeze":
        truth.update(motion=not moving)
        if appears:  # the first frame is empty: nothing ever appears
            truth.update(object=False, colour=False, motion=None, consistency=False, smoothness=None)
        if disappears:  # never disappears
            truth.update(consistency=False)
    elif kind == "drop_object":
        truth.update(object=False, colour=False, motion=None, consistency=False, smoothness=None)
    elif kind == "miscolour":
        truth.update(colour=False, consistency=None)
    return truth


def critic_accuracy(critic: Critic, clips) -> dict[str, dict[str, float]]:
    """Per corruption and per dimension, the share of clips where the critic's verdict (`correct`) equals the truth
    (ambiguous cells skipped; NaN when none is left); plus "all" over every clip. Returns {corruption: {dimension:
    accuracy, "n": clips}}."""
    clips = list(clips)
    scores = critic.score([c[0] for c in clips], [c[1] for c in clips], [c[2] for c in clips])
    table: dict[str, dict[str, list[bool]]] = {}
    for (_, _, _, kind, truth), s in zip(clips, scores):
        for key in (kind, "all"):
            row = table.setdefault(key, {d: [] for d in (*DIMENSIONS, "n")})
            row["n"].append(True)
            for d in DIMENSIONS:
                if truth[d] is not None:
                    row[d].append(correct(s, d, critic.thresholds) == truth[d])
    return {k: {**{d: float(np.mean(v[d])) if v[d] else float("nan") for d in DIMENSIONS}, "n": float(len(v["n"]))}
            for k, v in table.items()}


def accuracy_markdown(table: dict[str, dict[str, float]]) -> str:
    """The critic-accuracy table as markdown (rows: corruption, columns: dimension)."""
    lines = ["| clips | n | " + " | ".join(DIMENSIONS) + " |", "|---|---:|" + "---:|" * len(DIMENSIONS)]
    for kind, row in table.items():
        lines.append(f"| {kind} | {int(row['n'])} | " + " | ".join("-" if row[d] != row[d] else f"{row[d]:.3f}" for d in DIMENSIONS) + " |")
    return "\n".join(lines) + "\n"


def write_label_file(out_dir: Path, n_per_category: int, seed: int = 0) -> Path:
    """Write validation clips (.npy) and a label file of their per-dimension truth (ambiguous cells left out): what
    a human labeller would mark, in the format the learned critic trains on. Returns out_dir/labels.jsonl."""
    from apps.t2v.learned_critic import LabelExample, write_labels
    from shared.video_io import write_npy

    examples = []
    for n, (video, prompt, _, kind, truth) in enumerate(validation_clips(n_per_category, seed)):
        path = write_npy(out_dir / "clips" / f"{n:05d}_{kind}.npy", video)
        examples.append(LabelExample(path, prompt, {d: float(v) for d, v in truth.items() if v is not None}))
    return write_labels(out_dir / "labels.jsonl", examples)


def main(argv: list[str] | None = None) -> dict:
    """python -m apps.t2v.critic validate | labels: the critic-accuracy table, or a label file of rendered clips."""
    import argparse
    import json

    from shared.atomic import write_text

    parser = argparse.ArgumentParser(prog="python -m apps.t2v.critic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("validate", "labels"),
                        help="validate: per-dimension accuracy on rendered and corrupted clips; labels: write such clips "
                             "with their truth as a label file (to train a learned critic)")
    parser.add_argument("--per-category", type=int, default=40, help="scenes per category (each in every corruption)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learned", action="append", default=[], help="also validate this learned-critic folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    if args.command == "labels":
        path = write_label_file(args.out, args.per_category, args.seed)
        print(path)
        return {"labels": str(path)}
    critics: list[Critic] = [RuleCritic()]
    try:
        critics += [load_critic(CriticArgs("learned", folder)) for folder in args.learned]
    except ValueError as exc:
        parser.error(str(exc))
    clips = list(validation_clips(args.per_category, args.seed))
    tables = {c.name if i < 2 else f"{c.name}_{i}": critic_accuracy(c, clips) for i, c in enumerate(critics)}
    text = "".join(f"### {name} critic\n\n{accuracy_markdown(t)}\n" for name, t in tables.items())
    write_text(args.out / "critic_accuracy.md", text)
    write_text(args.out / "critic_accuracy.json", json.dumps(tables, indent=1))
    print(text)
    return tables


if __name__ == "__main__":
    main()
