"""The recsys app's configuration: the kit's sections and the domain ones (configs/recsys/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.recsys.baselines import SASRecArgs
from apps.recsys.data import DataArgs
from apps.recsys.model import ModelArgs
from apps.recsys.reward import RewardArgs
from shared.kit import AppConfig, EvalArgs, FitArgs, PreferenceArgs


@dataclass
class IdArgs:
    """Semantic IDs: residual balanced k-means over item embeddings (apps.recsys.semantic_ids).

    Attributes:
        embeddings: collaborative (SVD of the training interactions), text (MiniLM over title and genres)
            or text:<sentence-transformers folder>.
        codebook: codes per level (three levels in OneRec; each level's codebook is balanced).
        collisions: extra_level (colliding items get a 4th token, MiniOneRec's choice) or reassign
            (a colliding item moves to the nearest free last-level code under its prefix).
        iterations: k-means iterations per level.
        init_from: a semantic_ids.json to use instead (another run's ids/semantic_ids.json: needed with sft.init_from,
            whose model speaks that run's IDs).
    """

    embeddings: str = "collaborative"
    codebook: list[int] = field(default_factory=lambda: [32, 32, 32])
    collisions: str = "extra_level"
    iterations: int = 20
    init_from: str = ""


@dataclass
class GeneratorSFTArgs(FitArgs):
    """Next-session training of the generator (next-token loss plus the experts' load-balancing loss).

    Attributes:
        init_from: a saved generator folder; when set, this stage is skipped and IPA starts there.
        eval_every: check validation NDCG@10 every this many steps and keep the best weights (0: keep the last).
        patience: stop after this many checks without a gain (0: never early).
        select_users: validation users of those checks (0: all; a 200-user sample proved too noisy to choose by).
    """

    init_from: str = ""
    eval_every: int = 0
    patience: int = 0
    select_users: int = 0


@dataclass
class IPAArgs(PreferenceArgs):
    """Iterative preference alignment (OneRec): per round, beam-search `beams` sessions for a share of the training
    users, score them with the reward model, pair best (chosen) with worst (rejected), and train DPO against the
    previous round's model plus `ntp_weight` times the next-token loss of the chosen session.

    Attributes:
        users: share of the training users sampled per round (OneRec: about 1% of requests).
        beams: sessions beam-searched per sampled user (OneRec: 128).
        ntp_weight: weight of the chosen session's next-token loss (TRL's rpo_alpha; OneRec's L_NTP + lambda L_DPO
            is this up to scale: lambda = 1 / ntp_weight with the learning rate scaled by ntp_weight).
        min_gap: skip a user whose best and worst sessions' rewards differ by less than this.
    """

    users: float = 0.1
    beams: int = 16
    ntp_weight: float = 1.0
    min_gap: float = 0.0


@dataclass
class RecEvalArgs(EvalArgs):
    """Held-out evaluation (apps.recsys.eval) and the quick check after each round.

    Attributes:
        users: test users evaluated (0: all; a seeded draw otherwise).
        ks: cut-offs of HR@K and NDCG@K.
        beams: beams of the next-item ranking (at least max(ks)).
        sessions: sessions beam-searched per user for the reward-model and simulator columns.
        exclude_history: never recommend an item the user already interacted with (RecBole's full-sort masking).
        quick_users: validation users of the quick check after SFT and each IPA round.
        batch_size: users per generate call.
    """

    users: int = 0
    ks: list[int] = field(default_factory=lambda: [1, 5, 10])
    beams: int = 10
    sessions: int = 8
    exclude_history: bool = True
    quick_users: int = 200
    batch_size: int = 32


@dataclass
class RecConfig(AppConfig):
    """Train a OneRec-style generative recommender: semantic IDs, next-session SFT of an encoder-decoder MoE, a
    reward model with a tower per engagement signal, iterative preference alignment; plus the baselines.

    Attributes:
        data: interactions, items, split and the user simulator.
        ids: semantic IDs.
        model: the generator's size.
        sft: next-session training.
        sasrec: the SASRec-style baseline.
        reward: the reward model.
        ipa: iterative preference alignment (ipa.rounds rounds through shared.loop).
        eval: evaluation.
    """

    data: DataArgs = field(default_factory=DataArgs)
    ids: IdArgs = field(default_factory=IdArgs)
    model: ModelArgs = field(default_factory=ModelArgs)
    sft: GeneratorSFTArgs = field(default_factory=lambda: GeneratorSFTArgs(steps=2000, lr=2e-3, batch_size=64))
    sasrec: SASRecArgs = field(default_factory=SASRecArgs)
    reward: RewardArgs = field(default_factory=RewardArgs)
    ipa: IPAArgs = field(default_factory=lambda: IPAArgs(rounds=2, steps=60, lr=2e-4, batch_size=16, beta=0.1,
                                                         reference="frozen_copy"))
    eval: RecEvalArgs = field(default_factory=RecEvalArgs)
    run_dir: Path = Path("runs/recsys/onerec")
