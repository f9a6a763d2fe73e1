"""Hand-computed cases, gradient direction and input checks for every registered loss.

Losses that TRL implements are also checked against TRL in test_losses_trl_parity.py; the ones
TRL lacks are checked here against numbers worked out by hand in each test's docstring.
"""

from __future__ import annotations

import math

import pytest
import torch

from shared.losses import (
    DenoisingErrors,
    DenoisingPairErrors,
    GroupTerms,
    ListTerms,
    LossInputError,
    PairTerms,
    UnpairedTerms,
    combine_losses,
    get_loss,
    group_advantages,
    informative_groups,
    k3_kl,
    list_losses,
    rloo_advantages,
    sequence_kl,
)
from shared.losses.listwise import dcg_pair_weights


def logsig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def pair(rho_w, rho_l, **extra) -> PairTerms:
    """Terms with reference log-probs 0, so rho equals the policy log-probs."""
    w, l = torch.tensor(rho_w, dtype=torch.float64), torch.tensor(rho_l, dtype=torch.float64)
    return PairTerms(chosen_logps=w, rejected_logps=l, ref_chosen_logps=torch.zeros_like(w),
                     ref_rejected_logps=torch.zeros_like(l), **extra)


# ---- strength-aware -------------------------------------------------------------------------

def test_soft_preference_hand_computed():
    """h = 2 - 0 = 2, beta = 0.5: beta h = 1. p = 0.8:
    loss = -(0.8 log sigma(1) + 0.2 log sigma(-1)) = 0.8 * 0.313262 + 0.2 * 1.313262 = 0.513262."""
    out = get_loss("soft_preference")(pair([2.0], [0.0], strength=torch.tensor([0.8], dtype=torch.float64)), beta=0.5)
    assert out.loss.item() == pytest.approx(-(0.8 * logsig(1) + 0.2 * logsig(-1)), abs=1e-9)
    assert out.loss.item() == pytest.approx(0.513262, abs=1e-6)


def test_soft_preference_p1_is_dpo_and_smoothing_is_cdpo():
    terms = pair([1.3, -0.2], [0.4, 0.5], strength=torch.ones(2, dtype=torch.float64))
    dpo = get_loss("sigmoid")(terms, beta=0.3)
    torch.testing.assert_close(get_loss("soft_preference")(terms, beta=0.3).loss, dpo.loss)
    cdpo = get_loss("cdpo")(terms, beta=0.3, label_smoothing=0.1)
    torch.testing.assert_close(get_loss("soft_preference")(terms, beta=0.3, label_smoothing=0.1).loss, cdpo.loss)


def test_soft_preference_half_has_no_gradient():
    """p = 1/2: loss = -(log sigma(z) + log sigma(-z)) / 2, whose derivative (1 - 2 sigma(z)) / 2 ... is
    -(1/2)(1 - sigma(z)) + (1/2) sigma(z) = sigma(z) - 1/2 ... times d z; at any z the p-weighted
    gradient is (sigma(z) - p) = sigma(z) - 1/2, zero only at z = 0. So check the general identity
    d loss / d z = sigma(z) - p."""
    w = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    terms = PairTerms(chosen_logps=w, rejected_logps=torch.zeros(1, dtype=torch.float64),
                      ref_chosen_logps=torch.zeros(1, dtype=torch.float64), ref_rejected_logps=torch.zeros(1, dtype=torch.float64),
                      strength=torch.tensor([0.3], dtype=torch.float64))
    get_loss("soft_preference")(terms, beta=1.0).loss.backward()
    assert w.grad.item() == pytest.approx(torch.sigmoid(torch.tensor(0.7)).item() - 0.3, abs=1e-7)


def test_smoothed_preference_hand_computed():
    """SmPO: p = 0.75, gamma = 1 -> scale 2p - 1 = 0.5; beta h = 0.2 * 4 = 0.8; logit 0.4;
    loss = -log sigma(0.4) = 0.513015. p = 0.5 gives log 2 and no gradient."""
    out = get_loss("smoothed_preference")(pair([4.0], [0.0], strength=torch.tensor([0.75], dtype=torch.float64)), beta=0.2)
    assert out.loss.item() == pytest.approx(-logsig(0.4), abs=1e-9)
    assert out.loss.item() == pytest.approx(0.513015, abs=1e-6)
    w = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    terms = PairTerms(w, torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64),
                      torch.zeros(1, dtype=torch.float64), strength=torch.tensor([0.5], dtype=torch.float64))
    loss = get_loss("smoothed_preference")(terms, beta=0.2).loss
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2))
    assert w.grad.item() == 0.0


