"""Diffusion preference module: shared noise and timesteps, references, loss parity, and training on a toy task."""

from __future__ import annotations

import copy
import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("diffusers")
from diffusers import DDPMScheduler, UNet2DConditionModel  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402

from shared.losses import DenoisingErrors, DenoisingPairErrors, get_loss  # noqa: E402
from shared.modules.diffusion import DiffusionPreferenceModule  # noqa: E402

C, S, D = 4, 3, 16  # latent channels, text tokens, text width
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@pytest.fixture(autouse=True)
def one_thread():
    # An 8x8 UNet is faster on one thread, and two OpenMP threads on a shared 2-core machine stall unpredictably.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, in_channels=C, out_channels=C, block_out_channels=(32, 32), layers_per_block=1,
        cross_attention_dim=D, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_head_dim=8, norm_num_groups=8,
    )


def with_lora(unet: UNet2DConditionModel, wrapper: str, r: int = 4) -> torch.nn.Module:
    config = LoraConfig(r=r, lora_alpha=r, target_modules=LORA_TARGETS)
    if wrapper == "peft_model":
        return get_peft_model(unet, config)
    unet.add_adapter(config)  # diffusers' own peft integration; freezes the base weights
    return unet


def scheduler(prediction_type: str = "epsilon") -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction_type)


def pair_batch(n: int = 4, seed: int = 0, strength: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"chosen": torch.randn(n, C, 8, 8, generator=g), "rejected": torch.randn(n, C, 8, 8, generator=g),
             "encoder_hidden_states": torch.randn(n, S, D, generator=g)}
    if strength:
        batch["strength"] = torch.rand(n, generator=g)
    return batch


def unpaired_batch(n: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"samples": torch.randn(n, C, 8, 8, generator=g), "desirable": torch.arange(n) % 2 == 0,
            "encoder_hidden_states": torch.randn(n, S, D, generator=g)}


