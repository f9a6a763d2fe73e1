"""A small learned video critic: judges a video against its prompt on the critic's five dimensions.

It is the learned alternative to the rule-based critic and has the same interface,
`score(videos, prompts) -> list[dict[str, float]]`: every dimension of DIMENSIONS in [0, 1] plus
"overall", their mean. It learns from label files (JSONL, one example a line):

    {"video": "clips/0001.npy", "prompt": "a red circle moving left", "labels": {"motion": 1, "colour": 0}}

`video` is relative to the label file's folder or absolute (anything shared.video_io.read_video
reads); `labels` holds at least one dimension, each a number in [0, 1] (human labels, or the rule
critic's scores to distil).

Model (`VideoCriticNet`): the video is resampled to `frames` x `resolution` x `resolution` by
nearest-neighbour index sampling (any (F, H, W, 3) input; one frame is repeated), scaled to [0, 1]
(NaN and inf pixels become 0), and its frame differences x[t] - x[t-1] (zero at t = 0) are stacked
as three more channels, (6, frames, resolution, resolution). The prompt's word-level token ids
(prompt_word_tokenizer over the vocabulary given at construction, fixed_length_ids) are embedded and
averaged over its words ([UNK] included; [PAD], [BOS], [EOS] not): a vector u. Three Conv3d layers
(`widths`) see the video: 2-frame x 4x4-pixel patches, then a 3x3x3 convolution at stride (1, 2, 2)
whose output h is modulated by the prompt (FiLM: h * (1 + gamma(u)) + beta(u)), then ReLU, a 3x3x3
convolution and ReLU; a global mean- and max-pool gives v (2 * widths[-1]). The fusion
[v; u; v * g(u)] (g linear) goes through an MLP to one logit z_d per dimension; the score is
sigma(z_d). The multiplicative terms let the prompt pick which video features count ("red" asks for
red pixels), which a concatenation alone learns only slowly.

Loss (`CriticModule`): binary cross-entropy on the cells each example labels, soft labels allowed,

    loss = sum_{i,d} m_id * BCE(sigma(z_id), y_id) / sum_{i,d} m_id

where m_id is 1 when example i labels dimension d, else 0. AdamW optimises it through the kit's
resumable `train_stage`; the trained model is saved as `config.json` + `model.safetensors`.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shared.atomic import write_bytes, write_json, write_text
from shared.kit.sections import cpu_trainer
from shared.kit.stages import train_stage
from shared.models import is_complete
from shared.models.saved import mark_complete
from shared.models.tokenizer import fixed_length_ids, prompt_word_tokenizer
from shared.modules.base import StepModule
from shared.training import TrainerArgs, make_loader
from shared.video_io import VideoReadError, read_video

DIMENSIONS: tuple[str, ...] = ("object", "colour", "motion", "consistency", "smoothness")
FIELDS: tuple[str, ...] = ("video", "prompt", "labels")
SCORE_BATCH = 64


class LabelFileError(ValueError):
    """A label file that cannot be used; the message is one line: `<path>:<line>: field '<name>': <reason>`."""

    def __init__(self, path: str | os.PathLike, line: int | None, name: str | None, reason: str):
        self.path, self.line, self.field, self.reason = str(path), line, name, reason
        where = f"{path}:{line}" if line is not None else str(path)
        what = f" field '{name}':" if name is not None else ""
        super().__init__(" ".join(f"{where}:{what} {reason}".split()))


@dataclass
class LabelExample:
    """One labelled video: its file, its prompt and the dimensions it labels (each in [0, 1])."""

    video: Path
    prompt: str
    labels: dict[str, float] = field(default_factory=dict)


def _label_value(value) -> float:
    """Return a label as a float in [0, 1]; raise ValueError with the reason otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number in [0, 1], got {json.dumps(value)}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{value!r} is outside [0, 1]")
    return float(value)