# ---- listwise -------------------------------------------------------------------------------

def lists(rho, scores=None, mask=None) -> ListTerms:
    r = torch.tensor(rho, dtype=torch.float64)
    return ListTerms(logps=r, ref_logps=torch.zeros_like(r),
                     scores=None if scores is None else torch.tensor(scores, dtype=torch.float64),
                     mask=None if mask is None else torch.tensor(mask))


def test_plackett_luce_hand_computed():
    """Order (a, b, c) with beta rho = (1, 0, -1), beta = 1:
    -log P = -[(1 - log(e + 1 + e^-1)) + (0 - log(1 + e^-1))] = 0.407606 + 0.313262 = 0.720868."""
    out = get_loss("plackett_luce")(lists([[1.0, 0.0, -1.0]]), beta=1.0)
    expected = -((1 - math.log(math.e + 1 + math.exp(-1))) + (0 - math.log(1 + math.exp(-1))))
    assert out.loss.item() == pytest.approx(expected, abs=1e-9)
    assert out.loss.item() == pytest.approx(0.720868, abs=1e-6)


def test_plackett_luce_two_items_is_dpo_and_mask_ignores_padding():
    pl = get_loss("plackett_luce")(lists([[0.9, -0.4, 123.0]], mask=[[True, True, False]]), beta=0.3)
    dpo = get_loss("sigmoid")(pair([0.9], [-0.4]), beta=0.3)
    torch.testing.assert_close(pl.loss, dpo.loss)
    assert pl.rejected_rewards.item() == pytest.approx(0.3 * -0.4)


def test_rankdpo_hand_computed():
    """Scores (2, 1, 0) -> gains G = (3, 1, 0). Implicit rewards rho = (0, 1, 2) rank the list
    reversed, so tau = (3, 2, 1) and 1/D = 1/log2(1 + tau) = (0.5, 0.630930, 1).
    Delta_ab = |3-1| |0.5-0.630930| = 0.261860; Delta_ac = 3 * 0.5 = 1.5; Delta_bc = 1 * 0.369070.
    With beta = 1: loss = 0.261860 (-log sigma(-1)) + 1.5 (-log sigma(-2)) + 0.369070 (-log sigma(-1))."""
    out = get_loss("rankdpo")(lists([[0.0, 1.0, 2.0]], scores=[[2.0, 1.0, 0.0]]), beta=1.0)
    inv = [1 / math.log2(1 + t) for t in (3, 2, 1)]
    d_ab, d_ac, d_bc = 2 * abs(inv[0] - inv[1]), 3 * abs(inv[0] - inv[2]), 1 * abs(inv[1] - inv[2])
    expected = -(d_ab * logsig(-1) + d_ac * logsig(-2) + d_bc * logsig(-1))
    assert out.loss.item() == pytest.approx(expected, abs=1e-9)
    assert (d_ab, d_ac, d_bc) == pytest.approx((0.261860, 1.5, 0.369070), abs=1e-6)


def test_rankdpo_ties_and_padding_get_no_weight():
    w = dcg_pair_weights(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[0.0, 0.5, 0.2]]),
                         torch.tensor([[True, True, False]]))
    assert w.abs().sum().item() == 0.0  # the only real pair is a tie


def test_tpo_list_hand_computed():
    """Scores (1, 0) -> q = (sigma(1), sigma(-1)) = (0.731059, 0.268941). beta rho = (0, 0) -> p = (1/2, 1/2).
    loss = -(q1 log 1/2 + q2 log 1/2) = log 2."""
    out = get_loss("tpo_list")(lists([[0.0, 0.0]], scores=[[1.0, 0.0]]), beta=1.0)
    assert out.loss.item() == pytest.approx(math.log(2), abs=1e-9)
    out = get_loss("tpo_list")(lists([[2.0, 0.0]], scores=[[1.0, 0.0]]), beta=1.0)
    q1 = 1 / (1 + math.exp(-1))
    expected = -(q1 * logsig(2) + (1 - q1) * logsig(-2))
    assert out.loss.item() == pytest.approx(expected, abs=1e-9)


