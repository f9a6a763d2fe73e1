"""Stand-in `self` objects that let TRL 1.16.0's own loss code run on plain tensors.

TRL has no standalone loss functions: its maths lives inside trainer methods. These stand-ins
carry only the attributes those methods read, and a fake model whose forward returns given
per-token log-probs, so the numbers come from TRL's code unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import torch


class FakeAccelerator:
    device = torch.device("cpu")
    num_processes = 1
    sync_gradients = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x

    def unwrap_model(self, model):
        return model


class FixedLogpsModel:
    """A 'model' whose forward returns the given per-token log-probs, in TRL's fused-head output form."""

    def __init__(self, per_token_logps: torch.Tensor):
        self.per_token_logps = per_token_logps
        self.training = True

    def __call__(self, **kwargs):
        shape = self.per_token_logps.shape
        return SimpleNamespace(
            log_probs=self.per_token_logps,
            entropy=torch.zeros(shape),
            mean_logits=torch.zeros(shape),
            is_top1=torch.zeros(shape, dtype=torch.bool),
        )


def _base(**attrs):
    stub = SimpleNamespace(
        accelerator=FakeAccelerator(),
        aux_loss_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        _total_train_tokens=0,
        _tp_size=1,
    )
    for key, value in attrs.items():
        setattr(stub, key, value)
    return stub


def dpo_stub(loss_type: str, beta: float, label_smoothing: float = 0.0, discopop_tau: float = 0.05):
    """Return a stand-in DPOTrainer with reference log-probs precomputed (fed through the inputs)."""
    return _base(
        precompute_ref_logps=True,
        ld_alpha=None,
        f_divergence_type="reverse_kl",
        loss_types=[loss_type],
        loss_weights=[1.0],
        beta=beta,
        label_smoothing=label_smoothing,
        use_weighting=False,
        args=SimpleNamespace(discopop_tau=discopop_tau, gradient_checkpointing_kwargs=None),
    )


def kto_stub(beta: float, desirable_weight: float, undesirable_weight: float, kl_logps: torch.Tensor,
             loss_type: str = "kto"):
    """Return a stand-in KTOTrainer whose mismatched-pair (KL) log-probs are `kl_logps`."""
    stub = _base(
        precompute_ref_logps=True,
        calculate_KL=True,
        loss_type=loss_type,
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        args=SimpleNamespace(gradient_checkpointing_kwargs=None),
    )
    stub._compute_kl_logps = lambda model, batch: kl_logps
    return stub


def cpo_stub(loss_type: str, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5):
    """Return a stand-in CPOTrainer for `cpo_loss`."""
    return _base(alpha=0.0, loss_type=loss_type, beta=beta, label_smoothing=label_smoothing, simpo_gamma=simpo_gamma)


def orpo_stub(beta: float):
    """Return a stand-in ORPOTrainer for `odds_ratio_loss`."""
    return _base(beta=beta)


def grpo_stub(loss_type: str, per_token_logps: torch.Tensor, *, beta: float, epsilon_low: float, epsilon_high: float,
              importance_sampling_level: str = "token", max_completion_length: int = 0):
    """Return a stand-in GRPOTrainer whose policy forward yields `per_token_logps`."""
    stub = _base(
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=importance_sampling_level,
        beta=beta,
        loss_type=loss_type,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        use_vllm=False,
        vllm_importance_sampling_correction=False,
        current_gradient_accumulation_steps=1,
        max_completion_length=max_completion_length,
        _entropy_bonus_enabled=False,
        model=SimpleNamespace(training=True),
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
    )
    stub._get_per_token_logps_and_entropies = lambda *a, **k: (per_token_logps, torch.zeros_like(per_token_logps), None)
    return stub


def rloo_stub(*, num_generations: int, beta: float, epsilon_low: float = 0.2, epsilon_high: float = 0.2,
              normalize_advantages: bool = False, reward_clip_range=None, rewards: torch.Tensor | None = None,
              old_per_token_logps: torch.Tensor | None = None, ref_per_token_logps: torch.Tensor | None = None,
              per_token_logps: torch.Tensor | None = None, completion_lengths: list[int] | None = None):
    """Return a stand-in RLOOTrainer for `_generate_and_score_completions` and `_compute_loss`.

    Generation yields completions of `completion_lengths` tokens (right-padded, so the completion
    mask is a prefix of ones); the one reward function returns `rewards` (NaN = unscorable, as TRL
    maps a reward function's None); the forward pass yields `old_per_token_logps` for `stub.model`
    (the sampling policy), `ref_per_token_logps` for `stub.ref_model`, and `per_token_logps` for
    `stub.policy`, the model passed to `_compute_loss`.
    """
    model = SimpleNamespace(training=True, is_gradient_checkpointing=False)
    ref_model = SimpleNamespace(training=False, is_gradient_checkpointing=False)
    policy = SimpleNamespace(training=True, is_gradient_checkpointing=False)
    stub = _base(
        model=model, ref_model=ref_model, policy=policy,
        beta=beta, epsilon_low=epsilon_low, epsilon_high=epsilon_high,
        num_generations=num_generations, num_generations_eval=num_generations,
        normalize_advantages=normalize_advantages, reward_clip_range=reward_clip_range,
        reward_weights=torch.ones(1), reward_func_names=["reward"],
        mask_truncated_completions=False, pad_to_multiple_of=None, log_multimodal=False,
        _tokenizer=SimpleNamespace(pad_token_id=0),
        _logs={"prompt": [], "completion": [], "advantages": [], "rewards": defaultdict(list),
               "extra": defaultdict(list), "images": []},
        _pending_extra_logs=defaultdict(list), _pending_metrics=defaultdict(list),
        args=SimpleNamespace(per_device_train_batch_size=len(completion_lengths or []),
                             per_device_eval_batch_size=len(completion_lengths or []),
                             gradient_checkpointing_kwargs=None),
    )
    stub.accelerator.process_index = 0
    by_model = {id(model): old_per_token_logps, id(ref_model): ref_per_token_logps, id(policy): per_token_logps}
    stub._get_per_token_logps_and_entropies = lambda m, *a, **k: (
        by_model[id(m)], torch.zeros_like(by_model[id(m)]), None)
    stub._generate = lambda prompts: (
        [[1, 2, 3] for _ in prompts],
        [[5] * n for n in completion_lengths],
        [f"completion {i}" for i in range(len(prompts))],
    )
    stub._calculate_rewards = lambda inputs, prompts, completions, ids: rewards.clone().unsqueeze(1)
    return stub
