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

import random
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
from apps.t2i.eval import evaluate
from shared.scenes.image import CATEGORIES, Scene, prompt_of, render, sample_scene
from shared.kit import finish_run, record_final_model, start_run
from shared.kit.diffusion import add_unet_lora, fit_diffusion_preference, run_diffusion_sft
from shared.models.saved import is_complete, mark_complete
from shared.records import Candidate, read_jsonl, write_jsonl

PROG = "python -m apps.t2i.train"


def prompt_sets(cfg: T2IConfig) -> tuple[list[Scene], list[Scene]]:
    """(OSPO's initial training prompts, held-out evaluation prompts), from files or generated; written to data/.

    An unknown method or a malformed prompt file raises ValueError with one line."""
    unknown = [m for m in cfg.pref.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"pref.methods: unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
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


def save_model(model: T2IModel, folder: Path) -> Path:
    return mark_complete(model.save(folder))


def run_sft(cfg: T2IConfig) -> Path:
    """The SFT pipeline folder (skipped when complete)."""
    return run_diffusion_sft(cfg.run_dir, cfg.sft, cfg.trainer, cfg.seed, load=lambda: load_model(cfg.model, cfg.seed),
                             dataset=lambda model: sft_dataset(model, cfg.data.sft_images, cfg.seed),
                             empty_ids=lambda model: tokenize(model.tokenizer, [""])[0], save=save_model,
                             train_text_encoder=cfg.model.source == "tiny")


def build_pool(cfg: T2IConfig, sft: Path, train: list[Scene]) -> list[Candidate]:
    """OSPO's image pool (base and hard-negative prompts, object checks), skipped when written."""
    folder = cfg.run_dir / "pool"
    done = folder / "samples.jsonl"
    if done.is_file():
        return read_jsonl(done, Candidate)
    model = load_saved(sft, cfg.model.resolution)
    o, s = cfg.ospo, cfg.sample
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
        from shared.scenes.checker import detect
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
    folder = cfg.run_dir / method / "model"
    if is_complete(folder):
        return folder
    if not records or (method == "diffusion_kto" and len({r.scores["passed"] for r in records}) < 2):
        print(f"{method}: no training data (no pairs, or no images on one side); skipped", flush=True)
        return None
    p = cfg.pref
    model = load_saved(sft, cfg.model.resolution)
    add_unet_lora(model.unet, cfg.model.lora)
    model.text_encoder.requires_grad_(False)
    items = PreferenceBatches(model, cfg.run_dir / "pool", method, p.mask_weight).items(records)
    loss = "diffusion_ospo" if method in ("ospo", "ospo_mask") else method
    kwargs = {"beta": p.beta}
    if loss == "diffusion_ospo":
        kwargs.update(pair_weight=p.pair_weight, cond_weight=p.cond_weight, sft_weight=p.sft_weight)
    print(f"{method}: {p.steps} steps on {len(items)} {'images' if method == 'diffusion_kto' else 'pairs'}", flush=True)
    return fit_diffusion_preference(cfg.run_dir / method, model, items, loss=loss, loss_kwargs=kwargs, fit=p,
                                    trainer=cfg.trainer, seed=cfg.seed, save=save_model)


def main(argv: list[str] | None = None) -> dict:
    cfg, (train, heldout) = start_run(T2IConfig, argv, doc=__doc__, prog=PROG, prepare=prompt_sets)
    sft = run_sft(cfg)
    models = {"sft": sft}
    if cfg.pref.methods:
        samples = build_pool(cfg, sft, train)
        for method in cfg.pref.methods:
            records = method_data(method, samples, cfg)
            folder = run_method(cfg, method, sft, records)
            if folder is not None:
                models[method] = folder
    final = models.get("ospo", models.get("ospo_mask", sft))
    every = {k: str(Path(v).resolve()) for k, v in models.items()}
    record_final_model(cfg.run_dir, final, models=every)  # before the evaluation, so a finished model is served
    table = evaluate(cfg, models, heldout, cfg.run_dir / "eval")
    return finish_run(cfg.run_dir, final, table.as_json(), models=every)


if __name__ == "__main__":
    main()
