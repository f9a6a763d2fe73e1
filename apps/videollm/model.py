"""The video LLM: transformers' Qwen2.5-VL, tiny from config on the CPU or a real checkpoint by path, and its inputs.

`VideoLLMSpec` builds `Qwen2_5_VLForConditionalGeneration` from config (the embedded default: a
2-block vision tower on 8-pixel patches, a 4-layer text decoder, SmolLM2-135M-Instruct's tokenizer
with Qwen2.5-VL's four vision tokens added and a Qwen-style chat template), or loads any
transformers image-text-to-text checkpoint with native video input from `path` (the paper config:
Qwen2.5-VL-7B-Instruct, LoRA r32 / alpha 64 on the text decoder only, vision frozen).

`VideoProcessor` turns frames into the model's video inputs with the checkpoint's own image
processor settings (Qwen2VLImageProcessorPil: `smart_resize` factor, mean/std, patch, merge and
temporal patch sizes from preprocessor_config.json): each frame is resized and normalised, then
the frames are cut into (temporal x spatial) patches in the exact layout of transformers'
Qwen2VLVideoProcessor.patchify. That video processor needs torchvision, which cannot be installed
beside the CPU build of torch this project pins (see docs/apps/videollm.md); the layout is tested
against the image processor's own patches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shared.models import LoraSpec, ModelLoadError, smollm2_location

VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>", "<|image_pad|>")
VIDEO_TYPE, IMAGE_TYPE = 2, 1  # transformers' mm_token_type_ids values
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
TEXT_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class VideoLLMSpec:
    """Which video LLM to build.

    Attributes:
        source: tiny (Qwen2.5-VL from the fields below, random init, SmolLM2's tokenizer) or hf (a
            save_pretrained folder or hub name in `path`, loaded with AutoModelForImageTextToText).
        path: the checkpoint for source hf.
        dtype: parameter dtype (float32, bfloat16, float16).
        attn_implementation: sdpa or eager.
        text_hidden: tiny text decoder width.
        text_layers: tiny text decoder depth.
        text_heads: tiny attention heads.
        text_kv_heads: tiny key/value heads.
        text_intermediate: tiny MLP width.
        vision_depth: tiny vision tower blocks.
        vision_hidden: tiny vision width.
        vision_heads: tiny vision attention heads.
        patch_size: tiny vision patch side (pixels).
        merge_size: tiny spatial merge (merge x merge patches -> one token).
        temporal_patch_size: frames per temporal patch.
        min_pixels: smallest frame area after resizing (tiny; a checkpoint's preprocessor_config.json rules).
        max_pixels: largest frame area after resizing (tiny; a checkpoint's preprocessor_config.json rules).
        image_mean: per-channel mean the tiny processor subtracts (default: the renderer's background, 240/255: with
            CLIP's mean the tiny model stayed at chance on colours after 1,500 steps; see docs/apps/videollm.md).
        image_std: per-channel std the tiny processor divides by.
        max_frames: frames kept per video (evenly spaced; 0: all).
        video_max_pixels: largest frame area of a video frame (0: the processor's image max_pixels; a real
            checkpoint's image limit is far above what a many-frame video can afford).
        freeze_vision: keep the vision tower's weights fixed (always so under LoRA: adapters go on the text decoder).
        text_init: none (random text decoder of the tiny sizes above) or smollm2 (the text decoder takes
            SmolLM2-135M-Instruct's sizes and weights: Qwen2.5-VL's decoder is Llama's plus q/k/v biases, set
            to zero, and multimodal RoPE, which equals SmolLM2's RoPE on text; tested on logits).
        seed: seed of the tiny model's initialisation and of the LoRA adapter.
        lora: LoRA on the text decoder's linear layers (r 0: train every weight).
    """

    source: str = "tiny"
    path: str = ""
    dtype: str = "float32"
    attn_implementation: str = "sdpa"
    text_hidden: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 256
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_heads: int = 2
    patch_size: int = 8
    merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 256
    max_pixels: int = 4096
    image_mean: list[float] = field(default_factory=lambda: [240 / 255] * 3)
    image_std: list[float] = field(default_factory=lambda: [0.25] * 3)
    max_frames: int = 64
    video_max_pixels: int = 0
    freeze_vision: bool = False
    text_init: str = "none"
    seed: int = 0
    lora: LoraSpec = field(default_factory=lambda: LoraSpec(r=0))

    def uses_lora(self) -> bool:
        """Return whether the model gets a LoRA adapter (what the kit's reference_for asks)."""
        return self.lora.r > 0


def _smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    return smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)


class VideoProcessor:
    """Tokenizer and image processor of a video LLM: chat prompts with video placeholders and the video tensors."""

    def __init__(self, tokenizer, image_processor, max_frames: int = 64, video_max_pixels: int = 0):
        self.tokenizer, self.image_processor, self.max_frames = tokenizer, image_processor, max_frames
        self.video_max_pixels = video_max_pixels
        missing = [t for t in VISION_TOKENS[:3] if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
        if missing:
            raise ModelLoadError(f"the tokenizer has no {missing[0]} token: not a Qwen2-VL-style video LLM tokenizer")
        self.video_token_id = tokenizer.convert_tokens_to_ids("<|video_pad|>")
        self.image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")

    @property
    def token_types(self) -> dict[int, int]:
        """Placeholder token id -> mm_token_type_ids value."""
        return {self.video_token_id: VIDEO_TYPE, self.image_token_id: IMAGE_TYPE}

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the tokenizer and preprocessor_config.json (what from_pretrained and transformers read)."""
        self.tokenizer.save_pretrained(folder)
        self.image_processor.save_pretrained(folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path, max_frames: int = 64, video_max_pixels: int = 0) -> VideoProcessor:
        """Load a checkpoint's tokenizer and image processor settings."""
        from transformers import AutoTokenizer, Qwen2VLImageProcessorPil

        tokenizer = AutoTokenizer.from_pretrained(folder)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(tokenizer, Qwen2VLImageProcessorPil.from_pretrained(folder), max_frames, video_max_pixels)

    def video_inputs(self, frames: np.ndarray) -> dict[str, torch.Tensor]:
        """Return {"pixel_values_videos": (patches, C * t * p * p), "video_grid_thw": (1, 3), "second_per_grid_ts": (1,)}
        of (T, H, W, 3) uint8 frames."""
        ip = self.image_processor
        patch, merge, tps = ip.patch_size, ip.merge_size, ip.temporal_patch_size
        if self.max_frames and len(frames) > self.max_frames:
            frames = frames[np.linspace(0, len(frames) - 1, self.max_frames).round().astype(int)]
        most = min(ip.size.longest_edge, self.video_max_pixels) if self.video_max_pixels else ip.size.longest_edge
        height, width = _smart_resize(frames.shape[1], frames.shape[2], patch * merge, ip.size.shortest_edge, most)
        if (height, width) != frames.shape[1:3]:
            frames = np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling(ip.resample)))
                               for f in frames])
        mean, std = np.asarray(ip.image_mean, np.float32), np.asarray(ip.image_std, np.float32)
        video = ((frames.astype(np.float32) * ip.rescale_factor - mean) / std).transpose(0, 3, 1, 2)  # T C H W
        if pad := -len(video) % tps:
            video = np.concatenate([video, np.repeat(video[-1:], pad, axis=0)])
        grid_t, grid_h, grid_w = len(video) // tps, height // patch, width // patch
        channels = video.shape[1]
        patches = video.reshape(grid_t, tps, channels, grid_h // merge, merge, patch, grid_w // merge, merge, patch)
        patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)  # Qwen2VLVideoProcessor.patchify's order
        flat = np.ascontiguousarray(patches).reshape(grid_t * grid_h * grid_w, channels * tps * patch * patch)
        # seconds per temporal patch: frames are taken as sampled at 2 fps (Qwen2.5-VL's default, tps / fps = 1);
        # passed explicitly because transformers' default runs out when a batch has more videos than tokens per row
        return {"pixel_values_videos": torch.from_numpy(flat),
                "video_grid_thw": torch.tensor([[grid_t, grid_h, grid_w]], dtype=torch.long),
                "second_per_grid_ts": torch.tensor([1.0])}

    def video_tokens(self, media: dict[str, torch.Tensor]) -> int:
        """Return how many placeholder tokens the video's features fill."""
        t, h, w = (int(x) for x in media["video_grid_thw"][0])
        return t * h * w // self.image_processor.merge_size ** 2

    def prompt(self, question: str, frames: np.ndarray | None,
               media: dict[str, torch.Tensor] | None = None) -> tuple[list[int], dict[str, torch.Tensor]]:
        """Return (prompt token ids through the chat template, media) for a question about a video (or none);
        `media` given: that video's inputs, already computed."""
        content: list[dict[str, Any]] = ([{"type": "video"}] if frames is not None else []) + [{"type": "text", "text": question}]
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                  add_generation_prompt=True)
        if frames is None:
            media = {}
        else:
            media = media or self.video_inputs(frames)
            text = text.replace("<|video_pad|>", "<|video_pad|>" * self.video_tokens(media), 1)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"], media

    def completion(self, text: str) -> list[int]:
        """Return a target's token ids followed by the end-of-turn token."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]


def _tiny(spec: VideoLLMSpec) -> tuple[torch.nn.Module, VideoProcessor]:
    from transformers import AutoTokenizer, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    folder, name = smollm2_location()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    tokenizer.add_special_tokens({"additional_special_tokens": list(VISION_TOKENS)})
    tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=spec.patch_size, merge_size=spec.merge_size, temporal_patch_size=spec.temporal_patch_size,
        size={"shortest_edge": spec.min_pixels, "longest_edge": spec.max_pixels},
        image_mean=list(spec.image_mean), image_std=list(spec.image_std))
    smol = None
    text = {"hidden_size": spec.text_hidden, "intermediate_size": spec.text_intermediate,
            "num_hidden_layers": spec.text_layers, "num_attention_heads": spec.text_heads,
            "num_key_value_heads": spec.text_kv_heads, "rope_theta": 10000.0, "rms_norm_eps": 1e-6}
    if spec.text_init == "smollm2":
        from transformers import AutoModelForCausalLM

        smol = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        c = smol.config
        text = {"hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
                "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
                "num_key_value_heads": c.num_key_value_heads, "rope_theta": c.rope_parameters["rope_theta"],
                "rms_norm_eps": c.rms_norm_eps}
    elif spec.text_init != "none":
        raise ModelLoadError(f"model.text_init: expected none or smollm2, got {spec.text_init!r}")
    half = text["hidden_size"] // text["num_attention_heads"] // 2  # mrope splits the rotary half over (t, h, w)
    section = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    ids = tokenizer.convert_tokens_to_ids(list(VISION_TOKENS))
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=text["hidden_size"],
                         intermediate_size=text["intermediate_size"], num_hidden_layers=text["num_hidden_layers"],
                         num_attention_heads=text["num_attention_heads"], num_key_value_heads=text["num_key_value_heads"],
                         max_position_embeddings=4096, rms_norm_eps=text["rms_norm_eps"],
                         rope_parameters={"rope_type": "default", "rope_theta": text["rope_theta"], "mrope_section": section},
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(depth=spec.vision_depth, hidden_size=spec.vision_hidden, intermediate_size=2 * spec.vision_hidden,
                           num_heads=spec.vision_heads, patch_size=spec.patch_size, spatial_merge_size=spec.merge_size,
                           temporal_patch_size=spec.temporal_patch_size, window_size=spec.patch_size * spec.merge_size * 2,
                           fullatt_block_indexes=[spec.vision_depth - 1], out_hidden_size=text["hidden_size"],
                           tokens_per_second=2),
        vision_start_token_id=ids[0], vision_end_token_id=ids[1], video_token_id=ids[2], image_token_id=ids[3],
        tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config._attn_implementation = spec.attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    if smol is not None:
        _copy_text_weights(smol, model)
    return model, VideoProcessor(tokenizer, image_processor, spec.max_frames, spec.video_max_pixels)


@torch.no_grad()
def _copy_text_weights(smol: torch.nn.Module, model: torch.nn.Module) -> None:
    """Put a Llama-style causal LM's weights into the VL model's text decoder (new vision-token rows: the mean row)."""
    target = model.model.language_model
    state = {k.removeprefix("model."): v for k, v in smol.state_dict().items() if k.startswith("model.")}
    embed = state.pop("embed_tokens.weight")
    rows = target.embed_tokens.weight
    rows[:len(embed)] = embed
    rows[len(embed):] = embed.mean(0)
    missing, unexpected = target.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias", "embed_tokens.weight")) for k in missing):
        raise ModelLoadError(f"model.text_init: weights do not fit the text decoder ({(unexpected or missing)[0]})")
    for layer in target.layers:
        for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
            proj.bias.zero_()


def _pretrained(spec: VideoLLMSpec) -> tuple[torch.nn.Module, VideoProcessor]:
    from transformers import AutoModelForImageTextToText

    if not spec.path:
        raise ModelLoadError("model.path: required when model.source is 'hf'")
    try:
        processor = VideoProcessor.from_pretrained(spec.path, spec.max_frames, spec.video_max_pixels)
        model = AutoModelForImageTextToText.from_pretrained(spec.path, dtype=DTYPES[spec.dtype],
                                                            attn_implementation=spec.attn_implementation)
    except OSError as exc:
        raise ModelLoadError(f"model.path '{spec.path}': {str(exc).splitlines()[0]}") from None
    return model, processor


def load_video_llm(spec: VideoLLMSpec) -> tuple[torch.nn.Module, VideoProcessor]:
    """Return (model, processor); LoRA (spec.lora.r > 0) goes on the text decoder's linear layers only."""
    import transformers

    transformers.utils.logging.disable_progress_bar()  # a bar per load and per save, many of each per run
    if spec.source not in ("tiny", "hf"):
        raise ModelLoadError(f"model.source: expected tiny or hf, got {spec.source!r}")
    if spec.dtype not in DTYPES:
        raise ModelLoadError(f"model.dtype: '{spec.dtype}' is not one of {', '.join(DTYPES)}")
    model, processor = _tiny(spec) if spec.source == "tiny" else _pretrained(spec)
    model = model.to(DTYPES[spec.dtype])
    if spec.freeze_vision or spec.uses_lora():
        model.model.visual.requires_grad_(False)
    if spec.uses_lora():
        from peft import LoraConfig, get_peft_model

        names = "|".join(n for n in spec.lora.target_modules if n in TEXT_LINEAR) or "|".join(TEXT_LINEAR)
        config = LoraConfig(r=spec.lora.r, lora_alpha=spec.lora.alpha, lora_dropout=spec.lora.dropout,
                            target_modules=rf".*language_model.*\.({names})")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = get_peft_model(model, config)
    return model, processor


def saved(spec: VideoLLMSpec, folder: str | Path, seed: int) -> VideoLLMSpec:
    """The spec that loads a saved model folder with spec's LoRA and freezing settings."""
    from dataclasses import replace

    return replace(spec, source="hf", path=str(folder), seed=seed)

