"""Core demo: SFT then DPO of a tiny model on a task whose preferred answers follow a checkable rule.

    python -m shared.demo                       # 3 seeds, about 75 seconds on 2 CPU cores
    python -m shared.demo --help                # every option with its default
    python -m shared.demo --config configs/demo/default.yaml dpo.loss=ipo seeds=[0]

Task: the prompt `say <word>:` asks for the word's first letter. The SFT data answers with it in
upper or lower case at random, so the SFT model copies the letter but picks its case by chance.
The rule the preferences encode: answer in upper case. The one loop then runs as every app runs
it: the SFT model samples answers for the training prompts, a reward scores them (1 for the
upper-case letter, 0.5 for the right letter in lower case, 0 otherwise; invalid output scores 0),
`best_vs_worst` builds pairs, and DPO (any registered pairwise loss) trains against the frozen
SFT model. Held-out words never appear in training. Reported: the rule-following rate (greedy
answer is exactly the upper-case letter) and the copy rate (right letter, either case), before
and after DPO, mean and sd over seeds. Everything lands in the run folder: resolved config,
candidates/pairs JSONL, Lightning logs and checkpoints, training-curve PNGs, the final model
(save_pretrained) and results.json.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from shared.atomic import write_json
from shared.config import parse_or_exit, save_resolved
from shared.kit.sections import FitArgs
from shared.models import ModelSpec, load_policy, save_policy
from shared.modules import (
    PreferenceCollator,
    PreferenceModule,
    SFTCollator,
    SFTModule,
    build_reference,
    encode_pairs,
    encode_sft,
)
from shared.pairs import best_vs_worst
from shared.plots import plot_by_round, plot_training_curves
from shared.records import Candidate, write_jsonl
from shared.rewards import RewardFunction
from shared.training import TrainerArgs, build_trainer, fit, make_loader, quiet_lightning

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class DataArgs:
    """The synthetic task.

    Attributes:
        words: distinct random words to draw (3-6 letters).
        heldout: words kept out of every training step, for evaluation.
    """

    words: int = 1200
    heldout: int = 200


@dataclass
class DPOArgs(FitArgs):
    """Preference optimisation on pairs built from the SFT model's own samples (batch: pairs).

    Attributes:
        loss: a registered pairwise loss.
        beta: the loss's beta.
        samples: answers sampled per training prompt.
        temperature: sampling temperature.
        reference: frozen_copy (or adapter_disabled with LoRA).
    """

    loss: str = "sigmoid"
    beta: float = 0.1
    samples: int = 4
    temperature: float = 1.0
    reference: str = "frozen_copy"


@dataclass
class DemoConfig:
    """SFT then DPO of a tiny model, evaluated on held-out prompts.

    Attributes:
        seeds: one full run per seed; the table reports mean and sd.
        run_dir: the run folder.
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataArgs = field(default_factory=DataArgs)
    sft: FitArgs = field(default_factory=lambda: FitArgs(steps=3000, lr=3e-3, batch_size=32))
    dpo: DPOArgs = field(default_factory=lambda: DPOArgs(steps=300, lr=1e-4, batch_size=16))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    run_dir: Path = Path("runs/demo")


class UpperFirstLetter(RewardFunction):
    """1 for exactly the upper-case first letter of the word, 0.5 for it in lower case, else 0."""

    aspects = ("rule",)

    def score(self, prompt, output, context):
        target = context["word"][0]
        answer = output.strip()
        return {"rule": 1.0 if answer == target.upper() else 0.5 if answer == target else 0.0}


def make_words(n: int, seed: int) -> list[str]:
    """Return n distinct random lower-case words of 3-6 letters."""
    rng, words = random.Random(seed), set()
    while len(words) < n:
        words.add("".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 6))))
    return sorted(words)


def prompt_of(word: str) -> str:
    return f"say {word}:"


@torch.no_grad()
def generate(model, tok, prompts: list[str], *, samples: int = 1, temperature: float = 0.0,
             max_new_tokens: int = 3, batch: int = 64) -> list[list[str]]:
    """Return `samples` answers per prompt (greedy when temperature is 0)."""
    model.eval()
    tok.padding_side = "left"
    out = []
    try:
        for start in range(0, len(prompts), batch):
            enc = tok(prompts[start:start + batch], return_tensors="pt", padding=True, add_special_tokens=False)
            kwargs = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **kwargs)
            texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out.extend(texts[i:i + samples] for i in range(0, len(texts), samples))
    finally:
        tok.padding_side = "right"
        model.train()
    return out


def evaluate(model, tok, words: list[str]) -> dict[str, float]:
    """Return the held-out rule-following rate (exact upper-case letter) and copy rate (right letter)."""
    answers = [a[0].strip() for a in generate(model, tok, [prompt_of(w) for w in words])]
    return {"rule_rate": sum(a == w[0].upper() for a, w in zip(answers, words)) / len(words),
            "copy_rate": sum(a.lower() == w[0] for a, w in zip(answers, words)) / len(words)}


