"""The simultaneous-translation app's configuration: the kit's sections and the domain ones (configs/simulmt/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.simulmt.data import DataArgs
from apps.simulmt.preferences import PreferenceArgs as PairingArgs
from shared.kit import AppConfig, EvalArgs, PreferenceArgs, SFTArgs
from shared.models import ModelSpec

METHODS = ("simulpl", "dpo")


@dataclass
class SimulSFTArgs(SFTArgs):
    """Multi-task SFT: the read/write task (the earliest adequate schedule from the alignments, reads scored under
    <simul>) and the translation task (target words under an imposed wait-k or full-sentence schedule, <translate>).

    Attributes:
        tasks: which of simul and translate to train on.
        extra_lag_max: the read/write task delays each example's schedule by a lag drawn from 0..extra_lag_max
            source words, so the policy also learns to write after reading more than it must (a latency knob).
        wait_k_max: the translation task draws k uniformly from 1..wait_k_max per example.
        full_sentence_share: share of the examples of each task that read the whole source first (under <simul>
            too, so a policy that waits to the end is in known territory).
        references: train on the first N references of each pair (embedded data: canonical, monotone; 0: all).
    """

    tasks: list[str] = field(default_factory=lambda: ["simul", "translate"])
    extra_lag_max: int = 3
    wait_k_max: int = 9
    full_sentence_share: float = 0.2
    references: int = 0


@dataclass
class CandidateArgs:
    """How preference candidates are sampled from the policy a round starts from.

    Attributes:
        sources: training sentences per round (each round takes the next slice; 0: all).
        thresholds: latency settings (tau: read when P(<read>) >= tau) the candidates are decoded at.
        n: samples per source and threshold.
        temperature: sampling temperature of target tokens (reads follow the threshold).
    """

    sources: int = 800
    thresholds: list[float] = field(default_factory=lambda: [0.5, 0.8, 0.9, 0.95])
    n: int = 2
    temperature: float = 0.8


@dataclass
class MethodArgs(PreferenceArgs):
    """One preference method trained from the SFT model on pairs of its own samples.

    Attributes:
        gamma: weight of the latency margin in latency_dpo (ignored by other losses).
        score_actions: the <read> tokens' log-probs enter the implicit reward (SimulPL); false: target tokens only.
        rpo_alpha: weight of the chosen streams' token-mean NLL added to the loss (RPO; 0: none).
    """

    gamma: float = 1.0
    score_actions: bool = True
    rpo_alpha: float = 0.0


@dataclass
class DecodeArgs:
    """Simultaneous decoding limits (apps/simulmt/decode.py).

    Attributes:
        max_ratio: a translation stops after max_ratio * |source| + max_extra words (marked truncated).
        max_extra: see max_ratio.
        batch_size: sentences decoded together.
    """

    max_ratio: float = 2.0
    max_extra: int = 4
    batch_size: int = 256


@dataclass
class SimulEvalArgs(EvalArgs):
    """The quality-latency evaluation.

    Attributes:
        wait_k: the wait-k baselines' k (decoded with the SFT model under <translate>).
        thresholds: the latency settings of each model's own policy.
        min_lags: more settings of each model's own policy: tau = lag_threshold with these minimum lags.
        lag_threshold: the tau of the min_lags settings.
        quick_threshold: the setting of the held-out check after each stage.
        quick_sentences: held-out sentences in that check (0: all).
    """

    wait_k: list[int] = field(default_factory=lambda: [1, 3, 5, 7, 9])
    thresholds: list[float] = field(default_factory=lambda: [0.5, 0.7, 0.8, 0.9, 0.95, 0.99])
    min_lags: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    lag_threshold: float = 0.9
    quick_threshold: float = 0.9
    quick_sentences: int = 150


@dataclass
class SimulConfig(AppConfig):
    """Train a simultaneous translator: multi-task SFT, then SimulPL's latency-aware DPO (and plain DPO as the ablation).

    Attributes:
        methods: preference methods trained from the SFT model: simulpl (latency_dpo, reads scored), dpo (ablation).
        model: the policy: a tiny Llama with a word-level tokenizer (embedded default) or any causal LM by path.
        data: sentence pairs.
        sft: multi-task supervised fine-tuning.
        candidates: sampling of preference candidates.
        pairing: SimulPL's preference scorers and the pair rule.
        simulpl: the SimulPL method (latency-aware DPO).
        dpo: the plain-DPO ablation (no latency margin, target tokens only).
        decode: simultaneous decoding limits.
        eval: the quality-latency evaluation and the held-out checks.
    """

    methods: list[str] = field(default_factory=lambda: list(METHODS))
    model: ModelSpec = field(default_factory=lambda: ModelSpec(
        source="tiny", hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512, max_position_embeddings=256))
    data: DataArgs = field(default_factory=DataArgs)
    sft: SimulSFTArgs = field(default_factory=lambda: SimulSFTArgs(steps=1500, lr=1e-3, batch_size=64, max_length=256))
    candidates: CandidateArgs = field(default_factory=CandidateArgs)
    pairing: PairingArgs = field(default_factory=PairingArgs)
    simulpl: MethodArgs = field(default_factory=lambda: MethodArgs(
        loss="latency_dpo", steps=100, lr=1e-5, batch_size=32, beta=0.1, gamma=1.0, score_actions=True, rpo_alpha=1.0,
        max_length=256,
        reference="frozen_copy"))
    dpo: MethodArgs = field(default_factory=lambda: MethodArgs(
        loss="sigmoid", steps=100, lr=1e-5, batch_size=32, beta=0.1, score_actions=False, rpo_alpha=1.0, max_length=256,
        reference="frozen_copy"))
    decode: DecodeArgs = field(default_factory=DecodeArgs)
    eval: SimulEvalArgs = field(default_factory=SimulEvalArgs)
    run_dir: Path = Path("runs/simulmt/simulpl")