# ---- diffusion ------------------------------------------------------------------------------

def test_diffusion_dpo_matches_official_formula():
    """Official code: inside = -(beta/2) ((e_pw - e_pl) - (e_rw - e_rl)); loss = -log sigma(inside).
    e = (0.30, 0.50 | 0.35, 0.45), beta = 10: inside = -5 (-0.2 + 0.1) = 0.5; loss = 0.474077."""
    errs = DenoisingPairErrors(*(torch.tensor([v], dtype=torch.float64) for v in (0.30, 0.50, 0.35, 0.45)))
    out = get_loss("diffusion_dpo")(errs, beta=10.0)
    assert out.loss.item() == pytest.approx(-logsig(0.5), abs=1e-9)
    assert out.loss.item() == pytest.approx(0.474077, abs=1e-6)
    npo = get_loss("diffusion_npo")(errs, beta=10.0)
    assert npo.loss.item() == pytest.approx(-logsig(-0.5), abs=1e-9)


def test_diffusion_smpo_scales_the_logit():
    errs = DenoisingPairErrors(*(torch.tensor([v], dtype=torch.float64) for v in (0.30, 0.50, 0.35, 0.45)),
                               strength=torch.tensor([0.9], dtype=torch.float64))
    out = get_loss("diffusion_smpo")(errs, beta=10.0)
    assert out.loss.item() == pytest.approx(-logsig(0.8 * 0.5), abs=1e-9)


def test_diffusion_ospo_hand_computed():
    """e = (0.30, 0.50 | 0.35, 0.45) as in the DPO test -> pair logit 0.5 (beta 10, s 1/2).
    Negative prompt: e_pol_w' = 0.40, e_ref_w' = 0.38 -> rho_w = -0.5 (0.30 - 0.35) = 0.025,
    rho_w' = -0.5 (0.40 - 0.38) = -0.01, cond logit 10 * 0.035 = 0.35; sft = 0.30.
    loss = 0.8 (-log sigma(0.5)) + 0.5 (-log sigma(0.35)) + 1.5 * 0.30."""
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    errs = DenoisingPairErrors(t(0.30), t(0.50), t(0.35), t(0.45), policy_chosen_negative=t(0.40),
                               ref_chosen_negative=t(0.38))
    out = get_loss("diffusion_ospo")(errs, beta=10.0)
    expected = 0.8 * -logsig(0.5) + 0.5 * -logsig(0.35) + 1.5 * 0.30
    assert out.loss.item() == pytest.approx(expected, abs=1e-9)
    assert out.metrics["ospo/cond_acc"].item() == 1.0
    with pytest.raises(ValueError, match="negative prompt"):
        get_loss("diffusion_ospo")(DenoisingPairErrors(t(0.3), t(0.5), t(0.35), t(0.45)))


def test_diffusion_kto_hand_computed():
    """g = e_ref - e_pol = (0.1, -0.3, 0.2) -> z = max(0, mean g) = 0; beta = 2.
    desirable: 1 - sigma(0.2), undesirable: 1 - sigma(-(-0.6)) = 1 - sigma(0.6), desirable: 1 - sigma(0.4)."""
    errs = DenoisingErrors(policy=torch.tensor([0.4, 0.6, 0.1], dtype=torch.float64),
                           ref=torch.tensor([0.5, 0.3, 0.3], dtype=torch.float64),
                           desirable=torch.tensor([True, False, True]))
    out = get_loss("diffusion_kto")(errs, beta=2.0)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = ((1 - sig(0.2)) + (1 - sig(0.6)) + (1 - sig(0.4))) / 3
    assert out.loss.item() == pytest.approx(expected, abs=1e-9)
    assert out.metrics["kl"].item() == 0.0


