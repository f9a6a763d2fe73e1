"""Numeric parity of our losses with TRL 1.16.0's own code, at 1e-5, on random tensors.

Each case builds per-token log-probs with variable completion lengths, runs TRL's trainer method
on a stand-in `self` (tests/trl_standins.py), and compares with our registered loss.
"""

from __future__ import annotations

import pytest
import torch

trl = pytest.importorskip("trl")
assert trl.__version__ == "1.16.0", f"parity tests pin TRL 1.16.0, found {trl.__version__}"

from trl.experimental.cpo.cpo_trainer import CPOTrainer  # noqa: E402
from trl.experimental.orpo.orpo_trainer import ORPOTrainer  # noqa: E402
from trl.trainer.dpo_trainer import DPOTrainer  # noqa: E402
from trl.trainer.grpo_trainer import GRPOTrainer  # noqa: E402
from trl.trainer.kto_trainer import KTOTrainer  # noqa: E402
from trl.trainer.rloo_trainer import RLOOTrainer  # noqa: E402

from shared.losses import GroupTerms, PairTerms, UnpairedTerms, get_loss, rloo_advantages, sequence_kl  # noqa: E402
from tests.trl_standins import (  # noqa: E402
    FixedLogpsModel,
    cpo_stub,
    dpo_stub,
    grpo_stub,
    kto_stub,
    orpo_stub,
    rloo_stub,
)

ATOL = 1e-5
BATCH, SEQ = 6, 24


def _completion_mask(batch: int, seq: int, gen: torch.Generator) -> torch.Tensor:
    """Prompts of 1-8 tokens, then completions of varying length, then right padding."""
    mask = torch.zeros(batch, seq, dtype=torch.long)
    for i in range(batch):
        start = int(torch.randint(1, 8, (1,), generator=gen))
        end = int(torch.randint(start + 1, seq + 1, (1,), generator=gen))
        mask[i, start:end] = 1
    return mask


def _per_token(mask: torch.Tensor, gen: torch.Generator, scale: float = 1.5) -> torch.Tensor:
    shift = mask[:, 1:].float()
    return -(torch.rand(mask.size(0), mask.size(1) - 1, generator=gen) * scale + 0.01) * shift


def _dpo_case(seed: int):
    gen = torch.Generator().manual_seed(seed)
    mask = _completion_mask(2 * BATCH, SEQ, gen)
    per_token = _per_token(mask, gen)
    ref_per_token = per_token + 0.3 * torch.randn(per_token.shape, generator=gen) * mask[:, 1:]
    ref = ref_per_token.sum(1)
    inputs = {
        "input_ids": torch.zeros_like(mask),
        "attention_mask": torch.ones_like(mask),
        "completion_mask": mask,
        "ref_chosen_logps": ref[:BATCH],
        "ref_rejected_logps": ref[BATCH:],
    }
    logps = per_token.sum(1)
    lengths = mask.sum(1)
    terms = PairTerms(
        chosen_logps=logps[:BATCH], rejected_logps=logps[BATCH:],
        ref_chosen_logps=ref[:BATCH], ref_rejected_logps=ref[BATCH:],
        chosen_lengths=lengths[:BATCH], rejected_lengths=lengths[BATCH:],
    )
    return per_token, inputs, terms


DPO_CASES = [
    ("sigmoid", "sigmoid", {"beta": 0.1}, {}),
    ("sigmoid", "sigmoid", {"beta": 0.5}, {}),
    ("hinge", "hinge", {"beta": 0.3}, {}),
    ("ipo", "ipo", {"beta": 0.1}, {}),
    ("ipo", "ipo", {"beta": 0.7}, {}),
    ("exo_pair", "exo_pair", {"beta": 0.2, "label_smoothing": 1e-3}, {"label_smoothing": 1e-3}),
    ("nca_pair", "nca_pair", {"beta": 0.1}, {}),
    ("robust", "robust", {"beta": 0.1, "label_smoothing": 0.2}, {"label_smoothing": 0.2}),
    ("bco_pair", "bco_pair", {"beta": 0.1}, {}),
    ("sppo_hard", "sppo_hard", {"beta": 0.1}, {}),
    ("aot", "aot", {"beta": 0.1, "label_smoothing": 0.1}, {"label_smoothing": 0.1}),
    ("aot_unpaired", "aot_unpaired", {"beta": 0.1}, {}),
    ("apo_zero", "apo_zero", {"beta": 0.1}, {}),
    ("apo_down", "apo_down", {"beta": 0.1}, {}),
    ("discopop", "discopop", {"beta": 0.1, "tau": 0.05}, {"discopop_tau": 0.05}),
    ("sigmoid_norm", "sigmoid_norm", {"beta": 0.1}, {}),
]