def _parse_labels(labels) -> dict[str, float]:
    """Return a `labels` object as {dimension: float} in DIMENSIONS order; ValueError(field, reason) otherwise."""
    if not isinstance(labels, dict):
        raise ValueError("labels", f"expected an object of dimension: number, got {json.dumps(labels)}")
    if not labels:
        raise ValueError("labels", "no dimension labelled (expected at least one of " + ", ".join(DIMENSIONS) + ")")
    out = {}
    for dim, value in labels.items():
        if dim not in DIMENSIONS:
            raise ValueError(f"labels.{dim}", "unknown dimension (expected one of " + ", ".join(DIMENSIONS) + ")")
        try:
            out[dim] = _label_value(value)
        except ValueError as exc:
            raise ValueError(f"labels.{dim}", str(exc)) from None
    return {d: out[d] for d in DIMENSIONS if d in out}


def _example(record, folder: Path) -> LabelExample:
    """Return the example a parsed JSONL line describes, its video read once as a check; ValueError(field, reason)."""
    if not isinstance(record, dict):
        raise ValueError(None, f"expected a JSON object, got {type(record).__name__}")
    for name in record:
        if name not in FIELDS:
            raise ValueError(name, "unknown field (expected " + ", ".join(FIELDS) + ")")
    for name in FIELDS:
        if name not in record:
            raise ValueError(name, "missing")
    prompt, video = record["prompt"], record["video"]
    if not isinstance(prompt, str):
        raise ValueError("prompt", f"expected a string, got {json.dumps(prompt)}")
    if not prompt.strip():
        raise ValueError("prompt", "empty prompt")
    labels = _parse_labels(record["labels"])
    if not isinstance(video, str) or not video.strip():
        raise ValueError("video", f"expected a file path, got {json.dumps(video)}")
    path = Path(video) if os.path.isabs(video) else folder / video
    try:
        read_video(path)
    except VideoReadError as exc:
        raise ValueError("video", f"does not read: {exc}") from None
    return LabelExample(video=path, prompt=prompt, labels=labels)


def load_labels(path: str | os.PathLike) -> list[LabelExample]:
    """Return the examples of a JSONL label file (empty lines skipped); any problem is a LabelFileError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelFileError(path, None, None, f"cannot read the label file ({exc})") from None
    folder = path.absolute().parent
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LabelFileError(path, number, None, f"not valid JSON ({exc})") from None
        try:
            examples.append(_example(record, folder))
        except ValueError as exc:
            name, reason = exc.args
            raise LabelFileError(path, number, name, reason) from None
    if not examples:
        raise LabelFileError(path, None, None, "no examples (the file is empty)")
    return examples


def _relative_video(video: Path, folder: Path) -> str:
    """Return the video's path relative to `folder` when it lies under it, else its absolute path."""
    video = Path(video).absolute()
    try:
        return video.relative_to(folder).as_posix()
    except ValueError:
        return str(video)


def write_labels(path: str | os.PathLike, examples: Sequence[LabelExample]) -> Path:
    """Write examples as a JSONL label file atomically (videos under its folder as relative paths)."""
    folder = Path(path).absolute().parent
    lines = []
    for i, ex in enumerate(examples):
        try:
            labels = _parse_labels(ex.labels)
        except ValueError as exc:
            raise ValueError(f"write_labels: example {i}: field '{exc.args[0]}': {exc.args[1]}") from None
        if not ex.prompt.strip():
            raise ValueError(f"write_labels: example {i}: field 'prompt': empty prompt")
        lines.append(json.dumps({"video": _relative_video(ex.video, folder), "prompt": ex.prompt, "labels": labels},
                                ensure_ascii=False))
    return write_text(path, "".join(line + "\n" for line in lines))


def prompt_vocabulary(prompts: Sequence[str]) -> list[str]:
    """Return the sorted lower-case words of the prompts (a vocabulary for VideoCriticNet)."""
    return sorted({w for p in prompts for w in re.findall(r"\w+", p.lower())})