def test_diffusion_kto_reference_point_is_detached_batch_mean():
    """g = (0.5, 0.3) -> z = 0.4 (positive, so no clamp); z carries no gradient."""
    pol = torch.tensor([0.0, 0.2], dtype=torch.float64, requires_grad=True)
    errs = DenoisingErrors(policy=pol, ref=torch.tensor([0.5, 0.5], dtype=torch.float64), desirable=torch.tensor([True, True]))
    out = get_loss("diffusion_kto")(errs, beta=1.0)
    assert out.metrics["kl"].item() == pytest.approx(0.4)
    out.loss.backward()
    sig = torch.sigmoid(torch.tensor([0.1, -0.1], dtype=torch.float64))
    # d/d e_pol of (1 - sigma(g - z)) with g = e_ref - e_pol and z fixed: + sigma' (averaged over 2).
    torch.testing.assert_close(pol.grad, sig * (1 - sig) / 2)


# ---- group ----------------------------------------------------------------------------------

def test_group_advantages_hand_computed():
    """Group (1, 0, 0, 1): mean 0.5, Bessel std sqrt(1/3) = 0.577350 -> A = +-0.5 / 0.577450.
    Group (2, 2, 2, 2): std 0 -> A = 0. scale='none' (Dr.GRPO) leaves rewards minus the mean."""
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    a = group_advantages(r, 4)
    s = math.sqrt(1 / 3) + 1e-4
    torch.testing.assert_close(a, torch.tensor([0.5 / s, -0.5 / s, -0.5 / s, 0.5 / s, 0, 0, 0, 0]))
    torch.testing.assert_close(group_advantages(r, 4, scale="none"), torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0]))
    assert informative_groups(r, 4).tolist() == [True, False]


def test_group_advantages_batch_scale_and_nan():
    r = torch.tensor([1.0, 3.0, float("nan"), 5.0])
    a = group_advantages(r, 2, scale="batch")
    # group means 2 and 5 (NaN left out); batch std of (1, 3, 5) = 2.
    torch.testing.assert_close(a, torch.tensor([-1 / 2.0001, 1 / 2.0001, 0.0, 0.0]))


def test_rloo_advantages_hand_computed():
    """A_i = R_i - mean_{j != i} R_j over the scorable (non-NaN) samples of each group of 4.

    Group (1, 2, 3, 6): sum 12, baselines 11/3, 10/3, 3, 2 -> A = -8/3, -4/3, 0, 4 (= 4/3 (R - mean)).
    Group (4, NaN, 0, 2): 3 scorable, sum 6, baselines (6 - R) / 2 = 1, -, 3, 2 -> A = 3, 0, -3, 0
    (the NaN sample gets 0). Group (5, NaN, NaN, NaN): one scorable sample, baseline 0/0 -> all 0.
    Normalised: the 7 finite advantages have mean 0, so A / (Bessel std + 1e-4), NaN rows still 0.
    """
    nan = float("nan")
    r = torch.tensor([1.0, 2.0, 3.0, 6.0, 4.0, nan, 0.0, 2.0, 5.0, nan, nan, nan])
    expected = torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0, 3.0, 0.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(rloo_advantages(r, 4), expected)
    loo = torch.tensor([r[i] - (r[:4].sum() - r[i]) / 3 for i in range(4)])  # the formula, written out
    torch.testing.assert_close(rloo_advantages(r, 4)[:4], loo)
    finite = expected[:7]
    std = math.sqrt(sum(a * a for a in finite.tolist()) / 6)
    torch.testing.assert_close(rloo_advantages(r, 4, normalize=True), expected / (std + 1e-4))
    torch.testing.assert_close(rloo_advantages(r, 1), torch.zeros(12))  # a group of one has no baseline


def test_rloo_kl_penalty_enters_the_reward_before_the_baseline():
    """R = (1, 1), kl = sum_t (old - ref) = (0, 2), beta 0.5 -> R' = (1, 0) -> A = (1, -1); clipping comes first."""
    old = torch.tensor([[-1.0, -1.0], [-1.0, -1.0]])
    ref = torch.tensor([[-1.0, -5.0], [-2.0, -2.0]])
    kl = sequence_kl(old, ref, torch.tensor([[1.0, 0.0], [1.0, 1.0]]))  # masked token ignored
    torch.testing.assert_close(kl, torch.tensor([0.0, 2.0]))
    torch.testing.assert_close(rloo_advantages(torch.ones(2), 2, kl=kl, beta=0.5), torch.tensor([1.0, -1.0]))
    clipped = rloo_advantages(torch.tensor([3.0, 1.0]), 2, kl=kl, beta=0.5, reward_clip=(0.0, 1.0))
    torch.testing.assert_close(clipped, torch.tensor([1.0, -1.0]))
    with pytest.raises(LossInputError, match="needs the per-sequence 'kl'"):
        rloo_advantages(torch.ones(2), 2, beta=0.5)


