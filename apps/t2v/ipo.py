"""IPO (iterative preference optimisation for text-to-video): rounds of generate -> critic labels -> optimise.

Each round, through the core's loop (shared.loop: resumable, every artefact written atomically):
- sample: the current model draws `videos_per_prompt` videos per training prompt (seeds from the
  round's seed); each is kept losslessly as round_NNN/videos/<prompt>_<k>.npy;
- score: the critic scores each video against its prompt per dimension (critic.py);
- build: pairwise labelling ("dpo") pairs videos of one prompt whose overall critic scores differ by
  at least `min_margin` (at most `max_pairs_per_prompt` per prompt); pointwise labelling ("kto")
  keeps each prompt's videos as a ranked list, and a video is desirable when its overall score is at
  least `kto_threshold` (IPO's critic says good or bad per video);
- fit: Diffusion-DPO (pairs) or Diffusion-KTO (labelled videos) from the previous round's model
  against it as the frozen reference, with a real (rendered) video of each prompt's scene mixed in
  as a regulariser: loss + real_weight * (denoising error on it) (IPO's regulariser; its exact form is
  not public: ours, documented);
- evaluate: the critic on held-out prompts (one video each), for the loop's per-round report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from apps.t2v.critic import DIMENSIONS, Critic
from apps.t2v.data import VideoPrompt
from apps.t2v.model import T2VModel, load_saved
from shared.kit import FitArgs
from shared.kit.diffusion import add_unet_lora, fit_diffusion_preference
from shared.loop import LoopError
from shared.models import LoraSpec
from shared.models.saved import mark_complete
from shared.pairs import margin_pairs, ranked_lists
from shared.records import Candidate, Pair, RankedList
from shared.scenes.video import VideoScene, render_video
from shared.video_io import read_video, write_npy

LABELLINGS = {"dpo": "diffusion_dpo", "kto": "diffusion_kto"}


@dataclass
class IPOArgs(FitArgs):
    """IPO's rounds, run once per labelling from the SFT model.

    Attributes:
        labellings: "dpo" (pairwise critic labels, Diffusion-DPO) and/or "kto" (pointwise, Diffusion-KTO).
        rounds: generate -> label -> optimise rounds, each from the previous round's model.
        prompts_per_category: generated training prompts per category (when data.train_prompts is empty).
        videos_per_prompt: videos drawn per prompt each round (k).
        beta: the Diffusion-DPO / -KTO beta (diffusers' research example: 2500 for DPO; Diffusion-KTO: 1000).
        min_margin: a DPO pair's least gap in the critic's overall score.
        max_pairs_per_prompt: DPO pairs kept per prompt (seeded subsample).
        kto_threshold: KTO: a video is desirable when its overall critic score is at least this.
        real_weight: weight of the denoising loss on a real (rendered) video of each training item's prompt.
        eval_prompts: held-out prompts the loop's per-round evaluation draws one video for.
    """

    labellings: list[str] = field(default_factory=lambda: ["dpo", "kto"])
    rounds: int = 2
    prompts_per_category: int = 12
    videos_per_prompt: int = 4
    beta: float = 2500.0
    min_margin: float = 0.1
    max_pairs_per_prompt: int = 3
    kto_threshold: float = 0.95
    real_weight: float = 0.5
    eval_prompts: int = 20


def video_seed(seed: int, prompt_index: int, k: int) -> int:
    return (7_919 * seed + 1_000 * prompt_index + k) % (2**31)


def sample_videos(model: T2VModel, prompts: list[VideoPrompt], k: int, seed: int, folder: Path, *, steps: int,
                  guidance: float, batch_size: int) -> list[Candidate]:
    """Draw k videos per prompt, write each as folder/videos/<i>_<k>.npy; return candidates (output: that path)."""
    texts = [p.prompt for p in prompts for _ in range(k)]
    seeds = [video_seed(seed, i, j) for i in range(len(prompts)) for j in range(k)]
    videos = model.generate(texts, seeds, steps=steps, guidance=guidance, batch_size=batch_size)
    out = []
    for n, video in enumerate(videos):
        i, j = divmod(n, k)
        name = f"videos/{i:04d}_{j}.npy"
        write_npy(folder / name, video)
        out.append(Candidate(prompt_id=str(i), prompt=prompts[i].prompt, output=name,
                             metadata={"scene": prompts[i].scene.to_dict(), "seed": seeds[n]}))
    return out


def score_videos(critic: Critic, candidates: list[Candidate], folder: Path) -> list[Candidate]:
    """Fill each candidate's scores with the critic's verdict on its video (read from `folder`)."""
    videos = [read_video(folder / c.output) for c in candidates]
    scenes = [VideoScene.from_dict(c.metadata["scene"]) if "scene" in c.metadata else None for c in candidates]
    scores = critic.score(videos, [c.prompt for c in candidates], scenes)
    return [Candidate(c.prompt_id, c.prompt, c.output, scores=s, metadata=c.metadata) for c, s in zip(candidates, scores)]


def build_labels(labelling: str, scored: list[Candidate], args: IPOArgs, seed: int) -> list[Pair] | list[RankedList]:
    """DPO: margin pairs on the overall score; KTO: each prompt's videos as a ranked list (labels come from the scores)."""
    if labelling == "dpo":
        pairs = margin_pairs(scored, "overall", margin=args.min_margin, max_pairs_per_prompt=args.max_pairs_per_prompt,
                             seed=seed)
    else:
        pairs = ranked_lists(scored, "overall", min_size=1)
    if not pairs:
        raise LoopError(f"no {labelling} training data from {len(scored)} videos: every prompt's videos score alike "
                        f"(min_margin {args.min_margin}); lower ipo.min_margin or draw more ipo.videos_per_prompt")
    return pairs


def render_clip(scene: VideoScene, frames: int, height: int, width: int, seed: Any) -> np.ndarray:
    """The scene's clip at the model's frame size: rendered square at max(height, width) (at least the renderer's
    32 pixels), then resized per frame (bilinear) when the model's frames are smaller or not square."""
    side = max(height, width, 32)
    clip = render_video(scene, frames, side, seed).frames
    if (height, width) == (side, side):
        return clip
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.BILINEAR)) for f in clip])