def run_seed(cfg: DemoConfig, seed: int) -> dict:
    """Run SFT, sample -> score -> pair, DPO and both evaluations for one seed; return the figures."""
    out = cfg.run_dir / f"seed{seed}"
    rng = random.Random(seed)
    words = make_words(cfg.data.words, seed)
    rng.shuffle(words)
    heldout, train = words[: cfg.data.heldout], words[cfg.data.heldout:]
    trainer_args = dict(accelerator="cpu", devices="1", progress_bar=False, seed=seed)
    every = lambda steps: max(1, min(10, steps // 5))  # noqa: E731  (short CI runs still log a curve)

    print(f"seed {seed}: SFT, {cfg.sft.steps} steps on {len(train)} words", flush=True)
    torch.manual_seed(seed)
    policy, tok = load_policy(ModelSpec(**{**asdict(cfg.model), "lora": cfg.model.lora, "seed": seed}))
    sft_data = encode_sft([(prompt_of(w), " " + (w[0].upper() if rng.random() < 0.5 else w[0])) for w in train], tok)
    fit(build_trainer(TrainerArgs(max_steps=cfg.sft.steps, log_every_n_steps=every(cfg.sft.steps), **trainer_args), out / "sft"), SFTModule(policy, lr=cfg.sft.lr),
        make_loader(sft_data, cfg.sft.batch_size, SFTCollator(tok.pad_token_id), seed=seed))
    before = evaluate(policy, tok, heldout)

    torch.manual_seed(seed)
    prompts = [prompt_of(w) for w in train]
    answers = generate(policy, tok, prompts, samples=cfg.dpo.samples, temperature=cfg.dpo.temperature)
    flat = [(w, p, a) for w, p, group in zip(train, prompts, answers) for a in group]
    scores = UpperFirstLetter()([p for _, p, _ in flat], [a for _, _, a in flat], [{"word": w} for w, _, _ in flat])
    candidates = [Candidate(prompt_id=w, prompt=p, output=a, scores=s, metadata={"seed": seed})
                  for (w, p, a), s in zip(flat, scores)]
    pairs = best_vs_worst(candidates, score="rule")
    write_jsonl(out / "candidates.jsonl", candidates)
    write_jsonl(out / "pairs.jsonl", pairs)

    print(f"seed {seed}: {len(pairs)} pairs from {len(candidates)} sampled answers; {cfg.dpo.loss}, "
          f"{cfg.dpo.steps} steps", flush=True)
    module = PreferenceModule(policy, build_reference(cfg.dpo.reference, policy), loss=cfg.dpo.loss,
                              loss_kwargs={"beta": cfg.dpo.beta}, lr=cfg.dpo.lr)
    fit(build_trainer(TrainerArgs(max_steps=cfg.dpo.steps, gradient_clip_val=None, log_every_n_steps=every(cfg.dpo.steps),
                                  **trainer_args), out / "dpo"), module,
        make_loader(encode_pairs(pairs, tok), cfg.dpo.batch_size, PreferenceCollator(tok.pad_token_id), seed=seed))
    after = evaluate(policy, tok, heldout)
    save_policy(policy, tok, out / "model")
    for stage in ("sft", "dpo"):
        plot_training_curves(out / stage)
    plot_by_round([{"stage": 0, **before}, {"stage": 1, **after}], out / "rule_rate.png", x="stage")
    return {"seed": seed, "pairs": len(pairs), "sft": before, "dpo": after}


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main(argv: list[str] | None = None) -> list[dict]:
    cfg = parse_or_exit(DemoConfig, argv, description=__doc__, prog="python -m shared.demo")
    quiet_lightning()
    save_resolved(cfg, cfg.run_dir)
    results = [run_seed(cfg, seed) for seed in cfg.seeds]
    table = [
        "| model | rule-following rate | copy rate |",
        "|---|---|---|",
        f"| SFT | {_mean_sd([r['sft']['rule_rate'] for r in results])} | {_mean_sd([r['sft']['copy_rate'] for r in results])} |",
        f"| SFT + {cfg.dpo.loss} | {_mean_sd([r['dpo']['rule_rate'] for r in results])} | "
        f"{_mean_sd([r['dpo']['copy_rate'] for r in results])} |",
    ]
    print(f"held-out words: {cfg.data.heldout}, seeds {cfg.seeds}, mean ± sd")
    print("\n".join(table))
    write_json(cfg.run_dir / "results.json", {"results": results, "table": table})
    print(f"wrote {cfg.run_dir}/results.json, per-seed candidates/pairs JSONL, logs, plots and models")
    return results


if __name__ == "__main__":
    main()