def test_rloo_loss_on_policy_is_minus_mean_advantage():
    """On policy the sequence ratio is 1: loss = -mean_i A_i = -(1 - 3) / 2 = 1; no KL term in the loss."""
    logps = torch.full((2, 3), -1.0, requires_grad=True)
    out = get_loss("rloo")(GroupTerms(logps=logps, advantages=torch.tensor([1.0, -3.0]), mask=torch.ones(2, 3),
                                      ref_logps=torch.zeros(2, 3)))
    assert out.loss.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown hyper-parameter 'beta'"):
        get_loss("rloo")(GroupTerms(logps=logps, advantages=torch.zeros(2), mask=torch.ones(2, 3)), beta=0.1)


def test_k3_kl_is_nonnegative_and_zero_at_equality():
    logp = torch.tensor([-1.0, -2.0, -0.5])
    assert k3_kl(logp, logp).abs().max().item() == 0.0
    assert (k3_kl(logp, logp + torch.tensor([0.3, -0.7, 1.2])) > 0).all()
    assert k3_kl(torch.tensor([-1.0]), torch.tensor([-1.5])).item() == pytest.approx(math.exp(-0.5) + 0.5 - 1)


def test_group_on_policy_loss_is_minus_mean_advantage():
    """On policy (old = logp.detach()) the ratio is 1: loss = -mean_seq(A) for GRPO."""
    logps = torch.full((2, 3), -1.0, requires_grad=True)
    adv = torch.tensor([1.0, -3.0])
    out = get_loss("grpo")(GroupTerms(logps=logps, advantages=adv, mask=torch.ones(2, 3)))
    assert out.loss.item() == pytest.approx(1.0)


# ---- latency-aware DPO (SimulPL, our form) ------------------------------------------------------

def test_latency_dpo_hand_computed():
    """rho_w = 3, rho_l = 1, beta = 0.5: beta h = 1. Margin m = 0.4, gamma = 2.5: logit = 1 - 1 = 0,
    loss = -log sigma(0) = log 2 = 0.693147. Second pair m = 0: logit 1, loss = -log sigma(1) = 0.313262."""
    terms = pair([3.0, 3.0], [1.0, 1.0], margin=torch.tensor([0.4, 0.0], dtype=torch.float64))
    out = get_loss("latency_dpo")(terms, beta=0.5, gamma=2.5)
    assert out.losses.tolist() == pytest.approx([math.log(2), 0.313262], abs=1e-6)
    assert out.chosen_rewards.tolist() == pytest.approx([1.5, 1.5])


def test_latency_dpo_without_margin_is_dpo_and_needs_one():
    terms = pair([1.3, -0.2], [0.4, 0.5], margin=torch.tensor([0.7, 0.1], dtype=torch.float64))
    torch.testing.assert_close(get_loss("latency_dpo")(terms, beta=0.3, gamma=0.0).loss,
                               get_loss("sigmoid")(terms, beta=0.3).loss)
    with pytest.raises(LossInputError, match="margin"):
        get_loss("latency_dpo")(pair([1.0], [0.0]), beta=0.1)


def test_latency_dpo_pushes_harder_on_a_larger_latency_gain():
    """d loss / d rho_w = -beta sigma(-(beta h - gamma m)): a larger margin gives a larger push."""
    w = torch.tensor([0.5, 0.5], dtype=torch.float64, requires_grad=True)
    zeros = torch.zeros(2, dtype=torch.float64)
    terms = PairTerms(w, zeros, zeros, zeros, margin=torch.tensor([0.0, 0.5], dtype=torch.float64))
    get_loss("latency_dpo")(terms, beta=1.0, gamma=1.0).loss.backward()
    assert w.grad[1] < w.grad[0] < 0