@pytest.mark.parametrize("ours,trl_name,hparams,stub_extra", DPO_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(DPO_CASES)])
@pytest.mark.parametrize("seed", [0, 1])
def test_dpo_family_matches_trl(ours, trl_name, hparams, stub_extra, seed):
    per_token, inputs, terms = _dpo_case(seed)
    stub = dpo_stub(trl_name, beta=hparams["beta"], **stub_extra)
    stub.model = FixedLogpsModel(per_token)
    expected = DPOTrainer._compute_loss(stub, stub.model, inputs, return_outputs=False)
    out = get_loss(ours)(terms, **hparams)
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
    # TRL's logged implicit rewards are ours too.
    assert out.chosen_rewards.mean().item() == pytest.approx(stub._metrics["train"]["rewards/chosen"][0], abs=ATOL)
    assert out.rejected_rewards.mean().item() == pytest.approx(stub._metrics["train"]["rewards/rejected"][0], abs=ATOL)


def test_sft_term_matches_trl():
    per_token, inputs, terms = _dpo_case(3)
    stub = dpo_stub("sft", beta=0.1)
    stub.model = FixedLogpsModel(per_token)
    expected = DPOTrainer._compute_loss(stub, stub.model, inputs, return_outputs=False)
    chosen_mask = inputs["completion_mask"][:BATCH, 1:].bool()
    nll = -per_token[:BATCH][chosen_mask].mean()  # token mean over the batch's chosen completions
    out = get_loss("sft")(PairTerms(**{**terms.__dict__, "chosen_nll": nll}))
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("loss_type,ours", [("kto", "kto"), ("apo_zero_unpaired", "apo_zero_unpaired")])
@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.33, 0.7)])
def test_kto_matches_trl(loss_type, ours, weights):
    gen = torch.Generator().manual_seed(7)
    n = 9
    mask = _completion_mask(n, SEQ, gen)
    per_token = _per_token(mask, gen)
    logps = per_token.sum(1)
    ref = logps + torch.randn(n, generator=gen)
    labels = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0, 1])
    kl_logps = -torch.rand(n, generator=gen) * 20 + 2.0
    ref_kl_logps = kl_logps - torch.rand(n, generator=gen) * 3  # mean KL estimate > 0, so the clamp is inactive
    batch = {
        "input_ids": torch.zeros_like(mask), "attention_mask": torch.ones_like(mask), "completion_mask": mask,
        "label": labels, "ref_logps": ref, "ref_KL_logps": ref_kl_logps,
    }
    stub = kto_stub(0.2, *weights, kl_logps=kl_logps, loss_type=loss_type)
    stub.model = FixedLogpsModel(per_token)
    expected = KTOTrainer._compute_loss(stub, stub.model, batch, return_outputs=False)
    terms = UnpairedTerms(logps=logps, ref_logps=ref, desirable=labels.bool(), kl_logps=kl_logps, ref_kl_logps=ref_kl_logps)
    extra = {} if ours == "apo_zero_unpaired" else {"reference_point": "mismatched"}
    out = get_loss(ours)(terms, beta=0.2, desirable_weight=weights[0], undesirable_weight=weights[1], **extra)
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
    if ours == "kto":
        assert out.metrics["kl"].item() == pytest.approx(stub._metrics["train"]["kl"][0], abs=ATOL)