def resample_video(video, frames: int, resolution: int) -> np.ndarray:
    """Return (frames, resolution, resolution, 3) float32 in [0, 1] from any (F, H, W, 3) or (H, W, 3) array.

    Nearest-neighbour index sampling in time and space; uint8 and other integer pixels are divided by
    255, floats are taken as [0, 1]; NaN and inf become 0, everything is clipped to [0, 1]. A video
    with no pixels is black.
    """
    a = np.asarray(video)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"expected a video of shape (F, H, W, 3), got {a.shape}")
    if min(a.shape[:3]) == 0:
        return np.zeros((frames, resolution, resolution, 3), np.float32)
    t = np.arange(frames) * a.shape[0] // frames
    y = np.arange(resolution) * a.shape[1] // resolution
    x = np.arange(resolution) * a.shape[2] // resolution
    out = a[t][:, y][:, :, x]
    if out.dtype.kind in "iu":
        out = out.astype(np.float32) / 255.0
    else:
        out = np.nan_to_num(out.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(out, 0.0, 1.0)


class VideoCriticNet(nn.Module):
    """Video (Conv3d on pixels and frame differences) + prompt (mean word embedding) -> one logit per dimension."""

    def __init__(self, vocabulary: Sequence[str], *, frames: int = 8, resolution: int = 32,
                 widths: Sequence[int] = (16, 32, 32), text_dim: int = 32, hidden: int = 64, max_length: int = 16):
        super().__init__()
        if frames < 2 or resolution < 4 or len(widths) != 3:
            raise ValueError(f"VideoCriticNet: needs frames >= 2, resolution >= 4 and three widths, got "
                             f"frames={frames}, resolution={resolution}, widths={list(widths)}")
        self.vocabulary = list(dict.fromkeys(w.lower() for w in vocabulary))
        self.frames, self.resolution, self.widths = frames, resolution, tuple(widths)
        self.text_dim, self.hidden, self.max_length = text_dim, hidden, max_length
        self.tokenizer = prompt_word_tokenizer(self.vocabulary, max_length)
        first, second, third = self.widths
        self.patches = nn.Sequential(nn.Conv3d(6, first, (2, 4, 4), stride=(2, 4, 4)), nn.ReLU(),
                                     nn.Conv3d(first, second, 3, stride=(1, 2, 2), padding=1))
        self.film = nn.Linear(text_dim, 2 * second)
        self.mix = nn.Sequential(nn.ReLU(), nn.Conv3d(second, third, 3, padding=1), nn.ReLU())
        self.embed = nn.Embedding(len(self.tokenizer), text_dim, padding_idx=self.tokenizer.pad_token_id)
        self.gate = nn.Linear(text_dim, 2 * third)
        self.head = nn.Sequential(nn.Linear(4 * third + text_dim, hidden), nn.ReLU(),
                                  nn.Linear(hidden, len(DIMENSIONS)))

    def config(self) -> dict:
        """Return what rebuilds this net (config.json)."""
        return {"vocabulary": self.vocabulary, "frames": self.frames, "resolution": self.resolution,
                "widths": list(self.widths), "text_dim": self.text_dim, "hidden": self.hidden,
                "max_length": self.max_length, "dimensions": list(DIMENSIONS)}

    def prepare_videos(self, videos: Sequence) -> Tensor:
        """Return (N, frames, resolution, resolution, 3) float pixels in [0, 1] for any videos."""
        return torch.from_numpy(np.stack([resample_video(v, self.frames, self.resolution) for v in videos]))

    def encode_prompts(self, prompts: Sequence[str]) -> Tensor:
        """Return (N, max_length) token ids."""
        return fixed_length_ids(self.tokenizer, [str(p) for p in prompts])

    def text_features(self, ids: Tensor) -> Tensor:
        """(N, L) token ids -> (N, text_dim): the mean embedding of the words ([UNK] counts; [PAD] [BOS] [EOS] not)."""
        skip = torch.tensor(self.tokenizer.convert_tokens_to_ids(["[PAD]", "[BOS]", "[EOS]"]), device=ids.device)
        keep = (~torch.isin(ids, skip)).unsqueeze(-1).float()
        return (self.embed(ids) * keep).sum(1) / keep.sum(1).clamp(min=1)

    def video_features(self, videos: Tensor, text: Tensor) -> Tensor:
        """(N, T, H, W, 3) pixels and (N, text_dim) prompt vectors -> (N, 2 * widths[-1]): the prompt-modulated
        (FiLM) Conv3d features, mean- and max-pooled."""
        x = videos.permute(0, 4, 1, 2, 3).float()
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
        h = self.patches(torch.cat([x, diff], dim=1))
        gamma, beta = self.film(text)[:, :, None, None, None].chunk(2, dim=1)
        h = self.mix(h * (1 + gamma) + beta).flatten(2)
        return torch.cat([h.mean(-1), h.amax(-1)], dim=-1)

    def forward(self, videos: Tensor, ids: Tensor) -> Tensor:
        """Return (N, len(DIMENSIONS)) logits."""
        text = self.text_features(ids)
        video = self.video_features(videos, text)
        return self.head(torch.cat([video, text, video * self.gate(text)], dim=-1))


class CriticModule(StepModule):
    """Masked BCE on the labelled cells: sum m * BCE(sigma(z), y) / sum m (see the module docstring)."""

    def __init__(self, net: VideoCriticNet, *, lr: float = 2e-3, weight_decay: float = 0.01):
        super().__init__()
        self.net, self.lr, self.weight_decay = net, lr, weight_decay

    def trainable_module(self) -> nn.Module:
        return self.net

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        logits = self.net(batch["videos"], batch["ids"])
        labels, mask = batch["labels"], batch["mask"]
        cells = F.binary_cross_entropy_with_logits(logits, labels, reduction="none") * mask
        loss = cells.sum() / mask.sum().clamp(min=1)
        correct = ((logits >= 0) == (labels >= 0.5)).float() * mask
        self.log_metrics({"loss": loss.detach(), "accuracy": correct.sum() / mask.sum().clamp(min=1)}, stage,
                         batch_size=labels.size(0))
        return loss


def _label_rows(labels: dict[str, float]) -> tuple[list[float], list[float]]:
    """Return (labels, mask) as lists over DIMENSIONS (0 where unlabelled)."""
    return [float(labels.get(d, 0.0)) for d in DIMENSIONS], [1.0 if d in labels else 0.0 for d in DIMENSIONS]


def _training_rows(net: VideoCriticNet, examples: Sequence[LabelExample]) -> list[dict[str, Tensor]]:
    """Return one row per example: its resampled video (uint8), token ids, labels and label mask."""
    ids = net.encode_prompts([ex.prompt for ex in examples])
    rows = []
    for i, ex in enumerate(examples):
        video = resample_video(read_video(ex.video), net.frames, net.resolution)
        labels, mask = _label_rows(_parse_labels(ex.labels))
        rows.append({"videos": torch.from_numpy(np.round(video * 255).astype(np.uint8)), "ids": ids[i],
                     "labels": torch.tensor(labels), "mask": torch.tensor(mask)})
    return rows


def collate_rows(rows: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack training rows into a batch (videos back to floats in [0, 1])."""
    batch = {k: torch.stack([r[k] for r in rows]) for k in rows[0]}
    batch["videos"] = batch["videos"].float() / 255.0
    return batch


def save_critic(net: VideoCriticNet, folder: str | os.PathLike) -> Path:
    """Write config.json and model.safetensors into `folder` and mark it complete."""
    from safetensors.torch import save

    folder = Path(folder)
    write_json(folder / "config.json", net.config())
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    write_bytes(folder / "model.safetensors", save(tensors))
    return mark_complete(folder)


def train_learned_critic(examples: Sequence[LabelExample], out_dir: str | os.PathLike, *, vocabulary: Sequence[str],
                         steps: int = 300, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                         trainer: TrainerArgs | None = None, frames: int = 8, resolution: int = 32) -> Path:
    """Train a critic on labelled examples in out_dir (resumable) and return its folder out_dir/model.

    A complete out_dir/model is returned as it is, without training.
    """
    out_dir = Path(out_dir)
    folder = out_dir / "model"
    if is_complete(folder):
        return folder
    if not examples:
        raise ValueError("train_learned_critic: no examples")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = VideoCriticNet(vocabulary, frames=frames, resolution=resolution)
    rows = _training_rows(net, examples)
    print(f"learned critic: {steps} steps on {len(rows)} labelled videos", flush=True)
    train_stage(out_dir, trainer or cpu_trainer(), steps, seed, CriticModule(net, lr=lr),
                make_loader(rows, batch_size, collate_rows, seed=seed), curves=("loss", "accuracy"))
    return save_critic(net.eval(), folder)


class LearnedCritic:
    """Scores videos against prompts with a trained VideoCriticNet: sigmoid per dimension plus "overall"."""

    name = "learned"

    def __init__(self, net: VideoCriticNet, batch_size: int = SCORE_BATCH):
        self.net, self.batch_size = net.eval(), batch_size

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "LearnedCritic":
        """Load a critic folder written by train_learned_critic."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        config.pop("dimensions", None)
        net = VideoCriticNet(config.pop("vocabulary"), **config)
        net.load_state_dict(load_file(folder / "model.safetensors"))
        return cls(net)

    @torch.no_grad()
    def probabilities(self, videos: Sequence, prompts: Sequence[str]) -> np.ndarray:
        """Return (N, len(DIMENSIONS)) scores in [0, 1]; a video may be an array or a file path."""
        if len(videos) != len(prompts):
            raise ValueError(f"score: {len(videos)} videos for {len(prompts)} prompts")
        device = next(self.net.parameters()).device
        out = []
        for start in range(0, len(videos), self.batch_size):
            end = start + self.batch_size
            chunk = [read_video(v) if isinstance(v, (str, os.PathLike)) else v for v in videos[start:end]]
            logits = self.net(self.net.prepare_videos(chunk).to(device),
                              self.net.encode_prompts(prompts[start:end]).to(device))
            out.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(DIMENSIONS)), np.float32)

    def score(self, videos: Sequence, prompts: Sequence[str]) -> list[dict[str, float]]:
        """Return one {dimension: score, ..., "overall": mean} per (video, prompt)."""
        results = []
        for row in self.probabilities(list(videos), list(prompts)):
            scores = {d: float(p) for d, p in zip(DIMENSIONS, row)}
            scores["overall"] = float(np.mean(row))
            results.append(scores)
        return results