# ---- gradient direction: one step raises the chosen side's implicit reward ------------------

# sft has no preference direction; apo_down lowers both sides by design (its own test below).
PAIR_LOSSES = [n for n in list_losses("pairwise") if n not in ("sft", "apo_down")] + list_losses("strength")


@pytest.mark.parametrize("name", PAIR_LOSSES)
def test_pairwise_step_raises_chosen_margin(name):
    torch.manual_seed(0)
    w = torch.tensor([-20.0, -14.0, -30.0, -9.0], requires_grad=True)
    l = torch.tensor([-18.0, -15.0, -25.0, -11.0], requires_grad=True)
    ref_w, ref_l = torch.tensor([-21.0, -13.0, -29.0, -10.0]), torch.tensor([-17.0, -16.0, -26.0, -10.5])
    lengths = torch.tensor([10, 7, 15, 6])

    def terms():
        return PairTerms(w, l, ref_w, ref_l, chosen_lengths=lengths, rejected_lengths=lengths,
                         chosen_nll=-(w / lengths).mean(), strength=torch.full((4,), 0.9),
                         margin=torch.full((4,), 0.3))

    hp = {"beta": 0.1} if name not in ("simpo",) else {"beta": 2.0}
    before = ((w - ref_w) - (l - ref_l)).detach().clone()
    loss = get_loss(name)(terms(), **hp).loss
    loss.backward()
    with torch.no_grad():
        w -= 0.5 * w.grad
        l -= 0.5 * l.grad
    after = (w - ref_w) - (l - ref_l)
    assert (after.detach() - before).mean() > 0, name


def test_apo_down_lowers_both_but_widens_margin():
    """rho_w = 0, rho_l = -2, beta = 1/2: dL/dw = beta (sigma'(0) - sigma'(1)) > 0, dL/dl = beta sigma'(1) > dL/dw."""
    w = torch.tensor([-10.0], requires_grad=True)
    l = torch.tensor([-12.0], requires_grad=True)
    ref = torch.tensor([-10.0])
    get_loss("apo_down")(PairTerms(w, l, ref, ref), beta=0.5).loss.backward()
    assert w.grad.item() > 0  # gradient descent lowers the chosen log-prob ...
    assert l.grad.item() > w.grad.item()  # ... and the rejected one more


@pytest.mark.parametrize("name", list_losses("listwise"))
def test_listwise_step_raises_best_over_worst(name):
    logps = torch.tensor([[-5.0, -4.0, -3.0]], requires_grad=True)
    terms = ListTerms(logps=logps, ref_logps=torch.tensor([[-5.0, -4.0, -3.0]]), scores=torch.tensor([[2.0, 1.0, 0.0]]))
    get_loss(name)(terms, beta=1.0).loss.backward()
    assert logps.grad[0, 0] < 0 < logps.grad[0, 2]  # descent raises the best entry and lowers the worst


@pytest.mark.parametrize("name", ["kto", "apo_zero_unpaired"])
def test_unpaired_step_directions(name):
    logps = torch.tensor([-10.0, -10.0], requires_grad=True)
    terms = UnpairedTerms(logps, torch.tensor([-10.5, -9.5]), torch.tensor([True, False]),
                          kl_logps=torch.tensor([-3.0]), ref_kl_logps=torch.tensor([-3.2]))
    get_loss(name)(terms, beta=0.5).loss.backward()
    assert logps.grad[0] < 0 < logps.grad[1]


@pytest.mark.parametrize("name", list_losses("group"))
def test_group_step_follows_advantage_sign(name):
    logps = torch.full((2, 4), -1.0, requires_grad=True)
    get_loss(name)(GroupTerms(logps=logps, advantages=torch.tensor([1.0, -1.0]), mask=torch.ones(2, 4))).loss.backward()
    assert (logps.grad[0] < 0).all() and (logps.grad[1] > 0).all()


@pytest.mark.parametrize("name", ["diffusion_dpo", "diffusion_smpo"])
def test_diffusion_step_lowers_chosen_error_relative_to_rejected(name):
    pw = torch.tensor([0.5], requires_grad=True)
    pl = torch.tensor([0.5], requires_grad=True)
    errs = DenoisingPairErrors(pw, pl, torch.tensor([0.5]), torch.tensor([0.5]), strength=torch.tensor([0.9]))
    get_loss(name)(errs, beta=10.0).loss.backward()
    assert pw.grad.item() > 0 > pl.grad.item()  # descent lowers the chosen error, raises the rejected


