"""The text-to-video model: a diffusers video pipeline (ours in pixel space, or CogVideoX) behind one API.

Embedded default: a denoiser over 8 frames of 32x32 RGB pixels directly (no VAE), by default a
`UNet2DConditionModel` whose channels are the frames stacked (`model.architecture: stacked_unet`;
Wan and CogVideoX transformers are the other choices, see ModelArgs), conditioned on a small T5
encoder (`T5EncoderModel`, CogVideoX's text-encoder family, trained from scratch with the denoiser
during SFT) over a word-level tokenizer of the caption vocabulary; v-prediction DDPM training
schedule, DDIM sampling with classifier-free guidance. It is saved and loaded as one diffusers
pipeline (`PixelT2VPipeline`, `save_pretrained` / `from_pretrained`: model_index.json +
transformer/ (the denoiser) text_encoder/ tokenizer/ scheduler/).

`model.source: pipeline` loads any CogVideoX pipeline folder instead (`CogVideoXPipeline`: VAE
latents, frozen T5-XXL, CogVideoX-2b / 5b; or one of ours), optionally with LoRA on the
transformer's attention (`model.lora.r > 0`, peft through diffusers). The training schedule is the
pipeline's own scheduler (CogVideoX's DDIM with its SNR shift); the samples the denoiser sees are
(B, F, C, H, W), pixels or scaled VAE latents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import (
    CogVideoXTransformer3DModel,
    DDIMScheduler,
    DiffusionPipeline,
    UNet2DConditionModel,
    WanTransformer3DModel,
)
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

from shared.kit.diffusion import add_unet_lora
from shared.modules.diffusion import call_denoiser, denoiser_input
from shared.models import LoraSpec
from shared.models.tokenizer import drawn_vocabulary, fixed_length_ids, prompt_word_tokenizer
from shared.scenes.video import VIDEO_CATEGORIES, caption_of, sample_video_scene

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
ARCHITECTURES = ("stacked_unet", "wan", "cogvideox")
CAPTION_CATEGORIES = tuple(c for c in VIDEO_CATEGORIES if c != "events")


def transformer_lora(r: int = 0, alpha: int = 8) -> LoraSpec:
    """LoRA on the transformer's attention projections (r 0: train the transformer fully)."""
    return LoraSpec(r=r, alpha=alpha, target_modules=list(LORA_TARGETS))


@dataclass
class ModelArgs:
    """Which text-to-video model to train.

    Attributes:
        source: "tiny" (a pixel-space video transformer + small T5 encoder built from the fields below)
            or "pipeline" (a diffusers pipeline folder at `path`: a saved run model or CogVideoX).
        path: the pipeline folder for source "pipeline".
        resolution: frame side in pixels (CogVideoX-2b: 480x720; give `height`/`width` for non-square).
        height: frame height for source "pipeline" (0: resolution).
        width: frame width for source "pipeline" (0: resolution).
        frames: frames per video (CogVideoX-2b: 49).
        architecture: the tiny denoiser: "stacked_unet" (a UNet2DConditionModel whose channels are the frames'
            RGB stacked, 3 x frames in and out: convolutions mix space and time from the first layer), "wan"
            (WanTransformer3DModel: self-attention over video
            tokens with 3D rotary positions, cross-attention to the text) or "cogvideox"
            (CogVideoXTransformer3DModel: one joint attention over text and video tokens, fixed sin-cos positions).
        channels: the stacked UNet's block widths.
        heads: the tiny transformer's attention heads.
        head_dim: the tiny transformer's width per head.
        layers: the tiny transformer's blocks.
        patch: the tiny transformer's spatial patch side in pixels.
        text_width: the tiny T5 encoder's width (= the transformer's text embedding width).
        text_layers: the tiny T5 encoder's layers.
        max_length: prompt length in tokens (the tiny tokenizer pads every prompt to it; CogVideoX: 226).
        lora: LoRA on the transformer (for large pipelines).
        dtype: float32, bfloat16 or float16 for the frozen parts (text encoder, VAE).
    """

    source: str = "tiny"
    path: str = ""
    resolution: int = 32
    height: int = 0
    width: int = 0
    frames: int = 8
    architecture: str = "stacked_unet"
    channels: list[int] = field(default_factory=lambda: [64, 96, 96])
    heads: int = 4
    head_dim: int = 16
    layers: int = 4
    patch: int = 4
    text_width: int = 64
    text_layers: int = 2
    max_length: int = 16
    lora: LoraSpec = field(default_factory=transformer_lora)
    dtype: str = "float32"