def accuracy(critic, examples: Sequence[LabelExample], batch_size: int = SCORE_BATCH) -> dict[str, float]:
    """Return, per labelled dimension, the share of labelled cells where score >= 0.5 matches label >= 0.5,
    and "n/<dimension>", the number of those cells (dimensions no example labels are left out)."""
    hits = dict.fromkeys(DIMENSIONS, 0)
    counts = dict.fromkeys(DIMENSIONS, 0)
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        scores = critic.score([read_video(ex.video) for ex in chunk], [ex.prompt for ex in chunk])
        for ex, s in zip(chunk, scores):
            for dim, label in ex.labels.items():
                counts[dim] += 1
                hits[dim] += int((s[dim] >= 0.5) == (label >= 0.5))
    out: dict[str, float] = {}
    for dim in DIMENSIONS:
        if counts[dim]:
            out[dim] = hits[dim] / counts[dim]
            out[f"n/{dim}"] = counts[dim]
    return out


def main(argv: list[str] | None = None) -> dict:
    """python -m apps.t2v.learned_critic --labels FILE --out DIR: train a learned critic, report held-out accuracy."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m apps.t2v.learned_critic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, required=True, help="a label file (JSONL) to train on")
    parser.add_argument("--heldout-labels", type=Path, help="a label file to report accuracy on")
    parser.add_argument("--out", type=Path, required=True, help="the run folder; the critic is saved in <out>/model")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        train = load_labels(args.labels)
        heldout = load_labels(args.heldout_labels) if args.heldout_labels else []
    except (LabelFileError, OSError) as exc:
        parser.exit(2, f"{parser.prog}: error: {' '.join(str(exc).split())}\n")
    folder = train_learned_critic(train, args.out, vocabulary=prompt_vocabulary([e.prompt for e in train + heldout]),
                                  steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    result = {"model": str(folder)}
    if heldout:
        result["heldout_accuracy"] = accuracy(LearnedCritic.load(folder), heldout)
        write_json(args.out / "heldout_accuracy.json", result["heldout_accuracy"])
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
