"""Offline preference training (DPO family) as a LightningModule: pairs in, any registered pairwise loss."""

from __future__ import annotations

import inspect

import torch
from torch import Tensor

from shared.logprobs import sequence_logps
from shared.losses import ListTerms, PairTerms, UnpairedTerms, get_loss
from shared.modules.base import StepModule
from shared.modules.reference import Reference


class PreferenceModule(StepModule):
    """Train a policy on pairs (PreferenceCollator) or ranked lists (RankedListCollator) with any registered
    pairwise, strength-aware, listwise or unpaired loss.

    An unpaired loss (KTO) reads each pair as two labelled samples, chosen desirable and rejected
    undesirable, as TRL's `unpair_preference_dataset` does. Its reference point must come from the
    batch itself (`reference_point="batch"` or "zero"): mismatched-completion KL batches are not built.
    `rpo_alpha` > 0 adds RPO's term (Pang et al. 2024; TRL's `rpo_alpha`): alpha times the token-mean
    NLL of the chosen completions, which keeps the chosen likely while the pair's margin grows.

    One forward scores every sequence of the batch together (packed by default). Logs TRL's metric names:
    loss, rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
    logps/rejected, under train/ and val/ prefixes.
    """

    def __init__(self, policy: torch.nn.Module, reference: Reference | None, *, loss: str = "sigmoid",
                 loss_kwargs: dict | None = None, lr: float = 5e-6, weight_decay: float = 0.0, rpo_alpha: float = 0.0):
        super().__init__()
        self.policy = policy
        self.reference = reference
        self.loss_spec = get_loss(loss)
        if self.loss_spec.family not in ("pairwise", "strength", "listwise", "unpaired"):
            raise ValueError(f"loss '{loss}' is a {self.loss_spec.family} loss; PreferenceModule trains pairwise, "
                             "strength-aware, listwise and unpaired losses")
        self.loss_kwargs = dict(loss_kwargs or {})
        if "reference_point" in inspect.signature(self.loss_spec.fn).parameters:
            self.loss_kwargs.setdefault("reference_point", "batch")
            if self.loss_kwargs["reference_point"] == "mismatched":
                raise ValueError(f"loss '{loss}': PreferenceModule does not build mismatched KL batches; "
                                 "use reference_point='batch' or 'zero'")
        if rpo_alpha and self.loss_spec.family not in ("pairwise", "strength"):
            raise ValueError(f"rpo_alpha: the chosen NLL term needs pairs; loss '{loss}' is {self.loss_spec.family}")
        self.lr, self.weight_decay, self.rpo_alpha = lr, weight_decay, rpo_alpha
        self.last_aux_loss: Tensor | None = None
        self.save_hyperparameters(ignore=["policy", "reference"])

    def terms(self, batch: dict[str, Tensor]) -> PairTerms | ListTerms:
        """Return the loss terms of a batch: policy and reference log-probs, lengths, chosen NLL."""
        scored = sequence_logps(self.policy, batch)
        self.last_aux_loss = scored.aux_loss
        ref = None if self.reference is None else self.reference.logps(self.policy, batch)
        if "list_index" in batch:
            if ref is None:
                raise ValueError("listwise losses need a reference")
            index = batch["list_index"]
            valid = index >= 0
            gather = lambda x: torch.where(valid, x[index.clamp(min=0)], torch.zeros_like(index, dtype=x.dtype))  # noqa: E731
            return ListTerms(logps=gather(scored.logps), ref_logps=gather(ref), mask=valid, scores=batch["list_scores"])
        n = int(batch["num_pairs"])
        lengths = scored.lengths
        chosen_nll = -scored.logps[:n].sum() / lengths[:n].sum().clamp(min=1)  # token mean, as TRL's `sft` term
        return PairTerms(
            chosen_logps=scored.logps[:n], rejected_logps=scored.logps[n:],
            ref_chosen_logps=None if ref is None else ref[:n], ref_rejected_logps=None if ref is None else ref[n:],
            chosen_lengths=lengths[:n], rejected_lengths=lengths[n:], chosen_nll=chosen_nll,
            strength=batch.get("strength"), weight=batch.get("weight"), margin=batch.get("margin"),
        )

    def _step(self, batch: dict[str, Tensor], stage: str, batch_idx: int = 0) -> Tensor:
        terms = self.terms(batch)
        out = self.loss_spec(self._unpaired(terms) if self.loss_spec.family == "unpaired" else terms, **self.loss_kwargs)
        if isinstance(terms, ListTerms):
            n, chosen_logps = terms.logps.size(0), terms.logps[:, 0]
            last = terms.valid().long().cumsum(1).argmax(1)
            rejected_logps = terms.logps.gather(1, last[:, None]).squeeze(1)
        else:
            n, chosen_logps, rejected_logps = terms.chosen_logps.numel(), terms.chosen_logps, terms.rejected_logps
        loss = out.loss
        metrics = {"logps/chosen": chosen_logps.detach().mean(), "logps/rejected": rejected_logps.detach().mean()}
        if self.rpo_alpha:  # RPO (Pang et al. 2024), TRL's rpo_alpha: + alpha * token-mean NLL of the chosen
            loss = loss + self.rpo_alpha * terms.chosen_nll.mean()
            metrics["nll/chosen"] = terms.chosen_nll.detach().mean()
        if self.last_aux_loss is not None:  # a mixture-of-experts policy's load-balancing loss
            loss = loss + self.last_aux_loss
            metrics["aux_loss"] = self.last_aux_loss.detach()
        metrics["loss"] = loss.detach()
        if out.chosen_rewards is not None:
            metrics.update({
                "rewards/chosen": out.chosen_rewards.mean(), "rewards/rejected": out.rejected_rewards.mean(),
                "rewards/accuracies": (out.chosen_rewards > out.rejected_rewards).float().mean(),
                "rewards/margins": (out.chosen_rewards - out.rejected_rewards).mean(),
            })
        metrics.update(out.metrics)

        self.log_metrics(metrics, stage, batch_size=n)
        return loss


    @staticmethod
    def _unpaired(terms: PairTerms) -> UnpairedTerms:
        """Return a pair batch as labelled samples: chosen desirable, rejected undesirable."""
        if terms.ref_chosen_logps is None:
            raise ValueError("unpaired losses need a reference")
        n = terms.chosen_logps.numel()
        desirable = torch.cat([torch.ones(n), torch.zeros(n)]).to(terms.chosen_logps.device)
        return UnpairedTerms(logps=torch.cat([terms.chosen_logps, terms.rejected_logps]),
                             ref_logps=torch.cat([terms.ref_chosen_logps, terms.ref_rejected_logps]),
                             desirable=desirable)
