"""The crystal app's configuration: the kit's sections and the domain ones its modules declare (configs/crystal/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from apps.crystal.data import DataArgs
from apps.crystal.eval import CrystalEvalArgs
from apps.crystal.reward import RewardArgs
from shared.kit import AppConfig, PreferenceArgs, SampleArgs, SFTArgs, all_linear_lora
from shared.models import ModelSpec

PLAID_TEMPERATURES = [0.7, 0.7, 0.9, 0.9, 1.1, 1.1, 1.3]


@dataclass
class CrystalSFTArgs(SFTArgs):
    """Supervised fine-tuning on the training structures' Wyckoff texts.

    Attributes:
        conditions: prompt forms per structure: none (unconditional), sg (space group), formula_sg (formula and space group).
    """

    conditions: list[str] = field(default_factory=lambda: ["none", "sg"])


@dataclass
class CrystalSampleArgs(SampleArgs):
    """Sampling during the rounds: sample.n per conditional prompt, the temperature per round from sample.temperatures.

    Attributes:
        unconditional: unconditional samples per round (basic / tiered-novel pairs).
        spacegroups: space groups (most frequent in training first) sampled with the conditional prompt per round.
    """

    unconditional: int = 32
    spacegroups: int = 4


@dataclass
class PlaidArgs(PreferenceArgs):
    """PLaID++'s iterative DPO: each round samples from the previous round's model, scores, pairs and trains.

    Attributes:
        threshold: E_hull threshold in eV/atom separating metastable from unstable.
        tiered_from_round: first (1-based) round using the tiered-novel rules instead of the basic ones.
        spacegroup_pairs: add the space-group-conditioned pairs.
    """

    threshold: float = 0.08
    tiered_from_round: int = 3
    spacegroup_pairs: bool = True


@dataclass
class CrystalConfig(AppConfig):
    """Train a crystal generator: SFT on Wyckoff texts, then PLaID++ iterative DPO with CHGNet rewards.

    Attributes:
        recipe: sft (stop after SFT and its evaluation) or plaid (SFT, then pref.rounds rounds).
        model: the policy (the embedded SmolLM2-135M-Instruct with LoRA on every projection by default).
        data: the structures and the split.
        sft: supervised fine-tuning.
        sample: sampling in the rounds.
        pref: the DPO rounds and PLaID++'s pair rules.
        reward: CHGNet scoring.
        eval: evaluation.
    """

    recipe: Literal["sft", "plaid"] = "plaid"
    model: ModelSpec = field(default_factory=lambda: ModelSpec(source="smollm2", lora=all_linear_lora()))
    data: DataArgs = field(default_factory=DataArgs)
    sft: CrystalSFTArgs = field(default_factory=lambda: CrystalSFTArgs(steps=80, lr=3e-4, batch_size=8))
    sample: CrystalSampleArgs = field(default_factory=lambda: CrystalSampleArgs(
        n=6, temperatures=list(PLAID_TEMPERATURES), top_p=1.0, max_new_tokens=256))
    pref: PlaidArgs = field(default_factory=lambda: PlaidArgs(rounds=2, steps=20))
    reward: RewardArgs = field(default_factory=RewardArgs)
    eval: CrystalEvalArgs = field(default_factory=lambda: CrystalEvalArgs(seeds=[0, 1, 2]))
    run_dir: Path = Path("runs/crystal/plaid")
