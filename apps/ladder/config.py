"""The ladder app's configuration: the kit's sections and the domain ones its modules declare (configs/ladder/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.ladder.data import DataArgs
from apps.ladder.eval import LadderEvalArgs
from shared.kit import AppConfig, PreferenceArgs, SampleArgs, SFTArgs, all_linear_lora
from shared.models import ModelSpec


@dataclass
class RaftArgs(SFTArgs):
    """Stage 1, retrieval-augmented fine-tuning: SFT with the k most similar training tasks in each prompt.

    Attributes:
        k: retrieved (instruction, program) examples prepended to each prompt, in training and at inference.
    """

    k: int = 1


@dataclass
class GraphDPOArgs(PreferenceArgs):
    """Stage 2, DPO from the RAFT model: chosen = the reference program, rejected = behaviour-changing graph edits
    of it and sampled programs that fail simulation.

    Attributes:
        tasks: training tasks whose pairs are built (0: all); sample.n programs are sampled for each.
        edits: edited negatives per task (distinct edit kinds first; only edits that change behaviour).
        sampled: sampled programs that fail simulation (or do not parse) used as rejected, per task.
        curriculum: train easy to hard: pairs ordered by graph edit distance to the reference, largest first.

    Each round trains one pass over at most steps x batch_size pairs (max_pairs 0 means that many): a seeded
    draw that keeps the curriculum's order, so an ordered run covers easy to hard.
    """

    tasks: int = 48
    edits: int = 2
    sampled: int = 1
    curriculum: bool = True


@dataclass
class LadderConfig(AppConfig):
    """Train a ladder-program generator: plain SFT (the baseline), RAFT, then graph-edit DPO from the RAFT model.

    Attributes:
        model: the policy (the embedded SmolLM2-135M-Instruct with LoRA on every projection by default).
        data: tasks.
        sft: the plain SFT baseline (steps 0: skipped).
        raft: retrieval-augmented SFT (stage 1).
        sample: how the RAFT model samples programs for stage 2's pairs (sample.n per task).
        pref: graph-edit DPO (stage 2).
        eval: evaluation and the quick held-out check.
    """

    model: ModelSpec = field(default_factory=lambda: ModelSpec(source="smollm2", lora=all_linear_lora()))
    data: DataArgs = field(default_factory=DataArgs)
    sft: SFTArgs = field(default_factory=lambda: SFTArgs(steps=40, lr=3e-4, batch_size=8, max_length=1024))
    raft: RaftArgs = field(default_factory=lambda: RaftArgs(steps=40, lr=3e-4, batch_size=8, max_length=1024))
    sample: SampleArgs = field(default_factory=lambda: SampleArgs(n=2, temperature=0.8, max_new_tokens=160))
    pref: GraphDPOArgs = field(default_factory=lambda: GraphDPOArgs(steps=24, lr=5e-5, batch_size=4, max_length=1024))
    eval: LadderEvalArgs = field(default_factory=LadderEvalArgs)
    run_dir: Path = Path("runs/ladder/raft_dpo")