class TrainingItems:
    """Turns pairs or ranked lists into DiffusionPreferenceModule batches, each with a real video of its prompt."""

    def __init__(self, model: T2VModel, folder: Path, scenes: dict[str, VideoScene], seed: int):
        self.model, self.folder, self.scenes, self.seed = model, folder, scenes, seed
        self._embeddings: dict[str, torch.Tensor] = {}

    def embed(self, prompt: str) -> torch.Tensor:
        if prompt not in self._embeddings:
            self._embeddings[prompt] = self.model.encode_prompts([prompt])[0]
        return self._embeddings[prompt]

    def video(self, name: str) -> torch.Tensor:
        return self.model.to_model_space(read_video(self.folder / name)[None])[0]

    def real(self, prompt: str, n: int) -> dict[str, torch.Tensor]:
        scene = self.scenes.get(prompt)
        if scene is None:
            return {}
        frames = render_clip(scene, self.model.frames, self.model.height, self.model.width, ("t2v-real", self.seed, prompt, n))
        return {"real": self.model.to_model_space(frames[None])[0], "real_encoder_hidden_states": self.embed(prompt)}

    def items(self, records: list, kto_threshold: float) -> list[dict[str, torch.Tensor]]:
        out = []
        for n, r in enumerate(records):
            if isinstance(r, RankedList):
                for output, score in zip(r.outputs, r.scores):
                    out.append({"samples": self.video(output), "desirable": torch.tensor(score >= kto_threshold),
                                "encoder_hidden_states": self.embed(r.prompt), **self.real(r.prompt, len(out))})
                continue
            out.append({"chosen": self.video(r.chosen), "rejected": self.video(r.rejected),
                        "encoder_hidden_states": self.embed(r.prompt), **self.real(r.prompt, n)})
        if any("real" not in item for item in out) and any("real" in item for item in out):
            out = [{k: v for k, v in item.items() if not k.startswith("real")} for item in out]
        return out


def ipo_fit(labelling: str, args: IPOArgs, lora: LoraSpec, trainer, start: Path, scenes: dict[str, VideoScene]) -> Callable:
    """The loop's fit stage: Diffusion-DPO or -KTO from the previous round's model (round 1: `start`)."""

    def fit(round, records, schedule, init_checkpoint) -> Path:
        model = load_saved(init_checkpoint or start)
        add_unet_lora(model.unet, lora)
        model.text_encoder.requires_grad_(False)
        items = TrainingItems(model, round.dir, scenes, round.seed).items(list(records), args.kto_threshold)
        if labelling == "kto":
            desirable = sum(bool(i["desirable"]) for i in items)
            print(f"round {round.index + 1}: KTO on {len(items)} videos ({desirable} desirable)", flush=True)
        else:
            print(f"round {round.index + 1}: DPO on {len(items)} pairs", flush=True)
        return fit_diffusion_preference(round.dir / "fit", model, items, loss=LABELLINGS[labelling],
                                        loss_kwargs={"beta": args.beta}, fit=args, trainer=trainer, seed=round.seed,
                                        save=lambda m, _: mark_complete(m.save(round.checkpoint_dir / "model")),
                                        real_weight=args.real_weight)

    return fit


def round_metrics(critic: Critic, model: T2VModel, prompts: list[VideoPrompt], seed: int, **sample: Any) -> dict[str, float]:
    """The critic's mean per dimension (and pass rate) on one video per held-out prompt."""
    videos = model.generate([p.prompt for p in prompts], [video_seed(seed, i, 0) for i in range(len(prompts))], **sample)
    scores = critic.score(list(videos), [p.prompt for p in prompts], [p.scene for p in prompts])
    return {k: float(np.mean([s[k] for s in scores])) for k in (*DIMENSIONS, "overall", "passed")}
