"""The RAG app's configuration: the kit's sections and the domain ones its modules declare (configs/rag/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from apps.rag.data import DataArgs
from apps.rag.eval import RagEvalArgs
from shared.kit import AppConfig, PreferenceArgs, SampleArgs, SFTArgs, all_linear_lora
from shared.models import ModelSpec


@dataclass
class RagSFTArgs(SFTArgs):
    """Instruction tuning on answers written from the golden documents with correct citations.

    Attributes:
        settings: document settings of the SFT prompts (each training question once per setting).
    """

    settings: list[str] = field(default_factory=lambda: ["golden", "distract"])


@dataclass
class StageArgs(PreferenceArgs):
    """One PA-RAG DPO stage: its own sampled questions, pairs and learning rate (rounds is unused: one pass).

    Attributes:
        questions: training questions sampled for this stage's pairs (0: all); each stage takes the next slice.
    """

    questions: int = 48


@dataclass
class RagConfig(AppConfig):
    """Train a RAG answer generator: SFT, then PA-RAG's DPO stages, each from the previous stage's model.

    Attributes:
        stages: the DPO stages in order (informativeness, robustness, citation); a subset gives an ablation.
        model: the policy (the embedded SmolLM2-135M-Instruct with LoRA on every projection by default).
        data: questions and documents.
        sft: supervised fine-tuning.
        sample: how the policy samples each stage's responses (sample.n per prompt).
        informativeness: the informativeness stage (all golden documents vs a subset).
        robustness: the robustness stage (clean documents vs misleading ones).
        citation: the citation-quality stage (corrected vs wrong citations).
        eval: the judge and the held-out check after each stage.
    """

    stages: list[str] = field(default_factory=lambda: ["informativeness", "robustness", "citation"])
    model: ModelSpec = field(default_factory=lambda: ModelSpec(source="smollm2", lora=all_linear_lora()))
    data: DataArgs = field(default_factory=DataArgs)
    sft: RagSFTArgs = field(default_factory=lambda: RagSFTArgs(steps=40, lr=2e-4, batch_size=8, max_length=1024))
    sample: SampleArgs = field(default_factory=lambda: SampleArgs(n=4, temperature=0.8, max_new_tokens=64))
    informativeness: StageArgs = field(default_factory=lambda: StageArgs(steps=16, lr=5e-5, max_length=1024))
    robustness: StageArgs = field(default_factory=lambda: StageArgs(steps=16, lr=5e-5, max_length=1024))
    citation: StageArgs = field(default_factory=lambda: StageArgs(steps=16, lr=2e-5, max_length=1024))
    eval: RagEvalArgs = field(default_factory=RagEvalArgs)
    run_dir: Path = Path("runs/rag/pa_rag")
