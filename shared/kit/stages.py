"""Recipe stages every app composes: SFT, an offline preference fit, a group-RL fit; each resumable.

A stage writes under its own folder of the run and ends with a model folder marked complete
(shared.models.saved), so a rerun skips a finished stage and resumes an interrupted fit from
Lightning's last checkpoint (shared.training.fit). Apps give their domain parts only: the SFT
examples, the pairs, the reward and its prompts.

    start = run_sft(run_dir, cfg.model, cfg.sft, cfg.trainer, cfg.seed, lambda: examples(train))
    fit = preference_round_fit(cfg.model, cfg.pref, cfg.trainer, start)     # RecipeFunctions.fit of shared.loop
    final = run_group_rl(run_dir / "grpo", policy, tok, reward, items, cfg.grpo, cfg.sample, cfg.trainer, ...)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from shared.kit.sections import GroupRLArgs, PreferenceArgs, SampleArgs, SFTArgs
from shared.models import ModelSpec, is_complete, load_policy, save_merged, saved_spec
from shared.modules import (
    GroupRLModule,
    PreferenceCollator,
    PreferenceModule,
    RankedListCollator,
    SFTCollator,
    SFTModule,
    build_reference,
    encode_pairs,
    encode_ranked_lists,
    encode_sft,
)
from shared.plots import DEFAULT_CURVES, plot_training_curves
from shared.records import Pair, RankedList, write_jsonl
from shared.resources import release_after
from shared.training import StageResources, TrainerArgs, build_trainer, fit, make_loader


def policy_at(model: ModelSpec, folder: Path | str, seed: int, lora: bool) -> tuple[Any, Any]:
    """Return (policy, tokenizer) loaded from a saved model folder, with a fresh adapter of `model`'s LoRA settings or none."""
    return load_policy(saved_spec(model, folder, seed, lora))


def train_stage(stage_dir: Path, trainer: TrainerArgs, steps: int, seed: int, module, loader, *,
                callbacks: Sequence[Callback] = (), curves: Sequence[str] = DEFAULT_CURVES,
                checkpoint_every: int | None = None) -> None:
    """Fit `module` for `steps` optimiser steps under Lightning in stage_dir (resuming its last checkpoint); plot its curves.

    The fit's time and peak resident memory go to stage_dir/resources.json (shared.resources); freed
    memory goes back to the OS when it ends, if the fit grew the process (shared.resources.release_after).
    """
    args = replace(trainer, max_steps=steps, seed=seed)
    if checkpoint_every:
        args = replace(args, checkpoint_every_n_steps=trainer.checkpoint_every_n_steps or checkpoint_every)
    usage = StageResources(Path(stage_dir) / "resources.json")
    fit(build_trainer(args, stage_dir, callbacks=[*callbacks, usage]), module, loader)
    release_after(usage.usage)
    plot_training_curves(stage_dir, curves=curves)


def reference_for(kind: str, model: ModelSpec, policy) -> Any:
    """Return the preference reference: `auto` is the adapter-disabled policy with LoRA, a frozen copy without."""
    if kind == "auto":
        kind = "adapter_disabled" if model.uses_lora() else "frozen_copy"
    return build_reference(kind, policy)


def run_sft(run_dir: Path, model: ModelSpec, sft: SFTArgs, trainer: TrainerArgs, seed: int,
            examples: Callable[..., Sequence[tuple[Any, ...]]], what: str = "", tokenized: bool = False,
            name: str = "sft") -> Path:
    """Return the SFT model folder: sft.init_from, run_dir/<name>/model when complete, or a fresh SFT run saved there.

    `examples()` gives (prompt, target) pairs (prompts as text or chat messages); with `tokenized`,
    `examples(tokenizer)` gives token ids as they are: (prompt ids, completion ids) or with a third
    element, the 0/1 mask of the completion tokens that are scored (shared.logprobs). It is only
    called when SFT actually trains. With sft.steps 0 the base model is saved unchanged. `name` lets a
    recipe keep two SFT stages apart (the ladder app's plain SFT and retrieval-augmented SFT).
    """
    if sft.init_from:
        return Path(sft.init_from)
    folder = run_dir / name / "model"
    if is_complete(folder):
        return folder
    policy, tok = load_policy(model)
    if sft.steps > 0:
        data = list(examples(tok)) if tokenized else encode_sft(examples(), tok, max_length=sft.max_length)
        print(f"SFT: {sft.steps} steps on {len(data)} examples{' ' + what if what else ''}", flush=True)
        train_stage(run_dir / name, trainer, sft.steps, seed, SFTModule(policy, lr=sft.lr),
                    make_loader(data, sft.batch_size, SFTCollator(tok.pad_token_id), seed=seed))
    return save_merged(policy, tok, folder)


