"""Model loading: tiny models from config, Hugging Face models from a path, the embedded SmolLM2, LoRA."""

from shared.models.loading import (
    LoraSpec,
    ModelLoadError,
    ModelSpec,
    attach_lora,
    load_policy,
    load_saved_policy,
    merge_adapter,
    save_policy,
    smollm2_location,
)
from shared.models.saved import DONE, is_complete, resolve_model, save_merged, saved_spec
from shared.models.tokenizer import byte_tokenizer, word_level_tokenizer

__all__ = [
    "DONE",
    "is_complete",
    "resolve_model",
    "save_merged",
    "saved_spec",
    "LoraSpec",
    "ModelLoadError",
    "ModelSpec",
    "attach_lora",
    "byte_tokenizer",
    "load_policy",
    "load_saved_policy",
    "merge_adapter",
    "save_policy",
    "smollm2_location",
    "word_level_tokenizer",
]