def test_kto_reference_point_clamped_like_trl():
    """A negative KL estimate is clamped to 0 in both."""
    gen = torch.Generator().manual_seed(8)
    mask = _completion_mask(4, SEQ, gen)
    per_token = _per_token(mask, gen)
    logps = per_token.sum(1)
    ref = logps - 0.5
    kl_logps, ref_kl_logps = torch.full((4,), -5.0), torch.full((4,), -2.0)
    labels = torch.tensor([1, 0, 1, 0])
    batch = {"input_ids": torch.zeros_like(mask), "attention_mask": torch.ones_like(mask), "completion_mask": mask,
             "label": labels, "ref_logps": ref, "ref_KL_logps": ref_kl_logps}
    stub = kto_stub(0.1, 1.0, 1.0, kl_logps=kl_logps)
    stub.model = FixedLogpsModel(per_token)
    expected = KTOTrainer._compute_loss(stub, stub.model, batch, return_outputs=False)
    out = get_loss("kto")(UnpairedTerms(logps, ref, labels.bool(), kl_logps, ref_kl_logps), beta=0.1)
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
    assert out.metrics["kl"].item() == 0.0


def _avg_case(seed: int):
    gen = torch.Generator().manual_seed(seed)
    lengths_w = torch.randint(1, 40, (BATCH,), generator=gen)
    lengths_l = torch.randint(1, 40, (BATCH,), generator=gen)
    avg_w = -torch.rand(BATCH, generator=gen) * 2 - 0.05
    avg_l = -torch.rand(BATCH, generator=gen) * 2 - 0.05
    terms = PairTerms(chosen_logps=avg_w * lengths_w, rejected_logps=avg_l * lengths_l,
                      chosen_lengths=lengths_w, rejected_lengths=lengths_l)
    return avg_w, avg_l, terms


@pytest.mark.parametrize("beta,gamma,smoothing", [(2.0, 0.5, 0.0), (2.5, 1.2, 0.1)])
def test_simpo_matches_trl_cpo(beta, gamma, smoothing):
    avg_w, avg_l, terms = _avg_case(11)
    stub = cpo_stub("simpo", beta=beta, label_smoothing=smoothing, simpo_gamma=gamma)
    losses, chosen_rewards, rejected_rewards = CPOTrainer.cpo_loss(stub, avg_w, avg_l)
    out = get_loss("simpo")(terms, beta=beta, gamma=gamma, label_smoothing=smoothing)
    torch.testing.assert_close(out.losses, losses, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.loss, losses.mean(), atol=ATOL, rtol=0)
    torch.testing.assert_close(out.chosen_rewards, chosen_rewards, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.rejected_rewards, rejected_rewards, atol=ATOL, rtol=0)


def test_cdpo_matches_trl_cpo_label_smoothing():
    _, inputs, terms = _dpo_case(5)
    rho_w, rho_l = terms.logratios("cdpo")
    stub = cpo_stub("sigmoid", beta=0.1, label_smoothing=0.15)
    losses, _, _ = CPOTrainer.cpo_loss(stub, rho_w, rho_l)  # CPO's logits = its inputs' difference
    out = get_loss("cdpo")(terms, beta=0.1, label_smoothing=0.15)
    torch.testing.assert_close(out.losses, losses, atol=ATOL, rtol=0)


@pytest.mark.parametrize("beta", [0.1, 0.25])
def test_orpo_matches_trl(beta):
    avg_w, avg_l, terms = _avg_case(13)
    nll = torch.tensor(1.234)
    stub = orpo_stub(beta)
    losses, chosen_rewards, rejected_rewards, ratio_mean, log_odds_mean = ORPOTrainer.odds_ratio_loss(stub, avg_w, avg_l)
    expected = nll - losses.mean()  # ORPOTrainer.get_batch_loss_metrics
    out = get_loss("orpo")(PairTerms(**{**terms.__dict__, "chosen_nll": nll}), beta=beta)
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.chosen_rewards, chosen_rewards, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.metrics["log_odds_ratio"], ratio_mean, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.metrics["log_odds_chosen"], log_odds_mean, atol=ATOL, rtol=0)