def limit_pairs(pairs: list, max_pairs: int, seed: int, keep_order: bool = False) -> list:
    """Return at most max_pairs of the pairs (a seeded draw; all when max_pairs is 0 or there are fewer).

    With `keep_order` the drawn pairs keep their order in `pairs` (the same draw, sorted by position).
    """
    if max_pairs and len(pairs) > max_pairs:
        drawn = random.Random(seed).sample(range(len(pairs)), max_pairs)  # the same draw as sampling pairs
        return [pairs[i] for i in (sorted(drawn) if keep_order else drawn)]
    return pairs


def fit_preference(policy, tok, records: Sequence[Pair] | Sequence[RankedList], pref: PreferenceArgs, model: ModelSpec,
                   trainer: TrainerArgs, stage_dir: Path, seed: int, save_to: Path, ordered: bool = False) -> Path:
    """Train the policy on pairs or ranked lists with pref.loss against pref.reference; save it (adapter merged) to save_to.

    With `ordered`, batches follow the records' order (a curriculum, shared.pairs.curriculum_order) instead of a
    seeded shuffle; past the end the order repeats.
    """
    reference = reference_for(pref.reference, model, policy)
    module = PreferenceModule(policy, reference, loss=pref.loss, loss_kwargs={"beta": pref.beta}, lr=pref.lr)
    if records and isinstance(records[0], RankedList):
        data, collate = encode_ranked_lists(records, tok, max_length=pref.max_length), RankedListCollator(tok.pad_token_id)
    else:
        data, collate = encode_pairs(records, tok, max_length=pref.max_length), PreferenceCollator(tok.pad_token_id)
    loader = make_loader(data, pref.batch_size, collate, seed=seed, shuffle=not ordered)
    train_stage(stage_dir, trainer, pref.steps, seed, module, loader)
    return save_merged(policy, tok, save_to)


def preference_round_fit(model: ModelSpec, pref: PreferenceArgs, trainer: TrainerArgs, start: Path, ordered: bool = False):
    """Return a shared.loop `fit` stage: each round trains from the previous round's model (round 1: `start`).

    With `ordered`, each round trains on its pairs in the order `build` returned them (a curriculum; a
    pref.max_pairs draw keeps that order).
    """

    def fit_round(round, pairs, schedule, init_checkpoint):
        trained = limit_pairs(list(pairs), pref.max_pairs, round.seed, keep_order=ordered)  # pairs.jsonl keeps all
        if len(trained) < len(pairs):
            print(f"round {round.index + 1}: training on {len(trained)} of {len(pairs)} pairs (pref.max_pairs)", flush=True)
        policy, tok = policy_at(model, start if init_checkpoint is None else init_checkpoint, round.seed, lora=True)
        return fit_preference(policy, tok, trained, pref, model, trainer, round.dir / "fit", round.seed,
                              round.checkpoint_dir / "model", ordered=ordered)

    return fit_round


class GroupSampleWriter(Callback):
    """Write each group-RL step's completions, rewards and advantages as JSONL (nothing generated is lost)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        write_jsonl(self.folder / f"step_{trainer.global_step:05d}.jsonl", [
            {"prompt": s["prompt"], "completion": s["completion"], "reward": s["reward"], "advantage": s["advantage"]}
            for s in pl_module.last_samples])


def run_group_rl(stage_dir: Path, policy, tok, reward, items: Sequence, rl: GroupRLArgs, sample: SampleArgs,
                 model: ModelSpec, trainer: TrainerArgs, seed: int) -> Path:
    """Train the policy online with rl.loss on group advantages; return stage_dir/model (skipped when complete).

    Each item is a prompt or {"prompt": ..., "context": {...}} (the context reaches the reward);
    every step's samples are written to stage_dir/samples/.
    """
    folder = stage_dir / "model"
    if is_complete(folder):
        return folder
    reference = reference_for("auto", model, policy) if rl.beta > 0 else None
    module = GroupRLModule(policy, tok, reward, reference, loss=rl.loss, loss_kwargs={"beta": rl.beta},
                           group_size=rl.group_size, max_new_tokens=sample.max_new_tokens, temperature=sample.temperature,
                           top_p=sample.top_p, lr=rl.lr)
    train_stage(stage_dir, trainer, rl.steps, seed, module, make_loader(list(items), rl.prompts_per_step, list, seed=seed),
                callbacks=[GroupSampleWriter(stage_dir / "samples")], checkpoint_every=rl.checkpoint_every)
    return save_merged(policy, tok, folder)


def set_threads() -> None:
    """Use every CPU core for torch's intra-op work (entry points call this once)."""
    import os

    torch.set_num_threads(max(1, os.cpu_count() or 1))
