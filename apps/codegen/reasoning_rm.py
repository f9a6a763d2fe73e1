"""Posterior-GRPO's reasoning reward model: train Bradley-Terry on optimized/degraded traces, then score traces.

The model is the policy's base LM with a LoRA adapter and a scalar head (shared.modules.RewardModel),
trained with shared.modules.RewardModelModule on `apps.codegen.reasoning.reasoning_pairs`. It scores
`<think>...</think>` given the reasoning prompt; `ReasoningScorer` returns sigmoid(r) in (0, 1).
Saved as an adapter folder (`lm/`) plus `head.pt`, loaded back onto the same base model spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from apps.codegen.prompts import THINK_CLOSE, THINK_OPEN
from shared.atomic import write_json
from shared.kit.sections import FitArgs
from shared.logprobs import collate_packed
from shared.models import LoraSpec, ModelSpec, load_policy, load_saved_policy, save_policy
from shared.modules import PreferenceCollator, RewardModel, RewardModelModule, encode_completion, encode_pairs, encode_prompt
from shared.records import Pair
from shared.training import TrainerArgs, build_trainer, fit, make_loader

DONE = "reward_model.json"


@dataclass
class RewardModelArgs(FitArgs):
    """Posterior-GRPO's reasoning reward model: Bradley-Terry on optimized/degraded reasoning pairs (batch: pairs).

    Attributes:
        pairs_per_task: degraded variants per training task (kinds cycle: factual, logic, coherence).
        lora_r: LoRA rank of the reward model's backbone (0: train the whole backbone).
    """

    pairs_per_task: int = 3
    lora_r: int = 8


def train_reward_model(base: ModelSpec, pairs: Sequence[Pair], folder: Path, *, steps: int, lr: float, batch_size: int,
                       lora_r: int, trainer: TrainerArgs, seed: int) -> Path:
    """Train the reasoning reward model on (optimized, degraded) pairs and save it under folder; skip if already saved."""
    folder = Path(folder)
    if (folder / DONE).is_file():
        return folder
    lora = LoraSpec(r=lora_r, alpha=2 * lora_r, target_modules=list(base.lora.target_modules)) if lora_r else LoraSpec(r=0)
    lm, tok = load_policy(replace(base, lora=lora, seed=seed))
    model = RewardModel(lm)
    data = encode_pairs(pairs, tok, max_length=2048)
    fit(build_trainer(replace(trainer, max_steps=steps, seed=seed), folder),
        RewardModelModule(model, lr=lr), make_loader(data, batch_size, PreferenceCollator(tok.pad_token_id), seed=seed))
    save_policy(lm, tok, folder / "lm")
    torch.save(model.head.state_dict(), folder / "head.pt")
    write_json(folder / DONE, {"pairs": len(pairs), "steps": steps, "base": str(base.path or base.source)})
    return folder


class ReasoningScorer:
    """Scores reasoning traces with a trained reasoning reward model: sigmoid(r(prompt, <think>trace</think>))."""

    def __init__(self, folder: Path, base: ModelSpec, batch_size: int = 16):
        folder = Path(folder)
        lm, self.tokenizer = load_saved_policy(folder / "lm", base=base)
        self.model = RewardModel(lm).eval()
        self.model.head.load_state_dict(torch.load(folder / "head.pt", weights_only=True))
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, prompts: Sequence, traces: Sequence[str]) -> list[float]:
        tok, out = self.tokenizer, []
        items = [(encode_prompt(tok, p)[-256:], encode_completion(tok, THINK_OPEN + t + THINK_CLOSE)[:256])
                 for p, t in zip(prompts, traces)]
        for start in range(0, len(items), self.batch_size):
            batch = collate_packed(items[start:start + self.batch_size], pad_id=tok.pad_token_id)
            out.extend(torch.sigmoid(self.model(batch)).tolist())
        return out


def pair_accuracy(scorer: ReasoningScorer, pairs: Sequence[Pair]) -> dict[str, float]:
    """Return the fraction of pairs whose chosen trace the scorer ranks above the rejected one, overall and by kind."""
    from apps.codegen.parsing import strip_think

    inner = lambda text: strip_think(text)[0] or ""  # noqa: E731  (pairs hold whole think blocks)
    chosen = scorer([p.prompt for p in pairs], [inner(p.chosen) for p in pairs])
    rejected = scorer([p.prompt for p in pairs], [inner(p.rejected) for p in pairs])
    right: dict[str, list[bool]] = {}
    for p, c, r in zip(pairs, chosen, rejected):
        right.setdefault(p.metadata.get("kind", "all"), []).append(c > r)
    out = {f"accuracy/{kind}": sum(v) / len(v) for kind, v in sorted(right.items())}
    flat = [x for v in right.values() for x in v]
    out["accuracy"] = sum(flat) / len(flat) if flat else float("nan")
    return out