GRPO_CASES = [
    ("grpo", {"beta": 0.0, "epsilon_low": 0.2, "epsilon_high": 0.2}, "token"),
    ("grpo", {"beta": 0.04, "epsilon_low": 0.2, "epsilon_high": 0.2}, "token"),
    ("grpo", {"beta": 0.04, "epsilon_low": 0.2, "epsilon_high": 0.2}, "sequence"),
    ("bnpo", {"beta": 0.04, "epsilon_low": 0.2, "epsilon_high": 0.2}, "token"),
    ("dr_grpo", {"beta": 0.04, "epsilon_low": 0.2, "epsilon_high": 0.2}, "token"),
    ("dapo", {"beta": 0.0, "epsilon_low": 0.2, "epsilon_high": 0.28}, "token"),
    ("dapo", {"beta": 0.04, "epsilon_low": 0.2, "epsilon_high": 0.28}, "token"),
]


@pytest.mark.parametrize("loss_type,hparams,level", GRPO_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(GRPO_CASES)])
def test_grpo_family_matches_trl(loss_type, hparams, level):
    gen = torch.Generator().manual_seed(21)
    b, t = 8, 12
    mask = torch.zeros(b, t)
    for i in range(b):
        mask[i, : int(torch.randint(1, t + 1, (1,), generator=gen))] = 1
    logps = -torch.rand(b, t, generator=gen) * 3
    old = logps + 0.4 * torch.randn(b, t, generator=gen)  # off-policy, so clipping is exercised
    ref = logps + 0.3 * torch.randn(b, t, generator=gen)
    advantages = torch.randn(b, generator=gen)
    num_items = mask.sum()
    inputs = {
        "prompt_ids": torch.zeros(b, 3, dtype=torch.long), "prompt_mask": torch.ones(b, 3, dtype=torch.long),
        "completion_ids": torch.zeros(b, t, dtype=torch.long), "completion_mask": mask,
        "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref, "num_items_in_batch": num_items,
    }
    stub = grpo_stub(loss_type, logps, importance_sampling_level=level, max_completion_length=t, **hparams)
    expected = GRPOTrainer._compute_loss(stub, None, inputs)
    terms = GroupTerms(logps=logps, advantages=advantages, mask=mask, old_logps=old, ref_logps=ref, num_items=num_items)
    extra = {"max_completion_length": t} if loss_type == "dr_grpo" else {}
    out = get_loss(loss_type)(terms, importance_sampling=level, **hparams, **extra)
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
    if hparams["beta"]:
        assert out.metrics["kl"].item() == pytest.approx(stub._metrics["train"]["kl"][0], abs=ATOL)
    assert out.metrics["clip_ratio/region_mean"].item() == pytest.approx(
        stub._metrics["train"]["clip_ratio/region_mean"][0], abs=ATOL)


