"""Diffusion preference training (Diffusion-DPO / NPO / SmPO / KTO) on a denoising UNet as a LightningModule.

The implicit reward of an image is how much better the policy denoises it than the reference:
each sample is noised once with one noise draw and one timestep, shared by the two sides of a pair
and by policy and reference, and e = mean ||target - prediction||^2 per sample feeds the
registered `diffusion` losses (see shared/losses/diffusion.py). diffusers is only needed to build
the UNet and the noise scheduler; this module only calls them.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import typing
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from shared.losses import DenoisingErrors, DenoisingPairErrors, LossOutput, get_loss, list_losses
from shared.modules.base import StepModule

PREDICTION_TYPES = ("epsilon", "v_prediction")
REFERENCES = ("auto", "frozen_copy", "adapter_disabled")


def sample_noise_and_timesteps(shape: torch.Size | tuple[int, ...], noise_scheduler,
                               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Return standard normal noise of `shape` and one uniform training timestep per sample (CPU tensors)."""
    noise = torch.randn(tuple(shape), generator=generator)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (shape[0],), generator=generator)
    return noise, timesteps


def denoising_target(noise_scheduler, samples: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
    """Return what the UNet should predict: the noise (epsilon) or the velocity (v_prediction)."""
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return noise_scheduler.get_velocity(samples, noise, timesteps)
    raise ValueError(f"scheduler prediction_type '{kind}' is not supported (use one of {', '.join(PREDICTION_TYPES)})")


def per_sample_error(prediction: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
    """Return the mean squared error over every non-batch dimension, in float32, shape (batch,).

    With `weight` (broadcastable to the samples, e.g. (batch, 1, H, W) pixel weights such as
    1 + lambda * object mask), the weighted mean sum(w * err^2) / sum(w) per sample.
    """
    err = (prediction.float() - target.float()).pow(2)
    if weight is None:
        return err.flatten(1).mean(dim=1)
    w = weight.float().expand_as(err)
    return (w * err).flatten(1).sum(dim=1) / w.flatten(1).sum(dim=1).clamp_min(1e-12)


def denoiser_input(unet: torch.nn.Module) -> str:
    """Return the name of the denoiser's noisy-input argument: "sample" (diffusers UNets) or "hidden_states"
    (diffusers video / image transformers: CogVideoX, Wan, SD3). Their argument orders differ, so the
    modules call every denoiser by keyword."""
    if hasattr(unet, "get_base_model"):  # a peft.PeftModel forwards **kwargs to the model it wraps
        unet = unet.get_base_model()
    forward = getattr(unet, "forward", None)
    params = list(inspect.signature(forward).parameters) if forward is not None else []
    return "hidden_states" if params and params[0] == "hidden_states" else "sample"


def call_denoiser(unet: torch.nn.Module, input_name: str, noisy: Tensor, timesteps: Tensor, cond: Tensor) -> Tensor:
    """Return the denoiser's prediction for (noisy, timesteps, cond), calling it by keyword (see denoiser_input)."""
    return unet(**{input_name: noisy}, timestep=timesteps, encoder_hidden_states=cond, return_dict=False)[0]


def has_adapter(unet: torch.nn.Module) -> bool:
    """Return whether `unet` carries a peft adapter (wrapped by peft or attached with diffusers' add_adapter)."""
    return hasattr(unet, "disable_adapter") or bool(getattr(unet, "_hf_peft_config_loaded", False))


@contextlib.contextmanager
def adapter_disabled(unet: torch.nn.Module) -> Iterator[None]:
    """Run the block with the unet's peft adapters switched off, then switch them back on."""
    if hasattr(unet, "disable_adapter"):  # peft.PeftModel
        with unet.disable_adapter():
            yield
    elif getattr(unet, "_hf_peft_config_loaded", False):  # diffusers PeftAdapterMixin.add_adapter
        unet.disable_adapters()
        try:
            yield
        finally:
            unet.enable_adapters()
    else:
        raise ValueError("reference 'adapter_disabled' needs a unet with a peft (LoRA) adapter; use 'frozen_copy'")


class _FrozenUNet(torch.nn.Module):
    """A frozen deep copy of a unet that stays in eval mode when Lightning calls .train()."""

    def __init__(self, unet: torch.nn.Module):
        super().__init__()
        self.model = copy.deepcopy(unet).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> _FrozenUNet:
        return super().train(False)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)


class DiffusionPreferenceModule(StepModule):
    """Train a conditional UNet with a registered `diffusion` loss against a frozen reference.

    Pair batches: {"chosen", "rejected": (B, C, H, W), "encoder_hidden_states": (B, S, D),
    optional "strength": (B,), optional "negative_encoder_hidden_states": (B, S, D) (the chosen sample
    is also denoised under it: OSPO's conditional term), optional "chosen_weights" /
    "rejected_weights": (B, 1, H, W) per-pixel weights of the squared error (OSPO's object-mask
    weighting)}. Unpaired batches (diffusion_kto): {"samples", "desirable": bool (B,),
    "encoder_hidden_states", optional "weights"}. Either kind may carry real (not generated) samples,
    {"real", "real_encoder_hidden_states"}: with `real_weight` > 0 their plain denoising error is added,
    loss = preference loss + real_weight * mean_i e_pol(x_real_i) (IPO's real-video regulariser; our
    form: the SFT objective on real data, with its own noise draw). Samples may be images (B, C, H, W)
    or videos in the denoiser's layout (CogVideoX (B, F, C, H, W), Wan (B, C, F, H, W)); it is called by keyword
    (`call_denoiser`). `reference`: "frozen_copy" (deep copy taken now), "adapter_disabled"
    (the unet with its LoRA switched off), or "auto" (adapter_disabled when the unet has an adapter).
    Noise and timesteps of each step come from a generator seeded by (seed, stage, rank, global
    step, batch index), so runs repeat and resume exactly and validation always sees the same
    noise. Logs TRL's metric names plus implicit_acc and the mean errors, under train/ and val/.
    """

    def __init__(self, unet: torch.nn.Module, noise_scheduler, *, loss: str = "diffusion_dpo",
                 loss_kwargs: dict | None = None, lr: float = 1e-5, weight_decay: float = 0.0,
                 reference: str = "auto", real_weight: float = 0.0, seed: int = 0):
        super().__init__()
        if real_weight < 0:
            raise ValueError(f"real_weight must be >= 0, got {real_weight}")
        self.real_weight = real_weight
        self.loss_spec = get_loss(loss)
        if self.loss_spec.family != "diffusion":
            raise ValueError(f"loss '{loss}' is a {self.loss_spec.family} loss; DiffusionPreferenceModule trains "
                             f"diffusion losses ({', '.join(list_losses('diffusion'))})")
        self.loss_kwargs = dict(loss_kwargs or {})
        unknown = sorted(set(self.loss_kwargs) - set(self.loss_spec.hyperparameters()))
        if unknown:
            raise ValueError(f"loss '{loss}': unknown hyper-parameter '{unknown[0]}' "
                             f"(known: {', '.join(sorted(self.loss_spec.hyperparameters()))})")
        first = next(iter(inspect.signature(self.loss_spec.fn).parameters))
        self.unpaired = typing.get_type_hints(self.loss_spec.fn).get(first) is DenoisingErrors
        if noise_scheduler.config.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"scheduler prediction_type '{noise_scheduler.config.prediction_type}' is not supported "
                             f"(use one of {', '.join(PREDICTION_TYPES)})")
        if reference not in REFERENCES:
            raise ValueError(f"reference: '{reference}' is not one of {', '.join(REFERENCES)}")
        if reference == "auto":
            reference = "adapter_disabled" if has_adapter(unet) else "frozen_copy"
        if reference == "adapter_disabled" and not has_adapter(unet):
            raise ValueError("reference 'adapter_disabled' needs a unet with a peft (LoRA) adapter; use 'frozen_copy'")
        self.unet = unet
        self.input_name = denoiser_input(unet)
        self.noise_scheduler = noise_scheduler
        self.reference_kind = reference
        self.reference_unet = _FrozenUNet(unet) if reference == "frozen_copy" else None
        self.lr, self.weight_decay, self.seed = lr, weight_decay, seed
        self.last_noise: Tensor | None = None
        self.last_timesteps: Tensor | None = None
        self.save_hyperparameters(ignore=["unet", "noise_scheduler"])

    def _predict(self, unet: torch.nn.Module, noisy: Tensor, timesteps: Tensor, cond: Tensor) -> Tensor:
        return call_denoiser(unet, self.input_name, noisy, timesteps, cond)

    @torch.no_grad()
    def _reference_predict(self, noisy: Tensor, timesteps: Tensor, cond: Tensor) -> Tensor:
        if self.reference_unet is not None:
            return self._predict(self.reference_unet, noisy, timesteps, cond)
        with adapter_disabled(self.unet):
            return self._predict(self.unet, noisy, timesteps, cond)

    def _errors(self, samples: list[Tensor], conds: list[Tensor], weights: list[Tensor | None],
                generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Noise every block of `samples` (each n samples, under its own conditioning) with one shared draw of
        noise and timesteps; return the (policy, reference) errors of all blocks, concatenated."""
        n = samples[0].shape[0]
        noise, timesteps = sample_noise_and_timesteps((n, *samples[0].shape[1:]), self.noise_scheduler, generator)
        noise = noise.to(device=samples[0].device, dtype=samples[0].dtype)
        timesteps = timesteps.to(samples[0].device)
        self.last_noise, self.last_timesteps = noise, timesteps
        repeats = len(samples)
        stacked, cond = torch.cat(samples), torch.cat(conds)
        noise, timesteps = torch.cat([noise] * repeats), torch.cat([timesteps] * repeats)
        weight = None
        if any(w is not None for w in weights):
            weight = torch.cat([torch.ones_like(s[:, :1]) if w is None else w.to(s) for s, w in zip(samples, weights)])
        noisy = self.noise_scheduler.add_noise(stacked, noise, timesteps)
        target = denoising_target(self.noise_scheduler, stacked, noise, timesteps)
        ref = per_sample_error(self._reference_predict(noisy, timesteps, cond), target, weight)
        policy = per_sample_error(self._predict(self.unet, noisy, timesteps, cond), target, weight)
        return policy, ref

    def errors(self, batch: dict[str, Tensor],
               generator: torch.Generator | None = None) -> DenoisingPairErrors | DenoisingErrors:
        """Return the batch's policy and reference denoising errors, drawing noise from `generator`."""
        cond = _require(batch, "encoder_hidden_states")
        if self.unpaired:
            samples, desirable = _require(batch, "samples"), _require(batch, "desirable")
            _check_batch(cond, samples=samples, desirable=desirable)
            if desirable.dim() != 1:
                raise ValueError(f"batch 'desirable' must have shape (batch,), got {tuple(desirable.shape)}")
            _check_weights(samples, batch.get("weights"), "weights")
            policy, ref = self._errors([samples], [cond], [batch.get("weights")], generator)
            return DenoisingErrors(policy=policy, ref=ref, desirable=desirable.bool())
        chosen, rejected = _require(batch, "chosen"), _require(batch, "rejected")
        if chosen.shape != rejected.shape:
            raise ValueError(f"batch 'chosen' has shape {tuple(chosen.shape)} but 'rejected' has "
                             f"{tuple(rejected.shape)}; pairs need equal shapes")
        negative = batch.get("negative_encoder_hidden_states")
        _check_batch(cond, chosen=chosen, strength=batch.get("strength"))
        if negative is not None and negative.shape != cond.shape:
            raise ValueError(f"batch 'negative_encoder_hidden_states' has shape {tuple(negative.shape)}; "
                             f"'encoder_hidden_states' has {tuple(cond.shape)}")
        w_chosen, w_rejected = batch.get("chosen_weights"), batch.get("rejected_weights")
        _check_weights(chosen, w_chosen, "chosen_weights")
        _check_weights(rejected, w_rejected, "rejected_weights")
        samples, conds, weights = [chosen, rejected], [cond, cond], [w_chosen, w_rejected]
        if negative is not None:  # the chosen sample again, under the negative prompt
            samples, conds, weights = samples + [chosen], conds + [negative], weights + [w_chosen]
        policy, ref = self._errors(samples, conds, weights, generator)
        n = chosen.shape[0]
        extra = {}
        if negative is not None:
            extra = {"policy_chosen_negative": policy[2 * n:], "ref_chosen_negative": ref[2 * n:]}
        return DenoisingPairErrors(policy_chosen=policy[:n], policy_rejected=policy[n:2 * n], ref_chosen=ref[:n],
                                   ref_rejected=ref[n:2 * n], strength=batch.get("strength"), **extra)

    def step_generator(self, stage: str, batch_idx: int) -> torch.Generator:
        """Return the CPU generator for this step: seeded by (seed, stage, rank, global step, batch index)."""
        # Validation ignores the global step, so every validation pass sees the same noise and is comparable.
        step = self.global_step if stage == "train" else 0
        entropy = [self.seed, ("train", "val").index(stage), self.global_rank, step, batch_idx]
        return torch.Generator().manual_seed(int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]))

    def trainable_module(self) -> torch.nn.Module:
        return self.unet

    def real_error(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Tensor | None:
        """Return the policy's mean denoising error on the batch's real samples (None when it has none)."""
        if "real" not in batch:
            return None
        real, cond = batch["real"], _require(batch, "real_encoder_hidden_states")
        _check_batch(cond, real=real)
        noise, timesteps = sample_noise_and_timesteps(real.shape, self.noise_scheduler, generator)
        noise, timesteps = noise.to(real), timesteps.to(real.device)
        noisy = self.noise_scheduler.add_noise(real, noise, timesteps)
        target = denoising_target(self.noise_scheduler, real, noise, timesteps)
        return per_sample_error(self._predict(self.unet, noisy, timesteps, cond), target).mean()

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        generator = self.step_generator(stage, batch_idx)
        errors = self.errors(batch, generator)
        out = self.loss_spec(errors, **self.loss_kwargs)
        loss = out.loss
        metrics = {"loss": out.loss.detach(), **_reward_metrics(out, errors), **out.metrics}
        real = self.real_error(batch, generator) if self.real_weight > 0 else None
        if real is not None:
            loss = loss + self.real_weight * real
            metrics.update({"loss": loss.detach(), "preference_loss": out.loss.detach(), "real_error": real.detach()})
        for name in ("policy_chosen", "policy_rejected", "ref_chosen", "ref_rejected", "policy", "ref"):
            if hasattr(errors, name):
                metrics[f"errors/{name}"] = getattr(errors, name).detach().mean()
        size = errors.policy.numel() if self.unpaired else errors.policy_chosen.numel()
        self.log_metrics(metrics, stage, batch_size=size)
        return loss


def _require(batch: dict[str, Tensor], key: str) -> Tensor:
    if key not in batch:
        raise ValueError(f"batch has no '{key}' (keys: {', '.join(sorted(batch))})")
    return batch[key]


def _check_weights(samples: Tensor, weight: Tensor | None, name: str) -> None:
    """Raise ValueError unless `weight` is None or (batch, 1 or C, H, W) for these samples, non-negative."""
    if weight is None:
        return
    ok = weight.dim() == samples.dim() and weight.shape[0] == samples.shape[0] and weight.shape[1] in (1, samples.shape[1]) \
        and weight.shape[2:] == samples.shape[2:]
    if not ok:
        raise ValueError(f"batch '{name}' has shape {tuple(weight.shape)}; expected ({samples.shape[0]}, 1 or "
                         f"{samples.shape[1]}, {', '.join(map(str, samples.shape[2:]))})")
    if (weight < 0).any():
        raise ValueError(f"batch '{name}' has negative weights")


def _check_batch(cond: Tensor, **tensors: Tensor | None) -> None:
    """Raise ValueError unless every given tensor has the conditioning's batch size."""
    for name, value in tensors.items():
        if value is not None and (value.dim() == 0 or value.shape[0] != cond.shape[0]):
            raise ValueError(f"batch '{name}' has shape {tuple(value.shape)}; 'encoder_hidden_states' has batch size "
                             f"{cond.shape[0]}")


def _reward_metrics(out: LossOutput, errors: DenoisingPairErrors | DenoisingErrors) -> dict[str, Tensor]:
    """Return TRL's rewards/* metrics and implicit_acc (ties count one half, as in the Diffusion-DPO code)."""
    chosen, rejected = out.chosen_rewards, out.rejected_rewards
    metrics = {}
    if chosen is not None and chosen.numel():
        metrics["rewards/chosen"] = chosen.mean()
    if rejected is not None and rejected.numel():
        metrics["rewards/rejected"] = rejected.mean()
    if isinstance(errors, DenoisingPairErrors):
        h = chosen - rejected
        metrics["rewards/accuracies"] = (h > 0).float().mean()
        metrics["rewards/margins"] = h.mean()
        metrics["implicit_acc"] = ((h > 0).float() + 0.5 * (h == 0).float()).mean()
    else:
        # Unpaired: a sample is right when its implicit reward has its label's sign.
        if "rewards/chosen" in metrics and "rewards/rejected" in metrics:
            metrics["rewards/margins"] = metrics["rewards/chosen"] - metrics["rewards/rejected"]
        signed = torch.cat([chosen, -rejected])
        metrics["implicit_acc"] = ((signed > 0).float() + 0.5 * (signed == 0).float()).mean()
    return metrics