def capture_inputs(unet: torch.nn.Module, calls: list) -> torch.utils.hooks.RemovableHandle:
    """Record (sample, timesteps, encoder_hidden_states) of every forward of `unet`."""
    def hook(module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        calls.append((sample.detach().clone(), timestep.detach().clone(), kwargs["encoder_hidden_states"].clone()))
    return unet.register_forward_pre_hook(hook, with_kwargs=True)


def hand_errors(unet, x0, noise, t, cond, prediction_type) -> torch.Tensor:
    """Denoising error of one side computed directly from the DDPM formulas."""
    ab = scheduler().alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    target = noise if prediction_type == "epsilon" else ab.sqrt() * noise - (1 - ab).sqrt() * x0
    with torch.no_grad():
        pred = unet(noisy, t, encoder_hidden_states=cond).sample
    return ((pred - target) ** 2).mean(dim=(1, 2, 3))


def perturb_(params, scale: float = 0.02, seed: int = 3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.add_(scale * torch.randn(p.shape, generator=g))


def test_ospo_batch_denoises_the_chosen_under_the_negative_prompt_with_the_same_noise():
    unet = tiny_unet()
    module = DiffusionPreferenceModule(unet, scheduler(), loss="diffusion_ospo")
    batch = pair_batch(n=3)
    batch["negative_encoder_hidden_states"] = torch.randn(3, S, D, generator=torch.Generator().manual_seed(5))
    calls = []
    hook = capture_inputs(unet, calls)
    errors = module.errors(batch, torch.Generator().manual_seed(11))
    hook.remove()
    noisy, t, cond = calls[0]
    assert noisy.shape[0] == 9  # chosen | rejected | chosen again
    torch.testing.assert_close(noisy[:3], noisy[6:], rtol=0, atol=0)  # same sample, noise and timestep
    torch.testing.assert_close(t[:3], t[6:], rtol=0, atol=0)
    torch.testing.assert_close(cond[6:], batch["negative_encoder_hidden_states"], rtol=0, atol=0)
    torch.testing.assert_close(errors.policy_chosen_negative,
                               hand_errors(unet, batch["chosen"], module.last_noise, module.last_timesteps,
                                           batch["negative_encoder_hidden_states"], "epsilon"), rtol=1e-4, atol=1e-6)
    assert module.training_step(batch, 0).isfinite()


def test_pixel_weights_weight_the_squared_error():
    unet = tiny_unet()
    module = DiffusionPreferenceModule(unet, scheduler())
    batch = pair_batch(n=2)
    plain = module.errors(batch, torch.Generator().manual_seed(1))
    ones = module.errors({**batch, "chosen_weights": torch.ones(2, 1, 8, 8)}, torch.Generator().manual_seed(1))
    torch.testing.assert_close(plain.policy_chosen, ones.policy_chosen)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, :4] = 1.0  # only the top half counts
    half = module.errors({**batch, "chosen_weights": mask}, torch.Generator().manual_seed(1))
    noisy = module.noise_scheduler.add_noise(batch["chosen"], module.last_noise, module.last_timesteps)
    with torch.no_grad():
        pred = unet(noisy, module.last_timesteps, encoder_hidden_states=batch["encoder_hidden_states"]).sample
    expected = ((pred - module.last_noise) ** 2)[:, :, :4].mean(dim=(1, 2, 3))
    torch.testing.assert_close(half.policy_chosen, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(half.policy_rejected, plain.policy_rejected)
    with pytest.raises(ValueError, match="'rejected_weights' has shape"):
        module.errors({**batch, "rejected_weights": torch.ones(2, 8, 8)})


@pytest.mark.parametrize("reference", ["frozen_copy", "adapter_disabled"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_chosen_rejected_policy_and_reference_share_noise_and_timesteps(reference, prediction_type):
    unet = tiny_unet()
    if reference == "adapter_disabled":
        unet = with_lora(unet, "add_adapter")
    sched = scheduler(prediction_type)
    module = DiffusionPreferenceModule(unet, sched, reference=reference)
    policy_calls, ref_calls = [], []
    hooks = [capture_inputs(unet, policy_calls)]
    if reference == "frozen_copy":
        hooks.append(capture_inputs(module.reference_unet.model, ref_calls))
    batch = pair_batch(n=4)
    module.errors(batch, torch.Generator().manual_seed(11))
    for h in hooks:
        h.remove()
    if reference == "adapter_disabled":  # the same unet runs twice: reference (adapter off) first
        ref_calls, policy_calls = policy_calls[:1], policy_calls[1:]
    assert len(policy_calls) == 1 and len(ref_calls) == 1  # one forward each for chosen + rejected
    n = 4
    x0 = torch.cat([batch["chosen"], batch["rejected"]])
    ab = sched.alphas_cumprod
    for noisy, t, cond in (policy_calls[0], ref_calls[0]):
        assert noisy.shape == (2 * n, C, 8, 8) and t.shape == (2 * n,)
        torch.testing.assert_close(t[:n], t[n:], rtol=0, atol=0)
        torch.testing.assert_close(cond[:n], cond[n:], rtol=0, atol=0)
        a = ab[t].view(-1, 1, 1, 1)
        noise = (noisy - a.sqrt() * x0) / (1 - a).sqrt()
        torch.testing.assert_close(noise[:n], noise[n:], rtol=0, atol=1e-4)
        torch.testing.assert_close(noise[:n], module.last_noise, rtol=0, atol=1e-4)
        torch.testing.assert_close(t[:n], module.last_timesteps, rtol=0, atol=0)
    torch.testing.assert_close(policy_calls[0][0], ref_calls[0][0], rtol=0, atol=0)
    torch.testing.assert_close(policy_calls[0][1], ref_calls[0][1], rtol=0, atol=0)


def test_step_generator_is_seeded_by_seed_stage_and_step(monkeypatch):
    module = DiffusionPreferenceModule(tiny_unet(), scheduler(), seed=7)
    draw = lambda m, stage, i: torch.randn(4, generator=m.step_generator(stage, i))  # noqa: E731
    train0, val0 = draw(module, "train", 0), draw(module, "val", 0)
    torch.testing.assert_close(draw(module, "train", 0), train0, rtol=0, atol=0)
    assert not torch.equal(draw(module, "train", 1), train0)
    assert not torch.equal(val0, train0)
    assert not torch.equal(draw(DiffusionPreferenceModule(tiny_unet(), scheduler(), seed=8), "train", 0), train0)
    monkeypatch.setattr(DiffusionPreferenceModule, "global_step", property(lambda self: 5))
    assert not torch.equal(draw(module, "train", 0), train0)  # a new optimiser step draws new noise
    torch.testing.assert_close(draw(module, "val", 0), val0, rtol=0, atol=0)  # validation noise stays fixed


@pytest.mark.parametrize("wrapper", ["add_adapter", "peft_model"])
def test_step0_loss_is_log2_and_frozen_copy_matches_adapter_disabled(wrapper):
    base = tiny_unet(seed=1)
    untouched = copy.deepcopy(base)
    unet = with_lora(base, wrapper)
    batch = pair_batch(seed=1)
    modules = {kind: DiffusionPreferenceModule(unet, scheduler(), reference=kind)
               for kind in ("frozen_copy", "adapter_disabled")}
    losses = {kind: m.loss_spec(m.errors(batch, torch.Generator().manual_seed(5))).loss for kind, m in modules.items()}
    torch.testing.assert_close(losses["frozen_copy"], losses["adapter_disabled"], rtol=0, atol=1e-6)
    assert losses["frozen_copy"].item() == pytest.approx(math.log(2), abs=1e-6)

    # Once the adapter has moved, the adapter-disabled reference is still the base model, and the adapter is back on.
    perturb_([p for n, p in unet.named_parameters() if "lora_B" in n])
    module = modules["adapter_disabled"]
    errors = module.errors(batch, torch.Generator().manual_seed(5))
    noise, t = module.last_noise, module.last_timesteps
    cond = batch["encoder_hidden_states"]
    torch.testing.assert_close(errors.ref_chosen, hand_errors(untouched, batch["chosen"], noise, t, cond, "epsilon"),
                               rtol=0, atol=1e-5)
    torch.testing.assert_close(errors.policy_chosen.detach(),
                               hand_errors(unet, batch["chosen"], noise, t, cond, "epsilon"), rtol=0, atol=1e-5)
    assert (errors.policy_chosen - errors.ref_chosen).abs().max() > 1e-4


def test_optimizer_holds_only_trainable_parameters():
    lora = DiffusionPreferenceModule(with_lora(tiny_unet(), "add_adapter"), scheduler())
    full = DiffusionPreferenceModule(tiny_unet(), scheduler())
    assert lora.reference_kind == "adapter_disabled" and full.reference_kind == "frozen_copy"
    count = lambda m: sum(p.numel() for g in m.configure_optimizers().param_groups for p in g["params"])  # noqa: E731
    assert count(lora) == sum(p.numel() for n, p in lora.unet.named_parameters() if "lora_" in n)
    assert count(full) == sum(p.numel() for p in full.unet.parameters())
    assert not any(p.requires_grad for p in full.reference_unet.parameters())


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
@pytest.mark.parametrize("loss,prediction_type", [("diffusion_dpo", "epsilon"), ("diffusion_dpo", "v_prediction"),
                                                  ("diffusion_smpo", "epsilon"), ("diffusion_kto", "epsilon")])
def test_module_loss_matches_registered_loss_on_hand_computed_errors(loss, prediction_type):
    unet = tiny_unet(seed=2)
    reference = copy.deepcopy(unet)
    hparams = {"beta": 50.0}
    module = DiffusionPreferenceModule(unet, scheduler(prediction_type), loss=loss, loss_kwargs=hparams)
    perturb_(unet.parameters())  # the policy has moved away from the reference
    batch = unpaired_batch(seed=2) if loss == "diffusion_kto" else pair_batch(seed=2, strength=True)
    got = module.training_step(batch, 0)
    noise, t, cond = module.last_noise, module.last_timesteps, batch["encoder_hidden_states"]

    def side(x0):
        return hand_errors(unet, x0, noise, t, cond, prediction_type), hand_errors(reference, x0, noise, t, cond,
                                                                                   prediction_type)

    if loss == "diffusion_kto":
        policy, ref = side(batch["samples"])
        errors = DenoisingErrors(policy=policy, ref=ref, desirable=batch["desirable"])
    else:
        (pw, rw), (pl, rl) = side(batch["chosen"]), side(batch["rejected"])
        errors = DenoisingPairErrors(policy_chosen=pw, policy_rejected=pl, ref_chosen=rw, ref_rejected=rl,
                                     strength=batch["strength"])
    want = get_loss(loss)(errors, **hparams).loss
    torch.testing.assert_close(got.detach(), want, rtol=1e-4, atol=1e-5)
    assert abs(want.item() - math.log(2)) > 1e-3  # the comparison is not the trivial step-0 value


def toy_images(n: int = 16):
    """Chosen images are bright on the left, rejected bright on the right; one caption per pair."""
    g = torch.Generator().manual_seed(1)
    pattern = torch.ones(C, 8, 8)
    pattern[..., 4:] = -1
    chosen = pattern + 0.1 * torch.randn(n, C, 8, 8, generator=g)
    rejected = -pattern + 0.1 * torch.randn(n, C, 8, 8, generator=g)
    return chosen, rejected, torch.randn(n, S, D, generator=g)


def fit(module: DiffusionPreferenceModule, data: list[dict], tmp_path, val: list[dict] | None = None) -> L.Trainer:
    trainer = L.Trainer(max_steps=20, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(data, batch_size=4), None if val is None else DataLoader(val, batch_size=4))
    return trainer


@pytest.mark.parametrize("reference,lr", [("frozen_copy", 3e-4), ("adapter_disabled", 1e-2)])
def test_diffusion_dpo_fit_prefers_the_chosen_pattern(reference, lr, tmp_path):
    unet = tiny_unet(seed=4)
    if reference == "adapter_disabled":
        unet = with_lora(unet, "add_adapter", r=8)
    module = DiffusionPreferenceModule(unet, scheduler(), loss="diffusion_dpo", lr=lr, reference=reference)
    chosen, rejected, cond = toy_images()
    pairs = [{"chosen": chosen[i], "rejected": rejected[i], "encoder_hidden_states": cond[i]} for i in range(16)]
    draws = 4  # several fixed noise draws per training pair
    probe = {"chosen": chosen.repeat(draws, 1, 1, 1), "rejected": rejected.repeat(draws, 1, 1, 1),
             "encoder_hidden_states": cond.repeat(draws, 1, 1)}

    def rewards():
        with torch.no_grad():
            out = module.loss_spec(module.errors(probe, torch.Generator().manual_seed(123)))
        return out.chosen_rewards - out.rejected_rewards

    assert rewards().abs().max().item() == 0.0  # policy == reference before training
    trainer = fit(module, pairs, tmp_path, val=pairs[:4])
    margins = rewards()
    assert margins.mean().item() > 0
    assert (margins > 0).float().mean().item() >= 0.75
    metrics = trainer.callback_metrics
    for name in ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                 "implicit_acc"):
        assert f"train/{name}" in metrics and f"val/{name}" in metrics
    assert metrics["train/rewards/accuracies"].item() == metrics["train/implicit_acc"].item()


def test_diffusion_kto_fit_separates_desirable_from_undesirable(tmp_path):
    module = DiffusionPreferenceModule(tiny_unet(seed=4), scheduler(), loss="diffusion_kto",
                                       loss_kwargs={"beta": 20.0}, lr=1e-3)
    good, bad, cond = toy_images()
    samples = [{"samples": x, "desirable": torch.tensor(ok), "encoder_hidden_states": cond[i]}
               for i in range(16) for x, ok in ((good[i], True), (bad[i], False))]
    draws = 4
    probe = {"samples": torch.cat([good, bad]).repeat(draws, 1, 1, 1),
             "desirable": torch.cat([torch.ones(16, dtype=torch.bool), torch.zeros(16, dtype=torch.bool)]).repeat(draws),
             "encoder_hidden_states": torch.cat([cond, cond]).repeat(draws, 1, 1)}
    trainer = fit(module, samples, tmp_path)
    assert {"train/rewards/margins", "train/implicit_acc", "train/kl"} <= set(trainer.callback_metrics)
    with torch.no_grad():
        errors = module.errors(probe, torch.Generator().manual_seed(123))
    reward = errors.ref - errors.policy  # implicit reward up to the positive factor beta * scale
    desirable = probe["desirable"]
    assert reward[desirable].mean() > reward[~desirable].mean()
    assert torch.cat([reward[desirable] > 0, reward[~desirable] < 0]).float().mean().item() >= 0.75


@pytest.mark.parametrize("kwargs,match", [
    ({"loss": "sigmoid"}, "pairwise loss; DiffusionPreferenceModule trains diffusion losses"),
    ({"loss": "no_such_loss"}, "unknown loss 'no_such_loss'"),
    ({"loss": "diffusion_dpo", "loss_kwargs": {"gamma": 1.0}}, "unknown hyper-parameter 'gamma'"),
    ({"reference": "adapter_disabled"}, "needs a unet with a peft"),
    ({"reference": "precomputed"}, "not one of auto, frozen_copy, adapter_disabled"),
])
def test_bad_configuration_raises_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiffusionPreferenceModule(tiny_unet(), scheduler(), **kwargs)


def test_unsupported_prediction_type_raises_value_error():
    with pytest.raises(ValueError, match="prediction_type 'sample' is not supported"):
        DiffusionPreferenceModule(tiny_unet(), scheduler("sample"))


@pytest.mark.parametrize("loss,change,match", [
    ("diffusion_dpo", {"rejected": torch.zeros(4, C, 4, 4)}, r"'chosen' has shape \(4, 4, 8, 8\) but 'rejected'"),
    ("diffusion_dpo", {"encoder_hidden_states": torch.zeros(3, S, D)}, "'encoder_hidden_states' has batch size 3"),
    ("diffusion_dpo", {"chosen": None}, "batch has no 'chosen'"),
    ("diffusion_kto", {"desirable": torch.ones(4, 1, dtype=torch.bool)}, r"'desirable' must have shape \(batch,\)"),
])
def test_bad_batch_raises_value_error(loss, change, match):
    module = DiffusionPreferenceModule(tiny_unet(), scheduler(), loss=loss)
    batch = unpaired_batch() if loss == "diffusion_kto" else pair_batch()
    batch.update(change)
    batch = {k: v for k, v in batch.items() if v is not None}
    with pytest.raises(ValueError, match=match):
        module.errors(batch)


def test_real_samples_add_their_weighted_denoising_error_to_the_loss():
    unet = tiny_unet()
    batch = pair_batch()
    g = torch.Generator().manual_seed(7)
    batch.update(real=torch.randn(4, C, 8, 8, generator=g), real_encoder_hidden_states=torch.randn(4, S, D, generator=g))
    plain = DiffusionPreferenceModule(unet, scheduler(), loss="diffusion_dpo", seed=3)
    weighted = DiffusionPreferenceModule(unet, scheduler(), loss="diffusion_dpo", real_weight=0.5, seed=3)
    base, total = plain._step(batch, "train", 0), weighted._step(batch, "train", 0)
    # The real term by hand: the step's generator draws the pair's noise first, then the real samples' noise.
    gen = weighted.step_generator("train", 0)
    weighted.errors(batch, gen)
    noise = torch.randn(4, C, 8, 8, generator=gen)
    t = torch.randint(0, 1000, (4,), generator=gen)
    ab = scheduler().alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = ab.sqrt() * batch["real"] + (1 - ab).sqrt() * noise
    with torch.no_grad():
        pred = unet(noisy, t, encoder_hidden_states=batch["real_encoder_hidden_states"]).sample
    real = (pred - noise).pow(2).flatten(1).mean(1).mean()
    assert torch.allclose(total, base + 0.5 * real, atol=1e-6)
    with pytest.raises(ValueError, match="real_weight must be >= 0"):
        DiffusionPreferenceModule(unet, scheduler(), real_weight=-1.0)


def test_a_video_transformer_is_called_by_keyword_in_both_diffusion_modules():
    """CogVideoX's transformer takes (hidden_states, encoder_hidden_states, timestep): not the UNet's order."""
    from diffusers import CogVideoXTransformer3DModel

    from shared.modules.diffusion import denoiser_input
    from shared.modules.diffusion_sft import DiffusionSFTModule

    torch.manual_seed(0)
    model = CogVideoXTransformer3DModel(num_attention_heads=2, attention_head_dim=8, in_channels=3, out_channels=3,
                                        time_embed_dim=16, text_embed_dim=D, num_layers=1, sample_width=8,
                                        sample_height=8, sample_frames=4, patch_size=4, temporal_compression_ratio=1,
                                        max_text_seq_length=S)
    assert denoiser_input(model) == "hidden_states" and denoiser_input(tiny_unet()) == "sample"
    g = torch.Generator().manual_seed(0)
    videos = torch.randn(4, 4, 3, 8, 8, generator=g)  # (B, F, C, H, W)
    cond = torch.randn(4, S, D, generator=g)
    module = DiffusionPreferenceModule(model, scheduler("v_prediction"), loss="diffusion_dpo")
    out = module.errors({"chosen": videos[:2], "rejected": videos[2:], "encoder_hidden_states": cond[:2]})
    assert torch.allclose(out.policy_chosen, out.ref_chosen)  # the frozen copy starts equal to the policy
    sft = DiffusionSFTModule(model, scheduler("v_prediction"), condition_dropout=0.0)
    loss = sft._step({"samples": videos, "encoder_hidden_states": cond}, "train", 0)
    loss.backward()
    assert loss.isfinite() and next(model.parameters()).grad is not None
