"""Online group RL (GRPO family, RLOO) as a LightningModule: sample a group per prompt, score, advantages, clipped loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from shared.group_sampling import generate_groups
from shared.logprobs import collate_packed, collate_prefix_groups, token_logps
from shared.losses import GroupTerms, LossOutput, get_loss, group_advantages, rloo_advantages, sequence_kl
from shared.modules.base import StepModule
from shared.modules.data import encode_prompt
from shared.rewards import Reward


class GroupRLModule(StepModule):
    """GRPO-style online training on batches of prompts (a DataLoader with collate_fn=list).

    Each step: sample `group_size` completions per prompt with the current policy, score them with
    `reward` (aspect `reward_aspect`; invalid outputs get the reward's invalid score), compute
    group advantages, and minimise a registered group loss (grpo, bnpo, dr_grpo, dapo) with an
    optional k3 KL to the reference (loss_kwargs beta > 0 needs a reference). One policy update
    per generation, so the sampling policy is the current one (old_logps = logps.detach()).
    With loss "rloo" the advantages are `rloo_advantages` (leave-one-out baseline) instead, and,
    as in TRL's RLOOTrainer, loss_kwargs' beta is not a loss term but a reward penalty
    R - beta * sum_t (logp_old - logp_ref) taken before the baseline; loss_kwargs'
    normalize_advantages (default False) standardises the advantages over the batch.
    Each prompt is computed once per group, not once per sample: in sampling (one prefill, its KV
    cache repeated for the group's rows: `generate_groups`) and in the loss forward (layout
    "shared_prefix": blocks [prompt | c_1 | ... | c_G], `collate_prefix_groups`); layout "packed"
    packs each (prompt, completion) on its own, and "auto" (default) uses shared_prefix up to
    `shared_prefix_max_tokens` per block (its 4D mask costs rows x T^2; GPU users with
    flash-attention set "packed").
    A batch item is a prompt (text or chat messages) or a dict {"prompt": ..., "context": {...}}
    whose context reaches the reward with each of the prompt's completions (e.g. a task id).
    The last step's samples and rewards are kept in `last_samples` for logging or writing.
    """

    def __init__(self, policy: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, reward: Reward, reference=None, *,
                 loss: str = "grpo", loss_kwargs: dict | None = None, group_size: int = 4, max_new_tokens: int = 64,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0, advantage_scale: str = "group",
                 reward_aspect: str = "total", lr: float = 1e-6, weight_decay: float = 0.0,
                 layout: str = "auto", shared_prefix_max_tokens: int = 2048, share_prefix_in_sampling: bool = True):
        super().__init__()
        if layout not in ("auto", "shared_prefix", "packed"):
            raise ValueError(f"GroupRLModule: layout '{layout}' is not one of auto, shared_prefix, packed")
        self.layout, self.shared_prefix_max_tokens = layout, shared_prefix_max_tokens
        self.share_prefix_in_sampling = share_prefix_in_sampling
        self.policy, self.tokenizer, self.reward, self.reference = policy, tokenizer, reward, reference
        self.loss_spec = get_loss(loss)
        if self.loss_spec.family != "group":
            raise ValueError(f"loss '{loss}' is a {self.loss_spec.family} loss; GroupRLModule trains group losses")
        self.loss_kwargs = dict(loss_kwargs or {})
        if self.loss_kwargs.get("beta", 0.0) and reference is None:
            raise ValueError("GroupRLModule: a KL penalty (beta > 0) needs a reference")
        # RLOO's beta and normalize_advantages shape the advantages (rloo_advantages), not the loss.
        self.rloo = self.loss_spec.name == "rloo"
        self.kl_beta = self.loss_kwargs.pop("beta", 0.0) if self.rloo else 0.0
        self.normalize_advantages = self.loss_kwargs.pop("normalize_advantages", False) if self.rloo else False
        if self.rloo and advantage_scale != "group":
            raise ValueError("GroupRLModule: loss 'rloo' uses leave-one-out advantages; advantage_scale does not apply")
        self.group_size, self.max_new_tokens = group_size, max_new_tokens
        self.temperature, self.top_p, self.top_k, self.advantage_scale = temperature, top_p, top_k, advantage_scale
        self.reward_aspect, self.lr, self.weight_decay = reward_aspect, lr, weight_decay
        self.last_samples: list[dict] = []
        self.save_hyperparameters(ignore=["policy", "tokenizer", "reward", "reference"])

    @torch.no_grad()
    def sample(self, prompts: Sequence) -> tuple[list[list[int]], list[list[int]], list[str]]:
        """Return (prompt ids, completion ids ending at EOS, completion texts), group_size per prompt, grouped."""
        encoded = [encode_prompt(self.tokenizer, p) for p in prompts]
        width = max(map(len, encoded))
        pad = self.tokenizer.pad_token_id
        was_training = self.policy.training
        self.policy.eval()
        out = generate_groups(self.policy, encoded, self.group_size, pad_id=pad, share_prefix=self.share_prefix_in_sampling,
                              do_sample=True, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                              top_p=self.top_p, top_k=self.top_k)
        self.policy.train(was_training)
        eos = self.tokenizer.eos_token_id
        prompt_ids, completions, texts = [], [], []
        for row, generated in enumerate(out[:, width:].tolist()):
            cut = generated.index(eos) + 1 if eos in generated else len(generated)
            completion = generated[:cut] or [eos]
            prompt_ids.append(encoded[row // self.group_size])
            completions.append(completion)
            texts.append(self.tokenizer.decode(completion, skip_special_tokens=True))
        return prompt_ids, completions, texts

    def _step(self, items: list, stage: str, batch_idx: int = 0) -> Tensor:
        prompts = [i["prompt"] if isinstance(i, dict) else i for i in items]
        contexts = [dict(i.get("context") or {}) if isinstance(i, dict) else {} for i in items]
        prompt_ids, completions, texts = self.sample(prompts)
        repeated = [p for p in prompts for _ in range(self.group_size)]
        scores = self.reward(repeated, texts, [c for c in contexts for _ in range(self.group_size)])
        rewards = torch.tensor([s[self.reward_aspect] for s in scores], dtype=torch.float32, device=self.device)
        out, advantages, mask, extra = self.rollout_loss(prompt_ids, completions, rewards)
        self.last_samples = [{"prompt": p, "completion": t, "reward": r.item(), "advantage": a.item()}
                             for p, t, r, a in zip(repeated, texts, rewards, advantages)]
        metrics = {"loss": out.loss.detach(), "reward/mean": rewards.mean(), "reward/std": rewards.std(),
                   "completions/mean_length": mask.sum(1).float().mean(),
                   "valid_fraction": torch.tensor([s.get("valid", 1.0) for s in scores]).mean(), **extra, **out.metrics}
        self.log_metrics(metrics, stage, batch_size=len(prompts))
        return out.loss

    def collate(self, prompt_ids: Sequence[Sequence[int]], completions: Sequence[Sequence[int]]) -> dict[str, Tensor]:
        """Return the loss forward's batch: shared-prefix blocks per group, or each sequence packed on its own."""
        g, pad = self.group_size, self.tokenizer.pad_token_id
        starts = range(0, len(completions), g)
        groups = [(list(prompt_ids[i]), completions[i:i + g]) for i in starts]
        shareable = all(len(prompt) and all(list(prompt_ids[i + j]) == prompt for j in range(g))
                        for i, (prompt, _) in zip(starts, groups))
        longest = max(len(p) + sum(map(len, c)) for p, c in groups)
        wanted = self.layout == "shared_prefix" or (self.layout == "auto" and longest <= self.shared_prefix_max_tokens)
        if wanted and shareable:
            return collate_prefix_groups(groups, pad_id=pad)
        return collate_packed(list(zip(prompt_ids, completions)), pad_id=pad)

    def rollout_loss(self, prompt_ids: Sequence[Sequence[int]], completions: Sequence[Sequence[int]],
                     rewards: Tensor) -> tuple[LossOutput, Tensor, Tensor, dict]:
        """Return (loss output, advantages, completion mask, extra metrics) for sampled groups and their rewards.

        prompt_ids and completions are laid out group after group (group_size rows per prompt).
        """
        batch = {k: v.to(self.device) for k, v in self.collate(prompt_ids, completions).items()}
        logps, mask = token_logps(self.policy, batch)
        ref = self.reference.token_logps(self.policy, batch) if self.reference is not None else None
        extra = {}
        if self.rloo:
            kl = sequence_kl(logps.detach(), ref, mask) if self.kl_beta else None
            advantages = rloo_advantages(rewards, self.group_size, kl=kl, beta=self.kl_beta,
                                         normalize=self.normalize_advantages)
            if kl is not None:
                extra["kl"] = kl.sum() / mask.sum().clamp(min=1)  # TRL's logged kl: per-token mean
        else:
            advantages = group_advantages(rewards, self.group_size, scale=self.advantage_scale)
        terms = GroupTerms(logps=logps, advantages=advantages, mask=mask, ref_logps=ref)
        return self.loss_spec(terms, **self.loss_kwargs), advantages, mask, extra
