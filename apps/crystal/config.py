"""The crystal app's configuration: one dataclass tree (configs/crystal/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shared.models import LoraSpec, ModelSpec
from shared.training import TrainerArgs

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class DataArgs:
    """Where structures come from.

    Attributes:
        source: "embedded" (pymatgen's AFLOW prototypes and shipped structures) or a folder of *.cif files.
        max_atoms: keep structures whose conventional cell holds at most this many atoms.
        heldout_fraction: share of structures held out (never trained on; novelty is against the training set).
        max_train: use only the first N training structures (0: all).
        synthetic_per_structure: pyxtal-random crystals per training structure (its space group and composition)
            added to the SFT data to teach the format (0: none; see apps.crystal.data.synthetic_texts).
    """

    source: str = "embedded"
    max_atoms: int = 40
    heldout_fraction: float = 0.15
    max_train: int = 0
    synthetic_per_structure: int = 0


@dataclass
class SFTArgs:
    """Supervised fine-tuning on the training structures' Wyckoff texts.

    Attributes:
        init_from: a saved SFT model folder (save_pretrained); when set, SFT is skipped and this is the start.
        steps: optimiser steps (0: no SFT).
        lr: AdamW learning rate.
        batch_size: examples per step.
        conditions: prompt forms per structure: none (unconditional), sg (space group), formula_sg (formula and space group).
    """

    init_from: str = ""
    steps: int = 80
    lr: float = 3e-4
    batch_size: int = 8
    conditions: list[str] = field(default_factory=lambda: ["none", "sg"])


@dataclass
class SampleArgs:
    """Sampling during the rounds (the temperature is per round: dpo.temperatures).

    Attributes:
        unconditional: unconditional samples per round (basic / tiered-novel pairs).
        spacegroups: space groups (most frequent in training first) sampled with the conditional prompt per round.
        per_spacegroup: samples per space group (space-group-conditioned pairs).
        top_p: nucleus sampling threshold.
        max_new_tokens: completion length limit (tokens).
        batch_size: sequences per generate call.
        constrained: sample through the Wyckoff-format automaton (apps.crystal.grammar): every sample has the
            format's layout and symmetry bookkeeping (a real space group, its Wyckoff labels, orbits adding up to
            the stated atom count, at most data.max_atoms); physics is left to the model. Also used by the
            evaluations, so rounds and SFT are compared under the same decoding. Not in PLaID++, which samples freely.
    """

    unconditional: int = 32
    spacegroups: int = 4
    per_spacegroup: int = 6
    top_p: float = 1.0
    max_new_tokens: int = 256
    batch_size: int = 16
    constrained: bool = False


@dataclass
class DPOArgs:
    """Iterative DPO (PLaID++): each round samples from the previous round's model, scores, pairs and trains.

    Attributes:
        rounds: rounds to run.
        temperatures: sampling temperature per round (one value, or one per round).
        threshold: E_hull threshold in eV/atom separating metastable from unstable.
        tiered_from_round: first (1-based) round using the tiered-novel rules instead of the basic ones.
        spacegroup_pairs: add the space-group-conditioned pairs.
        loss: a registered pairwise loss (sigmoid = DPO).
        beta: the loss's beta.
        steps: optimiser steps per round (PLaID++ runs one epoch over the round's pairs).
        max_pairs: use at most this many pairs per round (seeded draw; 0: all).
        lr: AdamW learning rate.
        batch_size: pairs per step.
    """

    rounds: int = 2
    temperatures: list[float] = field(default_factory=lambda: [0.7, 0.7, 0.9, 0.9, 1.1, 1.1, 1.3])
    threshold: float = 0.08
    tiered_from_round: int = 3
    spacegroup_pairs: bool = True
    loss: str = "sigmoid"
    beta: float = 0.1
    steps: int = 20
    max_pairs: int = 0
    lr: float = 5e-5
    batch_size: int = 4


@dataclass
class RewardArgs:
    """CHGNet scoring.

    Attributes:
        relax: relax each structure with CHGNet (FIRE) before taking its energy.
        relax_steps: maximum relaxation steps.
        fmax: relaxation force threshold in eV/A.
        cache_dir: where reference energies and scores are cached across runs ("": <run_dir>/../cache).
    """

    relax: bool = True
    relax_steps: int = 60
    fmax: float = 0.1
    cache_dir: str = ""


@dataclass
class EvalArgs:
    """The per-round evaluation (and `python -m apps.crystal.eval`).

    Attributes:
        unconditional: unconditional samples per evaluation.
        spacegroups: held-out structures' space groups asked for (conditional generation).
        per_spacegroup: samples per requested space group.
        temperature: sampling temperature.
        best_cifs: CIF files of the best samples written per evaluation.
    """

    unconditional: int = 48
    spacegroups: int = 8
    per_spacegroup: int = 2
    temperature: float = 0.7
    best_cifs: int = 8


@dataclass
class CrystalConfig:
    """Train a crystal generator: SFT on Wyckoff texts, then PLaID++ iterative DPO with CHGNet rewards.

    Attributes:
        recipe: sft (stop after SFT and its evaluation) or plaid (SFT, then dpo.rounds rounds).
        seed: seed for sampling, data order, the split and initialisation.
        run_dir: the run folder.
    """

    recipe: Literal["sft", "plaid"] = "plaid"
    model: ModelSpec = field(default_factory=lambda: ModelSpec(
        source="smollm2", lora=LoraSpec(r=16, alpha=32, target_modules=list(ALL_LINEAR))))
    data: DataArgs = field(default_factory=DataArgs)
    sft: SFTArgs = field(default_factory=SFTArgs)
    sample: SampleArgs = field(default_factory=SampleArgs)
    dpo: DPOArgs = field(default_factory=DPOArgs)
    reward: RewardArgs = field(default_factory=RewardArgs)
    eval: EvalArgs = field(default_factory=EvalArgs)
    trainer: TrainerArgs = field(default_factory=lambda: TrainerArgs(accelerator="cpu", devices="1", progress_bar=False))
    seed: int = 0
    run_dir: Path = Path("runs/crystal/plaid")
