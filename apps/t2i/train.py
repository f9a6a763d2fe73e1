"""Train a text-to-image model: SFT on rendered scenes, then OSPO and its baselines, then the GenEval-style eval.

    python -m apps.t2i.train --config configs/t2i/ospo.yaml          # embedded default (tiny pixel UNet, CPU)
    python -m apps.t2i.train --config configs/t2i/paper_sd15.yaml    # Stable Diffusion 1.5 + LoRA, GPU
    python -m apps.t2i.train --help                                  # every option with its default

Stages, each skipped when a rerun finds it complete (a killed run resumes): prompts (data/),
SFT (sft/model: a diffusers pipeline), OSPO's image pool from the SFT model (pool/: images,
samples.jsonl with each image's object checks, pairs_<method>.jsonl), one preference fit per
method from the SFT model (<method>/model), and the evaluation of every model on held-out
prompts (eval/: table.md, results.json, grids). The run folder ends with final_model.json
(OSPO's model, read by infer).
"""

from __future__ import annotations

import os
import random
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from apps.t2i.config import METHODS, T2IConfig
from apps.t2i.data import build_split, load_prompts, write_prompts
from apps.t2i.model import T2IModel, load_model, load_saved, tokenize
from apps.t2i.preference import (
    dpo_pairs,
    draw_and_check,
    generation_requests,
    initial_scenes,
    kto_samples,
    ospo_pairs,
)
from apps.t2i.scenes import CATEGORIES, Scene, prompt_of, render, sample_scene
from shared.atomic import write_json
from shared.config import parse_or_exit, save_resolved
from shared.models.saved import is_complete, mark_complete
from shared.plots import plot_training_curves
from shared.records import Candidate, read_jsonl, write_jsonl
from shared.training import build_trainer, fit, make_loader, quiet_lightning

PROG = "python -m apps.t2i.train"


def prompt_sets(cfg: T2IConfig) -> tuple[list[Scene], list[Scene]]:
    """(OSPO's initial training prompts, held-out evaluation prompts), from files or generated; written to data/."""
    data = cfg.run_dir / "data"
    if cfg.data.train_prompts:
        train = [r.scene for r in load_prompts(cfg.data.train_prompts)]
        leaked = [prompt_of(s) for s in train if s.split != "train"]
        if leaked:
            raise ValueError(f"{cfg.data.train_prompts}: {len(leaked)} prompts use held-out combinations, e.g. {leaked[0]!r}")
    else:
        train = initial_scenes(cfg.ospo.prompts_per_category, cfg.seed)
    if cfg.data.heldout_prompts:
        heldout = [r.scene for r in load_prompts(cfg.data.heldout_prompts)]
    else:
        heldout = [s for c in CATEGORIES for s in build_split(0, cfg.eval.prompts_per_category, cfg.seed)["heldout"][c]]
    write_prompts(data / "train_prompts.jsonl", train)
    write_prompts(data / "heldout_prompts.jsonl", heldout)
    return train, heldout


