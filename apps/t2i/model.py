"""The text-to-image model: a diffusers pipeline (ours in pixel space, or a Stable Diffusion one) behind one API.

Embedded default: a small `UNet2DConditionModel` denoising 32x32 RGB pixels, conditioned on a
small CLIP text encoder (`CLIPTextModel`, trained from scratch with the UNet during SFT) over a
word-level tokenizer of the scene vocabulary; DDPM training schedule, DDIM sampling with
classifier-free guidance. It is saved and loaded as a diffusers pipeline (`PixelT2IPipeline`,
`save_pretrained` / `from_pretrained`: model_index.json + unet/ text_encoder/ tokenizer/ scheduler/).

`model.source: pipeline` loads any diffusers text-to-image pipeline folder instead: one of ours,
or a Stable Diffusion one (`StableDiffusionPipeline`: VAE latents, frozen CLIP text encoder),
optionally with a LoRA adapter on the UNet (`model.lora.r > 0`, peft through diffusers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DiffusionPipeline, UNet2DConditionModel
from diffusers.utils.torch_utils import randn_tensor
from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast

from shared.scenes.image import CATEGORIES, sample_scene, prompt_of
from shared.kit.diffusion import add_unet_lora
from shared.models import LoraSpec
from shared.models.tokenizer import drawn_vocabulary
from shared.models.tokenizer import fixed_length_ids as tokenize
from shared.models.tokenizer import prompt_word_tokenizer as word_tokenizer

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def unet_lora(r: int = 0, alpha: int = 8) -> LoraSpec:
    """LoRA on the UNet's attention projections (r 0: train the UNet fully)."""
    return LoraSpec(r=r, alpha=alpha, target_modules=list(LORA_TARGETS))


@dataclass
class ModelArgs:
    """Which text-to-image model to train.

    Attributes:
        source: "tiny" (a pixel-space UNet + small CLIP text encoder built from the fields below) or
            "pipeline" (a diffusers pipeline folder at `path`: a saved run model or Stable Diffusion).
        path: the pipeline folder for source "pipeline".
        resolution: image side in pixels (the tiny model's sample size; Stable Diffusion: 512).
        channels: the tiny UNet's block widths.
        layers_per_block: the tiny UNet's resnet layers per block.
        text_width: the tiny text encoder's width (= the UNet's cross-attention width).
        text_layers: the tiny text encoder's transformer layers.
        max_length: prompt length in tokens (the tiny tokenizer pads every prompt to it).
        prediction_type: "epsilon" or "v_prediction" (tiny model).
        lora: LoRA on the UNet (for large pipelines).
        dtype: float32, bfloat16 or float16 for the frozen parts (text encoder, VAE).
    """

    source: str = "tiny"
    path: str = ""
    resolution: int = 32
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    layers_per_block: int = 1
    text_width: int = 64
    text_layers: int = 2
    max_length: int = 16
    prediction_type: str = "epsilon"
    lora: LoraSpec = field(default_factory=unet_lora)
    dtype: str = "float32"


def scene_vocabulary(draws: int = 400, seed: int = 0) -> list[str]:
    """Every word the scene prompts use (drawn from each category until no new word appears)."""
    return drawn_vocabulary(lambda rng, category: prompt_of(sample_scene(rng, category)), CATEGORIES, draws, seed)


