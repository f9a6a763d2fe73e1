"""The recipe's fits on video inputs: SFT and DPO stages of the core's modules, batched with their videos.

Each stage trains under Lightning in its own folder (resuming its last checkpoint), saves the model
with any adapter merged (plus the processor) and marks it complete, so a rerun skips it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from apps.videollm.model import VideoLLMSpec, load_video_llm, saved
from shared.kit import FitArgs, PreferenceArgs, reference_for, train_stage
from shared.models import is_complete, save_merged
from shared.modules import EncodedPair, MediaCollator, PreferenceCollator, PreferenceModule, SFTCollator, SFTModule
from shared.atomic import write_json
from shared.records import Pair, write_jsonl
from shared.training import TrainerArgs, make_loader

Example = tuple[str, np.ndarray | None, str]  # (question, frames or None, target)


def encode_examples(processor, examples: Sequence[Example]) -> list:
    """Return ((prompt ids, completion ids), media) per example; examples that share a frames array share its media."""
    out, media_of = [], {}
    for question, frames, target in examples:
        ids, media = processor.prompt(question, frames, media_of.get(id(frames)))
        if frames is not None:
            media_of[id(frames)] = media
        out.append(((ids, processor.completion(target)), media))
    return out


def encode_video_pairs(processor, pairs: Sequence[Pair], frames_of: dict[str, np.ndarray]) -> list:
    """Return (EncodedPair, media) per pair; the pair's video is frames_of[pair.metadata["video"]]."""
    out, media_of = [], {}
    for pair in pairs:
        video = pair.metadata["video"]
        ids, media = processor.prompt(pair.prompt, frames_of[video], media_of.get(video))
        media_of[video] = media
        out.append((EncodedPair(ids, processor.completion(pair.chosen), processor.completion(pair.rejected)), media))
    return out


def load_at(spec: VideoLLMSpec, folder: Path | None, seed: int):
    """Return (policy, processor): `spec`'s model (folder None) or a saved folder with spec's adapter settings."""
    return load_video_llm(spec if folder is None else saved(spec, folder, seed))


def sft_stage(stage_dir: Path, spec: VideoLLMSpec, start: Path | None, examples: Sequence[Example], fit: FitArgs,
              trainer: TrainerArgs, seed: int) -> Path:
    """Fine-tune on (question, video, target) examples from `start`; return stage_dir/model (skipped when complete)."""
    folder = stage_dir / "model"
    if is_complete(folder):
        return folder
    policy, processor = load_at(spec, start, seed)
    if fit.steps > 0:
        data = encode_examples(processor, examples)
        collate = MediaCollator(SFTCollator(processor.tokenizer.pad_token_id, packed=False),
                                token_types=processor.token_types)
        print(f"{stage_dir.name}: SFT {fit.steps} steps on {len(data)} examples", flush=True)
        train_stage(stage_dir, trainer, fit.steps, seed, SFTModule(policy, lr=fit.lr),
                    make_loader(data, fit.batch_size, collate, seed=seed))
    return save_merged(policy, processor, folder)


def dpo_stage(stage_dir: Path, spec: VideoLLMSpec, start: Path, pairs: Sequence[Pair], frames_of: dict[str, np.ndarray],
              pref: PreferenceArgs, trainer: TrainerArgs, seed: int, steps: int) -> Path:
    """Train pref.loss on the pairs (with their videos) from `start` for `steps` steps; return stage_dir/model."""
    folder = stage_dir / "model"
    if is_complete(folder):
        return folder
    policy, processor = load_at(spec, start, seed)
    module = PreferenceModule(policy, reference_for(pref.reference, spec, policy), loss=pref.loss,
                              loss_kwargs={"beta": pref.beta}, lr=pref.lr)
    collate = MediaCollator(PreferenceCollator(processor.tokenizer.pad_token_id, layout="padded"), copies=2,
                            token_types=processor.token_types)
    write_jsonl(stage_dir / "pairs.jsonl", pairs)  # what this stage trains on, in order
    write_json(stage_dir / "start.json", {"from": str(start), "steps": steps})
    data = encode_video_pairs(processor, pairs, frames_of)
    print(f"{stage_dir.name}: DPO {steps} steps on {len(data)} pairs", flush=True)
    train_stage(stage_dir, trainer, steps, seed, module, make_loader(data, pref.batch_size, collate, seed=seed))
    return save_merged(policy, processor, folder)