# ---- input checks ---------------------------------------------------------------------------

def test_shape_mismatch_names_the_field():
    with pytest.raises(LossInputError, match="field 'rejected_logps' has shape \\(3,\\), expected \\(2,\\)"):
        PairTerms(torch.zeros(2), torch.zeros(3))


def test_nan_input_names_the_field():
    with pytest.raises(LossInputError, match="'ref_chosen_logps' contains NaN"):
        PairTerms(torch.zeros(2), torch.zeros(2), torch.tensor([0.0, float("nan")]), torch.zeros(2))
    with pytest.raises(LossInputError, match="'logps' contains NaN"):
        ListTerms(torch.tensor([[0.0, float("nan")]]), torch.zeros(1, 2))
    with pytest.raises(LossInputError, match="'advantages'"):
        GroupTerms(torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3))


def test_missing_terms_and_bad_hyperparameters_are_clear():
    bare = PairTerms(torch.zeros(2), torch.zeros(2))
    with pytest.raises(LossInputError, match="loss 'sigmoid' needs PairTerms field 'ref_chosen_logps'"):
        get_loss("sigmoid")(bare)
    with pytest.raises(LossInputError, match="loss 'ipo' needs PairTerms field 'chosen_lengths'"):
        get_loss("ipo")(pair([0.0], [0.0]))
    with pytest.raises(ValueError, match="unknown hyper-parameter 'betta'"):
        get_loss("sigmoid")(pair([0.0], [0.0]), betta=0.1)
    with pytest.raises(ValueError, match="unknown loss 'dpo_typo'"):
        get_loss("dpo_typo")
    with pytest.raises(LossInputError, match="label_smoothing must lie in"):
        get_loss("robust")(pair([0.0], [0.0]), label_smoothing=0.5)
    with pytest.raises(LossInputError, match="every list needs at least 2 real entries"):
        get_loss("plackett_luce")(lists([[0.0, 1.0]], mask=[[True, False]]))


def test_combined_losses_add_up():
    terms = PairTerms(**{**pair([1.0, 2.0], [0.5, 0.1]).__dict__, "chosen_nll": torch.tensor(0.7, dtype=torch.float64)})
    out = combine_losses(terms, [("sigmoid", 1.0, {"beta": 0.1}), ("sft", 0.5, {})])
    expected = get_loss("sigmoid")(terms, beta=0.1).loss + 0.35
    torch.testing.assert_close(out.loss, expected)
    assert set(out.metrics) == {"loss/sigmoid", "loss/sft"}


def test_pair_weights_scale_the_mean():
    terms = pair([1.0, 2.0], [0.5, 0.1], weight=torch.tensor([2.0, 0.0], dtype=torch.float64))
    unweighted = get_loss("sigmoid")(pair([1.0, 2.0], [0.5, 0.1]), beta=0.1)
    assert get_loss("sigmoid")(terms, beta=0.1).loss.item() == pytest.approx(unweighted.losses[0].item())


TRL_TESTED = {"sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
              "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm", "sft", "cdpo", "simpo", "orpo",
              "kto", "apo_zero_unpaired", "grpo", "bnpo", "dr_grpo", "dapo", "rloo"}
HAND_TESTED = {"latency_dpo", "soft_preference", "smoothed_preference", "plackett_luce", "rankdpo", "tpo_list", "diffusion_dpo",
               "diffusion_npo", "diffusion_smpo", "diffusion_kto", "diffusion_ospo"}


def test_every_registered_loss_has_a_reference_test():
    assert set(list_losses()) == TRL_TESTED | HAND_TESTED


def test_every_loss_documents_formula_and_paper():
    for name in list_losses():
        spec = get_loss(name)
        assert spec.fn.__doc__ and "loss" in spec.fn.__doc__.lower(), name
        assert spec.paper, name


def test_docs_list_every_loss():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "losses.md").read_text()
    for name in list_losses():
        assert f"`{name}`" in doc, f"docs/losses.md does not describe '{name}'"