def sft_dataset(model: T2IModel, n: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """n rendered training-split scenes (categories in turn), as model-space samples and prompt token ids."""
    rng = random.Random(f"t2i-sft:{seed}")
    scenes = [sample_scene(rng, CATEGORIES[i % len(CATEGORIES)], "train") for i in range(n)]
    images = np.stack([render(s, model.resolution, seed * 1_000_003 + i).image for i, s in enumerate(scenes)])
    samples = torch.cat([model.to_model_space(images[i:i + 256]) for i in range(0, n, 256)]) if n else torch.zeros(0)
    ids = tokenize(model.tokenizer, [prompt_of(s) for s in scenes])
    return [{"samples": samples[i], "input_ids": ids[i]} for i in range(n)]


def stack(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}


def save_model(model: T2IModel, folder: Path) -> Path:
    return mark_complete(model.save(folder))


def run_sft(cfg: T2IConfig) -> Path:
    """The SFT pipeline folder (skipped when complete)."""
    from shared.modules.diffusion_sft import DiffusionSFTModule

    folder = cfg.run_dir / "sft" / "model"
    if is_complete(folder):
        return folder
    model = load_model(cfg.model, cfg.seed)
    if cfg.sft.steps > 0:
        data = sft_dataset(model, cfg.data.sft_images, cfg.seed)
        print(f"SFT: {cfg.sft.steps} steps on {len(data)} rendered scenes", flush=True)
        module = DiffusionSFTModule(model.unet, model.noise_scheduler, text_encoder=model.text_encoder,
                                    empty_ids=tokenize(model.tokenizer, [""])[0],
                                    train_text_encoder=cfg.sft.train_text_encoder and cfg.model.source == "tiny",
                                    condition_dropout=cfg.sft.condition_dropout, lr=cfg.sft.lr, seed=cfg.seed)
        fit(build_trainer(replace(cfg.trainer, max_steps=cfg.sft.steps, seed=cfg.seed), cfg.run_dir / "sft"),
            module, make_loader(data, cfg.sft.batch_size, stack, seed=cfg.seed))
        plot_training_curves(cfg.run_dir / "sft", curves=("loss",))
    return save_model(model, folder)


def build_pool(cfg: T2IConfig, sft: Path, train: list[Scene]) -> list[Candidate]:
    """OSPO's image pool (base and hard-negative prompts, object checks), skipped when written."""
    folder = cfg.run_dir / "pool"
    done = folder / "samples.jsonl"
    if done.is_file():
        return read_jsonl(done, Candidate)
    model = load_saved(sft, cfg.model.resolution)
    o, s = cfg.ospo, cfg.sampling
    requests = generation_requests(train, o.negatives_per_prompt, o.images_per_prompt, cfg.seed, model.resolution)
    print(f"OSPO pool: {len(requests)} images for {len(train)} prompts and their hard negatives", flush=True)
    samples = draw_and_check(model, requests, folder, steps=s.steps, guidance=s.guidance, batch_size=s.batch_size)
    write_jsonl(done, samples)
    return samples


def method_data(method: str, samples: list[Candidate], cfg: T2IConfig) -> list:
    """The method's pairs (or KTO's labelled images), written to pool/pairs_<method>.jsonl."""
    o = cfg.ospo
    if method in ("ospo", "ospo_mask"):
        records = ospo_pairs(samples, o.max_pairs_per_prompt, cfg.seed)
    elif method == "diffusion_dpo":
        records = dpo_pairs(samples, o.max_pairs_per_prompt, cfg.seed)
    else:
        records = kto_samples(samples)
    write_jsonl(cfg.run_dir / "pool" / f"pairs_{method}.jsonl", records)
    return records


class PreferenceBatches:
    """Turns pairs (or labelled images) into DiffusionPreferenceModule batches: model-space images, prompt
    embeddings, the negative prompt's embedding (OSPO) and object-mask pixel weights (ospo_mask)."""

    def __init__(self, model: T2IModel, folder: Path, method: str, mask_weight: float):
        self.model, self.folder, self.method, self.mask_weight = model, folder, method, mask_weight
        self._embeddings: dict[str, torch.Tensor] = {}

    def embed(self, prompts: list[str]) -> torch.Tensor:
        missing = sorted({p for p in prompts if p not in self._embeddings})
        if missing:
            for p, e in zip(missing, self.model.encode_prompts(missing)):
                self._embeddings[p] = e
        return torch.stack([self._embeddings[p] for p in prompts])

    def image(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        from apps.t2i.checker import detect
        from apps.t2i.preference import read_png

        pixels = read_png(self.folder / name)
        sample = self.model.to_model_space(pixels[None])[0]
        mask = np.zeros(pixels.shape[:2], dtype=np.float32)
        for d in detect(pixels):
            mask[d.mask] = 1.0
        weight = torch.from_numpy(1.0 + self.mask_weight * mask)[None]
        if sample.shape[-1] != weight.shape[-1]:  # latent space: the mask at the latents' resolution
            weight = torch.nn.functional.interpolate(weight[None], size=sample.shape[-2:], mode="area")[0]
        return sample, weight

    def items(self, records: list) -> list[dict[str, torch.Tensor]]:
        out = []
        for r in records:
            if self.method == "diffusion_kto":
                sample, _ = self.image(r.output)
                out.append({"samples": sample, "desirable": torch.tensor(r.scores["passed"] == 1.0),
                            "encoder_hidden_states": self.embed([r.prompt])[0]})
                continue
            (chosen, w_chosen), (rejected, w_rejected) = self.image(r.chosen), self.image(r.rejected)
            item = {"chosen": chosen, "rejected": rejected, "encoder_hidden_states": self.embed([r.prompt])[0]}
            if self.method in ("ospo", "ospo_mask"):
                item["negative_encoder_hidden_states"] = self.embed([r.metadata["negative_prompt"]])[0]
            if self.method == "ospo_mask":
                item["chosen_weights"], item["rejected_weights"] = w_chosen, w_rejected
            out.append(item)
        return out


def run_method(cfg: T2IConfig, method: str, sft: Path, records: list) -> Path | None:
    """Fit `method` from the SFT model on its records; the saved pipeline folder (None without data)."""
    from shared.modules.diffusion import DiffusionPreferenceModule

    folder = cfg.run_dir / method / "model"
    if is_complete(folder):
        return folder
    if not records or (method == "diffusion_kto" and len({r.scores["passed"] for r in records}) < 2):
        print(f"{method}: no training data (no pairs, or no images on one side); skipped", flush=True)
        return None
    p = cfg.pref
    model = load_saved(sft, cfg.model.resolution)
    if cfg.model.lora.r > 0:
        from peft import LoraConfig

        model.unet.requires_grad_(False)
        model.unet.add_adapter(LoraConfig(r=cfg.model.lora.r, lora_alpha=cfg.model.lora.alpha,
                                          target_modules=list(cfg.model.lora.target_modules), init_lora_weights="gaussian"))
    model.text_encoder.requires_grad_(False)
    items = PreferenceBatches(model, cfg.run_dir / "pool", method, p.mask_weight).items(records)
    loss = "diffusion_ospo" if method in ("ospo", "ospo_mask") else method
    kwargs = {"beta": p.beta}
    if loss == "diffusion_ospo":
        kwargs.update(pair_weight=p.pair_weight, cond_weight=p.cond_weight, sft_weight=p.sft_weight)
    module = DiffusionPreferenceModule(model.unet, model.noise_scheduler, loss=loss, loss_kwargs=kwargs, lr=p.lr,
                                       seed=cfg.seed)
    print(f"{method}: {p.steps} steps on {len(items)} {'images' if method == 'diffusion_kto' else 'pairs'}", flush=True)
    fit(build_trainer(replace(cfg.trainer, max_steps=p.steps, seed=cfg.seed), cfg.run_dir / method),
        module, make_loader(items, p.batch_size, stack, seed=cfg.seed))
    plot_training_curves(cfg.run_dir / method)
    return save_model(model, folder)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_or_exit(T2IConfig, argv, description=__doc__, prog=PROG)
    quiet_lightning()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        unknown = [m for m in cfg.pref.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"pref.methods: unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
        train, heldout = prompt_sets(cfg)
    except (ValueError, OSError) as exc:  # a malformed prompt file, an unknown method: one line
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    save_resolved(cfg, cfg.run_dir)
    sft = run_sft(cfg)
    models = {"sft": sft}
    if cfg.pref.methods:
        samples = build_pool(cfg, sft, train)
        for method in cfg.pref.methods:
            records = method_data(method, samples, cfg)
            folder = run_method(cfg, method, sft, records)
            if folder is not None:
                models[method] = folder
    from apps.t2i.evaluate import evaluate_models

    final = models.get("ospo", models.get("ospo_mask", sft))
    write_json(cfg.run_dir / "final_model.json", {"path": str(Path(final).resolve()),
                                                   "models": {k: str(Path(v).resolve()) for k, v in models.items()}})
    results = evaluate_models(cfg, models, heldout, cfg.run_dir / "eval")
    write_json(cfg.run_dir / "results.json", results)
    return results


if __name__ == "__main__":
    main()