def caption_vocabulary(draws: int = 400, seed: int = 0) -> list[str]:
    """Every word the video captions use (drawn from each category until no new word appears)."""
    return drawn_vocabulary(lambda rng, category: caption_of(sample_video_scene(rng, category)), CAPTION_CATEGORIES,
                            draws, seed)


def frames_first(transformer: torch.nn.Module) -> bool:
    """Whether the denoiser takes (B, F, C, H, W) samples (CogVideoX) rather than (B, C, F, H, W) (Wan)."""
    return not isinstance(transformer, WanTransformer3DModel)


def stacked(transformer: torch.nn.Module) -> bool:
    """Whether the denoiser is a 2D UNet over frames stacked as channels: samples (B, F * C, H, W)."""
    return isinstance(transformer, UNet2DConditionModel)


def to_layout(x: torch.Tensor, transformer: torch.nn.Module) -> torch.Tensor:
    """(B, F, C, H, W) pixels -> the denoiser's layout."""
    if stacked(transformer):
        return x.flatten(1, 2)
    return x if frames_first(transformer) else x.transpose(1, 2)


def from_layout(x: torch.Tensor, transformer: torch.nn.Module, frames: int) -> torch.Tensor:
    """The denoiser's layout -> (B, F, C, H, W)."""
    if stacked(transformer):
        return x.unflatten(1, (frames, x.shape[1] // frames))
    return x if frames_first(transformer) else x.transpose(1, 2)


class PixelT2VPipelineOutput(BaseOutput):
    """frames: (N, F, H, W, 3) floats in [0, 1] (output_type "np") or lists of PIL images ("pil")."""

    frames: np.ndarray | list


class PixelT2VPipeline(DiffusionPipeline):
    """A pixel-space text-to-video pipeline: tokenizer -> T5 encoder -> CogVideoX transformer denoising RGB frames."""

    model_cpu_offload_seq = "text_encoder->transformer"

    def __init__(self, transformer: ModelMixin, text_encoder: T5EncoderModel,
                 tokenizer: PreTrainedTokenizerFast, scheduler, frames: int = 8, height: int = 32, width: int = 32):
        super().__init__()
        self.register_modules(transformer=transformer, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)
        self.register_to_config(frames=frames, height=height, width=width)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> torch.Tensor:
        ids = fixed_length_ids(self.tokenizer, prompts).to(self.text_encoder.device)
        return self.text_encoder(ids)[0]

    @torch.no_grad()
    def __call__(self, prompt: str | list[str], *, num_frames: int | None = None, num_inference_steps: int = 25,
                 guidance_scale: float = 3.0, generator: torch.Generator | list[torch.Generator] | None = None,
                 output_type: str = "np", return_dict: bool = True):
        """Draw one video per prompt; see PixelT2VPipelineOutput."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        cfg = self.transformer.config
        frames = num_frames or self.config.frames
        cond = self.encode_prompt(prompts)
        guided = guidance_scale > 1.0
        if guided:
            cond = torch.cat([self.encode_prompt([""] * len(prompts)), cond])
        if stacked(self.transformer):
            shape = (cfg.in_channels,)
        else:
            shape = (frames, cfg.in_channels) if frames_first(self.transformer) else (cfg.in_channels, frames)
        x = randn_tensor((len(prompts), *shape, self.config.height, self.config.width),
                         generator=generator, device=self.transformer.device, dtype=self.transformer.dtype)
        self.scheduler.set_timesteps(num_inference_steps, device=self.transformer.device)
        x = x * self.scheduler.init_noise_sigma
        for t in self.scheduler.timesteps:
            model_in = self.scheduler.scale_model_input(torch.cat([x] * 2) if guided else x, t)
            timestep = t.expand(model_in.shape[0])
            pred = call_denoiser(self.transformer, denoiser_input(self.transformer), model_in, timestep, cond)
            if guided:
                uncond, text = pred.chunk(2)
                pred = uncond + guidance_scale * (text - uncond)
            x = self.scheduler.step(pred, t, x, generator=generator).prev_sample
        x = from_layout(x, self.transformer, frames)
        videos = ((x.clamp(-1, 1) + 1) / 2).permute(0, 1, 3, 4, 2).float().cpu().numpy()
        if output_type == "pil":
            videos = [self.numpy_to_pil(v) for v in videos]
        if not return_dict:
            return (videos,)
        return PixelT2VPipelineOutput(frames=videos)


@dataclass
class T2VModel:
    """What training, evaluation and serving need from a text-to-video pipeline.

    `unet` is the denoiser (the pipeline's `transformer` slot), named as the kit's diffusion stages expect."""

    pipeline: DiffusionPipeline
    noise_scheduler: object  # the training schedule (noise levels for the losses)
    height: int
    width: int
    frames: int

    @property
    def unet(self) -> ModelMixin:
        return self.pipeline.transformer

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
        if isinstance(self.pipeline, PixelT2VPipeline):
            return self.pipeline.encode_prompt(list(prompts)).float()
        embeds, _ = self.pipeline.encode_prompt(list(prompts), do_classifier_free_guidance=False,
                                                max_sequence_length=self.unet.config.max_text_seq_length,
                                                device=self.text_encoder.device)
        return embeds.float()

    @torch.no_grad()
    def to_model_space(self, videos: np.ndarray) -> torch.Tensor:
        """uint8 (N, F, H, W, 3) videos -> what the transformer denoises: pixels in [-1, 1], or scaled VAE latents
        (CogVideoX's VAE compresses 4x in time, 8x in space); (N, F, C, H, W) for CogVideoX, (N, C, F, H, W) for Wan."""
        x = torch.from_numpy(np.array(videos, dtype=np.uint8)).permute(0, 1, 4, 2, 3).float() / 127.5 - 1.0
        if not self.latent:
            return to_layout(x, self.unet)
        vae = self.pipeline.vae
        latents = vae.encode(x.permute(0, 2, 1, 3, 4).to(vae.device, vae.dtype)).latent_dist.mean
        return (latents * vae.config.scaling_factor).permute(0, 2, 1, 3, 4).float()

    @torch.no_grad()
    def generate(self, prompts: list[str], seeds: list[int], *, steps: int = 25, guidance: float = 3.0,
                 batch_size: int = 32) -> np.ndarray:
        """uint8 (N, F, H, W, 3) videos, one per (prompt, seed); the same prompt and seed give the same video."""
        was_training = self.unet.training, self.text_encoder.training
        self.unet.eval()
        self.text_encoder.eval()
        out = []
        try:
            for start in range(0, len(prompts), batch_size):
                chunk, chunk_seeds = prompts[start:start + batch_size], seeds[start:start + batch_size]
                generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in chunk_seeds]
                kwargs = {"num_inference_steps": steps, "guidance_scale": guidance, "generator": generators,
                          "output_type": "np", "num_frames": self.frames}
                if not isinstance(self.pipeline, PixelT2VPipeline):
                    kwargs.update(height=self.height, width=self.width,
                                  max_sequence_length=self.unet.config.max_text_seq_length)
                videos = np.asarray(self.pipeline(chunk, **kwargs).frames)
                out.append(np.clip(np.round(videos * 255.0), 0, 255).astype(np.uint8))
        finally:
            self.unet.train(was_training[0])
            self.text_encoder.train(was_training[1])
        return np.concatenate(out) if out else np.zeros((0, self.frames, self.height, self.width, 3), np.uint8)

    def save(self, folder: Path) -> Path:
        """Write the pipeline with `save_pretrained` (a LoRA adapter is fused into the transformer first)."""
        if getattr(self.unet, "_hf_peft_config_loaded", False):
            self.unet.fuse_lora()
            self.unet.unload_lora()
        quiet_progress()
        self.pipeline.save_pretrained(folder)
        return folder


def _tiny_pipeline(args: ModelArgs, seed: int) -> PixelT2VPipeline:
    if args.resolution % args.patch:
        raise ValueError(f"model.resolution {args.resolution} is not a multiple of model.patch {args.patch}")
    torch.manual_seed(seed)
    tokenizer = prompt_word_tokenizer(caption_vocabulary(), args.max_length)
    text_encoder = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=args.text_width, d_kv=max(8, args.text_width // 4), d_ff=2 * args.text_width,
        num_layers=args.text_layers, num_heads=4, dropout_rate=0.0, pad_token_id=0, eos_token_id=3, decoder_start_token_id=0))
    if args.architecture == "stacked_unet":
        depth = len(args.channels)
        transformer = UNet2DConditionModel(
            sample_size=args.resolution, in_channels=3 * args.frames, out_channels=3 * args.frames,
            block_out_channels=tuple(args.channels), layers_per_block=1, cross_attention_dim=args.text_width,
            attention_head_dim=8, norm_num_groups=8, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (depth - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (depth - 1) + ("UpBlock2D",))
    elif args.architecture == "wan":
        transformer = WanTransformer3DModel(
            patch_size=(1, args.patch, args.patch), num_attention_heads=args.heads, attention_head_dim=args.head_dim,
            in_channels=3, out_channels=3, text_dim=args.text_width, freq_dim=args.heads * args.head_dim,
            ffn_dim=2 * args.heads * args.head_dim, num_layers=args.layers,
            rope_max_seq_len=max(64, args.frames, args.resolution // args.patch))
    elif args.architecture == "cogvideox":
        transformer = CogVideoXTransformer3DModel(
            num_attention_heads=args.heads, attention_head_dim=args.head_dim, in_channels=3, out_channels=3,
            time_embed_dim=args.heads * args.head_dim, text_embed_dim=args.text_width, num_layers=args.layers,
            sample_width=args.resolution, sample_height=args.resolution, sample_frames=args.frames,
            patch_size=args.patch, temporal_compression_ratio=1, max_text_seq_length=args.max_length)
    else:
        raise ValueError(f"model.architecture: {args.architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction",
                              clip_sample=True)
    return PixelT2VPipeline(transformer=transformer, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                            frames=args.frames, height=args.resolution, width=args.resolution)


def _load_pipeline(path: str, dtype: str) -> DiffusionPipeline:
    quiet_progress()
    folder = Path(path)
    index = folder / "model_index.json"
    if not index.is_file():
        raise ValueError(f"model.path {path!r}: not a diffusers pipeline folder (no model_index.json)")
    kind = json.loads(index.read_text()).get("_class_name")
    if kind == PixelT2VPipeline.__name__:
        pipeline = PixelT2VPipeline.from_pretrained(folder)
    else:
        # The frozen parts (T5, VAE) in `dtype`; the transformer, which trains, in float32.
        pipeline = DiffusionPipeline.from_pretrained(folder, dtype=getattr(torch, dtype))
        if not hasattr(pipeline, "transformer"):
            raise ValueError(f"model.path {path!r}: a {kind}, not a video pipeline with a transformer (CogVideoX)")
        pipeline.transformer.to(torch.float32)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def quiet_progress() -> None:
    """Switch off diffusers' and transformers' loading / saving progress bars (they fill logs of every stage)."""
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _model(pipeline: DiffusionPipeline, args: ModelArgs | None) -> T2VModel:
    cfg = pipeline.transformer.config
    if isinstance(pipeline, PixelT2VPipeline):
        height, width, frames = pipeline.config.height, pipeline.config.width, pipeline.config.frames
    else:
        vae = pipeline.vae_scale_factor_spatial
        side = args.resolution if args else 0
        height = (args.height if args and args.height else side) or cfg.sample_height * vae
        width = (args.width if args and args.width else side) or cfg.sample_width * vae
        frames = args.frames if args else cfg.sample_frames
    noise = type(pipeline.scheduler).from_config(pipeline.scheduler.config)
    return T2VModel(pipeline=pipeline, noise_scheduler=noise, height=height, width=width, frames=frames)


def load_model(args: ModelArgs, seed: int = 0) -> T2VModel:
    """Build the tiny pipeline or load one from a folder; add the transformer's LoRA adapter when asked."""
    if args.source == "tiny":
        pipeline = _tiny_pipeline(args, seed)
    elif args.source == "pipeline":
        pipeline = _load_pipeline(args.path, args.dtype)
    else:
        raise ValueError(f"model.source: {args.source!r} is not one of tiny, pipeline")
    add_unet_lora(pipeline.transformer, args.lora)
    return _model(pipeline, args)


def load_saved(folder: str | Path, args: ModelArgs | None = None) -> T2VModel:
    """Load a pipeline written by `T2VModel.save` (or any CogVideoX pipeline folder)."""
    return _model(_load_pipeline(str(folder), args.dtype if args else "float32"), args)