def test_group_advantages_std_convention_matches_trl_nanstd():
    from trl.trainer.utils import nanstd

    from shared.losses import group_advantages

    rewards = torch.tensor([1.0, 0.0, 0.5, 2.0, 3.0, 3.0, 1.0, float("nan")])
    grouped = rewards.view(-1, 4)
    expected = (grouped - torch.nanmean(grouped, 1, keepdim=True)) / (nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    expected = torch.nan_to_num(expected.view(-1), nan=0.0)
    torch.testing.assert_close(group_advantages(rewards, 4), expected, atol=ATOL, rtol=0)


NAN = float("nan")
# (beta, normalize_advantages, reward_clip_range, epsilon_high, rewards): TRL's RLOO has one
# importance-sampling level (the ratio of summed sequence log-probs), so no level axis here.
RLOO_CASES = [
    (0.0, False, None, 0.2, "plain"),
    (0.05, False, None, 0.2, "plain"),  # RLOOConfig's default beta
    (0.3, False, None, 0.28, "plain"),
    (0.0, True, None, 0.2, "plain"),
    (0.05, True, None, 0.2, "nan"),
    (0.05, False, (-1.0, 1.0), 0.2, "nan"),
    (0.0, False, None, 0.2, "nan"),
]


@pytest.mark.parametrize("beta,normalize,clip,eps_high,reward_kind", RLOO_CASES,
                         ids=[f"beta{c[0]}-norm{int(c[1])}-clip{int(c[2] is not None)}-{c[4]}" for c in RLOO_CASES])
def test_rloo_matches_trl(beta, normalize, clip, eps_high, reward_kind):
    """TRL's RLOOTrainer end to end on fixed tensors: `_generate_and_score_completions` (rewards, KL
    penalty in the reward, leave-one-out advantages, normalisation) against `rloo_advantages`, then
    `_compute_loss` on those advantages against the registered `rloo` loss."""
    gen = torch.Generator().manual_seed(31)
    b, g, t = 12, 4, 10
    lengths = [int(torch.randint(1, t + 1, (1,), generator=gen)) for _ in range(b)]
    lengths[3] = t
    mask = torch.zeros(b, t)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1  # TRL right-pads completions, so its mask is a prefix of ones
    logps = -torch.rand(b, t, generator=gen) * 2
    old = logps + 0.1 * torch.randn(b, t, generator=gen)  # off-policy, so some sequence ratios clip
    ref = logps + 0.2 * torch.randn(b, t, generator=gen)
    rewards = torch.randn(b, generator=gen) * 2
    if reward_kind == "nan":
        rewards[1] = NAN  # one unscorable completion in group 0
        rewards[8:11] = NAN  # group 2 has a single scorable completion
    stub = rloo_stub(num_generations=g, beta=beta, epsilon_low=0.2, epsilon_high=eps_high,
                     normalize_advantages=normalize, reward_clip_range=clip, rewards=rewards,
                     old_per_token_logps=old, ref_per_token_logps=ref, per_token_logps=logps,
                     completion_lengths=lengths)
    batch = RLOOTrainer._generate_and_score_completions(stub, [{"prompt": f"p{i // g}"} for i in range(b)])
    torch.testing.assert_close(batch["completion_mask"].float(), mask)
    kl = sequence_kl(old, ref, mask)
    advantages = rloo_advantages(rewards, g, kl=kl, beta=beta, normalize=normalize, reward_clip=clip)
    torch.testing.assert_close(advantages, batch["advantages"], atol=ATOL, rtol=0)
    if beta:
        assert (kl.sum() / mask.sum()).item() == pytest.approx(stub._metrics["train"]["kl"][0], abs=ATOL)

    expected = RLOOTrainer._compute_loss(stub, stub.policy, batch)
    terms = GroupTerms(logps=logps, advantages=advantages, mask=mask, old_logps=old, ref_logps=ref)
    out = get_loss("rloo")(terms, epsilon_low=0.2, epsilon_high=eps_high)
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
    for name in ("low_mean", "high_mean", "region_mean"):
        assert out.metrics[f"clip_ratio/{name}"].item() == pytest.approx(
            stub._metrics["train"][f"clip_ratio/{name}"][0], abs=ATOL)
    if not normalize and reward_kind == "plain":
        assert stub._metrics["train"]["clip_ratio/region_mean"][0] > 0  # the clip branch is exercised


def test_rloo_loss_matches_trl_on_random_advantages():
    """`_compute_loss` alone, on the same per-token log-probs, old log-probs, mask and advantages."""
    gen = torch.Generator().manual_seed(32)
    b, t = 8, 12
    lengths = [int(torch.randint(1, t + 1, (1,), generator=gen)) for _ in range(b)]
    lengths[0] = t
    mask = torch.zeros(b, t)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    logps = -torch.rand(b, t, generator=gen) * 3
    old = logps + 0.1 * torch.randn(b, t, generator=gen)
    advantages = torch.randn(b, generator=gen)
    stub = rloo_stub(num_generations=4, beta=0.0, per_token_logps=logps, completion_lengths=lengths)
    inputs = {"prompt_ids": torch.zeros(b, 3, dtype=torch.long), "prompt_mask": torch.ones(b, 3, dtype=torch.long),
              "completion_ids": torch.zeros(b, t, dtype=torch.long), "completion_mask": mask.long(),
              "old_logps": (old * mask).sum(1), "advantages": advantages}
    expected = RLOOTrainer._compute_loss(stub, stub.policy, inputs)
    out = get_loss("rloo")(GroupTerms(logps=logps, advantages=advantages, mask=mask, old_logps=old))
    torch.testing.assert_close(out.loss, expected, atol=ATOL, rtol=0)
