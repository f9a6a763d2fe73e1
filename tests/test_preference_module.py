"""Offline preference module: reference options agree at step 0, and training raises the chosen margin."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from shared.losses import PairTerms, get_loss
from shared.models import LoraSpec, ModelSpec, load_policy
from shared.modules import PreferenceCollator, PreferenceModule, build_reference, encode_pairs
from shared.records import Pair

# A checkable rule: the chosen answer repeats the prompt's word in upper case.
WORDS = ["apple", "river", "stone", "cloud", "maple", "tiger", "lemon", "piano"]
PAIRS = [Pair(prompt=f"shout {w}:", chosen=f" {w.upper()}", rejected=f" {w}") for w in WORDS]


def _batch(tok, layout="auto"):
    return PreferenceCollator(tok.pad_token_id, layout=layout)(encode_pairs(PAIRS, tok))


def test_adapter_disabled_and_frozen_copy_give_the_same_step0_loss():
    policy, tok = load_policy(ModelSpec(seed=5, lora=LoraSpec(r=4)))
    batch = _batch(tok)
    losses = []
    for kind in ("frozen_copy", "adapter_disabled"):
        module = PreferenceModule(policy, build_reference(kind, policy), loss="sigmoid", loss_kwargs={"beta": 0.1})
        losses.append(module.loss_spec(module.terms(batch), beta=0.1).loss)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=0)
    assert losses[0].item() == pytest.approx(torch.log(torch.tensor(2.0)).item(), abs=1e-6)  # policy == reference


@pytest.mark.parametrize("layout", ["shared_prefix", "packed", "padded"])
def test_every_layout_gives_the_same_loss(layout):
    policy, tok = load_policy(ModelSpec(seed=6))
    module = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="sigmoid")
    with torch.no_grad():
        policy.lm_head.weight.add_(0.01 * torch.randn_like(policy.lm_head.weight))
        items = encode_pairs(PAIRS, tok)
        reference = module.loss_spec(module.terms(PreferenceCollator(tok.pad_token_id, layout="padded")(items))).loss
        loss = module.loss_spec(module.terms(PreferenceCollator(tok.pad_token_id, layout=layout)(items))).loss
    torch.testing.assert_close(loss, reference, atol=1e-5, rtol=0)


def test_auto_layout_switches_to_packed_for_long_blocks():
    _, tok = load_policy(ModelSpec())
    items = encode_pairs(PAIRS, tok)
    assert "score_from" in PreferenceCollator(tok.pad_token_id)(items)
    assert "segment_ids" in PreferenceCollator(tok.pad_token_id, shared_prefix_max_tokens=5)(items)
    with pytest.raises(ValueError, match="layout 'dense'"):
        PreferenceCollator(tok.pad_token_id, layout="dense")


def test_precomputed_reference_matches_live_reference_and_packing_matches_padding():
    policy, tok = load_policy(ModelSpec(seed=6))
    live = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="ipo")
    with torch.no_grad():
        policy.lm_head.weight.add_(0.01 * torch.randn_like(policy.lm_head.weight))  # policy moves away from reference
    packed, padded = _batch(tok, "packed"), _batch(tok, "padded")
    with torch.no_grad():
        packed["ref_logps"] = live.reference.logps(policy, packed)
        pre = PreferenceModule(policy, build_reference("precomputed", policy), loss="ipo")
        a = live.loss_spec(live.terms(packed)).loss
        b = pre.loss_spec(pre.terms(packed)).loss
        c = live.loss_spec(live.terms(padded)).loss
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(a, c, atol=1e-5, rtol=0)


def test_module_terms_match_a_direct_loss_computation():
    policy, tok = load_policy(ModelSpec(seed=7))
    module = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="sigmoid")
    batch = _batch(tok)
    terms = module.terms(batch)
    assert isinstance(terms, PairTerms) and terms.chosen_logps.shape == (len(PAIRS),)
    assert terms.chosen_lengths.tolist() == [len(w) + 2 for w in WORDS]  # space + word + EOS
    torch.testing.assert_close(module.loss_spec(terms).loss, get_loss("sigmoid")(terms).loss)


def test_lightning_fit_raises_reward_accuracy_and_margin(tmp_path):
    torch.manual_seed(0)
    policy, tok = load_policy(ModelSpec(seed=8, lora=LoraSpec(r=8, alpha=16)))
    module = PreferenceModule(policy, build_reference("adapter_disabled", policy), loss="sigmoid",
                              loss_kwargs={"beta": 0.5}, lr=2e-2)
    data = encode_pairs(PAIRS, tok)
    loader = DataLoader(data, batch_size=4, shuffle=False, collate_fn=PreferenceCollator(tok.pad_token_id))
    with torch.no_grad():
        before = module.loss_spec(module.terms(_batch(tok)), beta=0.5)
    trainer = L.Trainer(max_steps=30, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, loader)
    with torch.no_grad():
        after = module.loss_spec(module.terms(_batch(tok)), beta=0.5)
    margin = lambda o: (o.chosen_rewards - o.rejected_rewards).mean().item()  # noqa: E731
    assert margin(before) == pytest.approx(0.0, abs=1e-6)
    assert margin(after) > 0.5
    assert (after.chosen_rewards > after.rejected_rewards).float().mean().item() == 1.0
    assert after.loss < before.loss


def test_wrong_loss_family_and_bad_reference_are_clear():
    policy, _ = load_policy(ModelSpec())
    with pytest.raises(ValueError, match="'grpo' is a group loss"):
        PreferenceModule(policy, None, loss="grpo")
    with pytest.raises(ValueError, match="mismatched KL batches"):
        PreferenceModule(policy, None, loss="kto", loss_kwargs={"reference_point": "mismatched"})
    with pytest.raises(ValueError, match="needs a LoRA"):
        build_reference("adapter_disabled", policy).logps(policy, {})
    with pytest.raises(ValueError, match="'frozen' is not one of"):
        build_reference("frozen", policy)


def test_precompute_reference_caches_by_data_and_model(tmp_path):
    from shared.modules import precompute_reference

    policy, tok = load_policy(ModelSpec(seed=9))
    items = encode_pairs(PAIRS, tok)
    collate = PreferenceCollator(tok.pad_token_id)
    first = precompute_reference(policy, items, collate, batch_size=3, cache_dir=tmp_path)
    files = list(tmp_path.glob("ref-logps-*.pt"))
    assert len(files) == 1
    live = sequence_logps_of(policy, collate(items))
    batch = collate(first)
    torch.testing.assert_close(batch["ref_logps"], live, atol=1e-5, rtol=0)
    # A second call reads the cache; a changed model gets its own cache entry.
    assert [p.ref_chosen for p in precompute_reference(policy, items, collate, cache_dir=tmp_path)] == \
        [p.ref_chosen for p in first]
    with torch.no_grad():
        policy.lm_head.weight.mul_(1.01)
    precompute_reference(policy, items, collate, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("ref-logps-*.pt"))) == 2


def sequence_logps_of(model, batch):
    from shared.logprobs import sequence_logps

    with torch.no_grad():
        return sequence_logps(model, batch).logps


def test_soft_sync_moves_the_reference_toward_the_policy():
    from shared.modules import FrozenCopyReference, soft_update

    policy, _ = load_policy(ModelSpec(seed=10))
    ref = FrozenCopyReference(policy)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    before = next(ref.model.parameters()).clone()
    soft_update(ref.model, policy, 0.25)
    torch.testing.assert_close(next(ref.model.parameters()), before + 0.25)
    soft_update(ref.model, policy, 1.0)
    for a, b in zip(ref.model.parameters(), policy.parameters()):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("loss", ["plackett_luce", "rankdpo", "tpo_list"])
def test_ranked_lists_train_with_listwise_losses(tmp_path, loss):
    from shared.modules import RankedListCollator, encode_ranked_lists
    from shared.records import RankedList

    torch.manual_seed(0)
    policy, tok = load_policy(ModelSpec(seed=11, lora=LoraSpec(r=8)))
    lists = [RankedList(prompt=f"shout {w}:", outputs=[f" {w.upper()}!", f" {w.upper()}", f" {w}"][: 3 - (i % 2)],
                        scores=[2.0, 1.0, 0.0][: 3 - (i % 2)]) for i, w in enumerate(WORDS)]
    data = encode_ranked_lists(lists, tok)
    collate = RankedListCollator(tok.pad_token_id)
    module = PreferenceModule(policy, build_reference("adapter_disabled", policy), loss=loss,
                              loss_kwargs={"beta": 0.5}, lr=2e-2)
    batch = collate(data)
    terms = module.terms(batch)
    assert terms.logps.shape == (8, 3) and terms.valid().sum().item() == 20  # lists of 3 and 2, padded
    with torch.no_grad():
        before = module.loss_spec(terms, beta=0.5).loss.item()
    trainer = L.Trainer(max_steps=20, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(data, batch_size=4, collate_fn=collate))
    with torch.no_grad():
        after = module.loss_spec(module.terms(batch), beta=0.5)
    assert after.loss.item() < before
    assert (after.chosen_rewards > after.rejected_rewards).float().mean().item() == 1.0


def test_soft_sync_callback_runs_during_fit(tmp_path):
    from shared.modules import ReferenceSoftSync

    policy, tok = load_policy(ModelSpec(seed=12))
    module = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="sigmoid", lr=1e-2)
    loader = DataLoader(encode_pairs(PAIRS, tok), batch_size=4, collate_fn=PreferenceCollator(tok.pad_token_id))
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                        callbacks=[ReferenceSoftSync(every_n_steps=3, alpha=1.0)])
    trainer.fit(module, loader)
    for a, b in zip(module.reference.model.parameters(), policy.parameters()):
        torch.testing.assert_close(a, b)  # hard sync at step 3 = the policy after its last update


def test_kto_reads_pairs_as_desirable_and_undesirable_samples():
    policy, tok = load_policy(ModelSpec(seed=6, lora=LoraSpec(r=4)))
    module = PreferenceModule(policy, build_reference("adapter_disabled", policy), loss="kto",
                              loss_kwargs={"beta": 0.5})
    batch = _batch(tok)
    with torch.no_grad():  # push the adapter away from zero so rho differs per sample
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    terms = module.terms(batch)
    rho_c = terms.chosen_logps - terms.ref_chosen_logps
    rho_r = terms.rejected_logps - terms.ref_rejected_logps
    z0 = torch.cat([rho_c, rho_r]).mean().clamp(min=0).detach()
    expected = torch.cat([1 - torch.sigmoid(0.5 * (rho_c - z0)), 1 - torch.sigmoid(0.5 * (z0 - rho_r))]).mean()
    torch.testing.assert_close(module._step(batch, "val"), expected, atol=1e-6, rtol=0)


def test_scored_masks_leave_context_tokens_out_and_the_margin_reaches_the_loss():
    """Masking a completion token removes exactly its log-prob from the pair's sum; per-pair margins reach
    latency_dpo through the batch (PairTerms.margin)."""
    from dataclasses import replace

    policy, tok = load_policy(ModelSpec(seed=7))
    module = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="latency_dpo",
                              loss_kwargs={"beta": 0.1, "gamma": 2.0})
    items = encode_pairs(PAIRS[:2], tok)
    masked = [replace(i, chosen_scored=(0,) + (1,) * (len(i.chosen) - 1), rejected_scored=(1,) * len(i.rejected),
                      margin=m) for i, m in zip(items, (0.0, 0.5))]
    with torch.no_grad():
        policy.lm_head.weight.add_(0.01 * torch.randn_like(policy.lm_head.weight))
        for layout in ("auto", "padded"):
            batch = PreferenceCollator(tok.pad_token_id, layout=layout)(masked)
            assert "score_from" not in batch  # shared_prefix cannot mask: auto falls back to packed
            terms = module.terms(batch)
            plain = module.terms(PreferenceCollator(tok.pad_token_id, layout="padded")(
                [replace(i, margin=m) for i, m in zip(items, (0.0, 0.5))]))
            torch.testing.assert_close(terms.chosen_lengths, plain.chosen_lengths - 1)
            torch.testing.assert_close(terms.rejected_logps, plain.rejected_logps, atol=1e-5, rtol=0)
            assert bool((terms.chosen_logps > plain.chosen_logps).all())  # one negative log-prob fewer
            torch.testing.assert_close(terms.margin, torch.tensor([0.0, 0.5]))
        out = module.loss_spec(terms, beta=0.1, gamma=2.0)
        h = 0.1 * ((terms.chosen_logps - terms.ref_chosen_logps) - (terms.rejected_logps - terms.ref_rejected_logps))
        torch.testing.assert_close(out.losses, -torch.nn.functional.logsigmoid(h - 2.0 * terms.margin))


def test_rpo_alpha_adds_the_chosen_nll():
    policy, tok = load_policy(ModelSpec(seed=8))
    batch = _batch(tok, layout="padded")
    plain = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="sigmoid")
    rpo = PreferenceModule(policy, build_reference("frozen_copy", policy), loss="sigmoid", rpo_alpha=0.5)
    with torch.no_grad():
        terms = plain.terms(batch)
        expected = plain.loss_spec(terms).loss + 0.5 * terms.chosen_nll
        torch.testing.assert_close(rpo._step(batch, "val"), expected)
        torch.testing.assert_close(plain._step(batch, "val"), plain.loss_spec(terms).loss)
    with pytest.raises(ValueError, match="rpo_alpha"):
        PreferenceModule(policy, None, loss="kto", rpo_alpha=1.0)