class PixelT2IPipeline(DiffusionPipeline):
    """A pixel-space text-to-image pipeline: tokenizer -> text encoder -> UNet denoising RGB in [-1, 1]."""

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel, tokenizer: PreTrainedTokenizerFast,
                 scheduler):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        ids = tokenize(self.tokenizer, prompts).to(self.text_encoder.device)
        return self.text_encoder(ids)[0]

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], *, num_inference_steps: int = 25, guidance_scale: float = 3.0,
                 generator: torch.Generator | list[torch.Generator] | None = None, output_type: str = "np"):
        """Return images as a float array (N, H, W, 3) in [0, 1] (output_type "np") or PIL images ("pil")."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        cond = self.encode_prompt(prompts)
        guided = guidance_scale > 1.0
        if guided:
            cond = torch.cat([self.encode_prompt([""] * len(prompts)), cond])
        size, channels = self.unet.config.sample_size, self.unet.config.in_channels
        x = randn_tensor((len(prompts), channels, size, size), generator=generator, device=self.unet.device,
                         dtype=self.unet.dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=self.unet.device)
        x = x * self.scheduler.init_noise_sigma
        for t in self.scheduler.timesteps:
            model_in = self.scheduler.scale_model_input(torch.cat([x] * 2) if guided else x, t)
            pred = self.unet(model_in, t, encoder_hidden_states=cond, return_dict=False)[0]
            if guided:
                uncond, text = pred.chunk(2)
                pred = uncond + guidance_scale * (text - uncond)
            x = self.scheduler.step(pred, t, x, generator=generator).prev_sample
        images = (x.clamp(-1, 1) + 1) / 2
        images = images.permute(0, 2, 3, 1).float().cpu().numpy()
        if output_type == "pil":
            return self.numpy_to_pil(images)
        return images


@dataclass
class T2IModel:
    """What training, evaluation and serving need from a text-to-image pipeline."""

    pipeline: DiffusionPipeline
    noise_scheduler: DDPMScheduler  # the training schedule (noise levels for the losses)
    resolution: int

    @property
    def unet(self) -> UNet2DConditionModel:
        return self.pipeline.unet

    @property
    def text_encoder(self):
        return self.pipeline.text_encoder

    @property
    def tokenizer(self):
        return self.pipeline.tokenizer

    @property
    def latent(self) -> bool:
        return getattr(self.pipeline, "vae", None) is not None

    @torch.no_grad()
    def encode_prompts(self, prompts: list[str]) -> torch.Tensor:
        """(N, S, D) text embeddings; the empty prompt is the unconditional one."""
        ids = tokenize(self.tokenizer, prompts).to(self.text_encoder.device)
        return self.text_encoder(ids)[0].float()

    @torch.no_grad()
    def to_model_space(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (N, H, W, 3) images -> what the UNet denoises: pixels in [-1, 1], or scaled VAE latents."""
        x = torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        if not self.latent:
            return x
        vae = self.pipeline.vae
        latents = vae.encode(x.to(vae.device, vae.dtype)).latent_dist.mean
        return (latents * vae.config.scaling_factor).float()

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], *, steps: int = 25, guidance: float = 3.0,
                 batch_size: int = 64) -> np.ndarray:
        """uint8 (N, H, W, 3) images, one per (prompt, seed); the same prompt and seed give the same image."""
        was_training = self.unet.training
        self.unet.eval()
        out = []
        try:
            for start in range(0, len(prompts), batch_size):
                chunk, chunk_seeds = prompts[start:start + batch_size], seeds[start:start + batch_size]
                generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in chunk_seeds]
                kwargs = {"num_inference_steps": steps, "guidance_scale": guidance, "generator": generators,
                          "output_type": "np"}
                if self.latent:
                    kwargs.update(height=self.resolution, width=self.resolution)
                result = self.pipeline(chunk, **kwargs)
                images = result if isinstance(result, np.ndarray) else result.images
                out.append(np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8))
        finally:
            self.unet.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.resolution, self.resolution, 3), np.uint8)

    def save(self, folder: Path) -> Path:
        """Write the pipeline with `save_pretrained` (a LoRA adapter is fused into the UNet first)."""
        if getattr(self.unet, "_hf_peft_config_loaded", False):
            self.unet.fuse_lora()
            self.unet.unload_lora()
        self.pipeline.save_pretrained(folder)
        return folder


def _tiny_pipeline(args: ModelArgs, seed: int) -> DiffusionPipeline:
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(scene_vocabulary(), args.max_length)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=args.text_width, intermediate_size=2 * args.text_width,
        num_hidden_layers=args.text_layers, num_attention_heads=max(1, args.text_width // 32),
        max_position_embeddings=args.max_length, pad_token_id=0, bos_token_id=2, eos_token_id=3))
    depth = len(args.channels)
    unet = UNet2DConditionModel(
        sample_size=args.resolution, in_channels=3, out_channels=3, block_out_channels=tuple(args.channels),
        layers_per_block=args.layers_per_block, cross_attention_dim=args.text_width, attention_head_dim=8,
        norm_num_groups=8, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",))
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                              prediction_type=args.prediction_type, clip_sample=True)
    return PixelT2IPipeline(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def _load_pipeline(path: str, dtype: str) -> DiffusionPipeline:
    folder = Path(path)
    index = folder / "model_index.json"
    if not index.is_file():
        raise ValueError(f"model.path {path!r}: not a diffusers pipeline folder (no model_index.json)")
    kind = json.loads(index.read_text()).get("_class_name")
    if kind == PixelT2IPipeline.__name__:
        return PixelT2IPipeline.from_pretrained(folder)
    # The frozen parts (text encoder, VAE) in `dtype`; the UNet, which trains, in float32.
    pipeline = DiffusionPipeline.from_pretrained(folder, safety_checker=None, torch_dtype=getattr(torch, dtype))
    pipeline.unet.to(torch.float32)
    pipeline.scheduler = DDIMScheduler.from_config(pipeline.scheduler.config)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def load_model(args: ModelArgs, seed: int = 0) -> T2IModel:
    """Build the tiny pipeline or load one from a folder; add the UNet's LoRA adapter when asked."""
    if args.source == "tiny":
        pipeline = _tiny_pipeline(args, seed)
    elif args.source == "pipeline":
        pipeline = _load_pipeline(args.path, args.dtype)
    else:
        raise ValueError(f"model.source: {args.source!r} is not one of tiny, pipeline")
    add_unet_lora(pipeline.unet, args.lora)
    noise = DDPMScheduler.from_config(pipeline.scheduler.config)
    resolution = args.resolution if args.source == "tiny" or getattr(pipeline, "vae", None) is not None \
        else pipeline.unet.config.sample_size
    return T2IModel(pipeline=pipeline, noise_scheduler=noise, resolution=resolution)


def load_saved(folder: str | Path, resolution: int | None = None) -> T2IModel:
    """Load a pipeline written by `T2IModel.save` (or any diffusers text-to-image pipeline folder)."""
    pipeline = _load_pipeline(str(folder), "float32")
    size = resolution or (pipeline.unet.config.sample_size * (8 if getattr(pipeline, "vae", None) is not None else 1))
    return T2IModel(pipeline=pipeline, noise_scheduler=DDPMScheduler.from_config(pipeline.scheduler.config), resolution=size)
