"""SFT, reward-model and online group-RL modules on tiny models: each learns what it is given."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from shared.logprobs import sequence_logps
from shared.models import LoraSpec, ModelSpec, load_policy
from shared.modules import (
    GroupRLModule,
    PreferenceCollator,
    RewardModel,
    RewardModelModule,
    SFTCollator,
    SFTModule,
    build_reference,
    encode_pairs,
    encode_sft,
)
from shared.records import Pair
from shared.rewards import RewardFunction


def _trainer(steps: int, tmp_path) -> L.Trainer:
    return L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)


def test_sft_lowers_completion_nll(tmp_path):
    policy, tok = load_policy(ModelSpec(seed=11))
    examples = encode_sft([(f"say {w}:", f" {w}!") for w in ("cat", "dog", "sun", "sea")], tok)
    collate = SFTCollator(tok.pad_token_id)
    module = SFTModule(policy, lr=1e-2)

    def nll():
        with torch.no_grad():
            s = sequence_logps(policy, collate(examples))
        return (-s.logps.sum() / s.lengths.sum()).item()

    before = nll()
    _trainer(40, tmp_path).fit(module, DataLoader(examples, batch_size=4, collate_fn=collate))
    assert nll() < 0.5 * before


def test_reward_model_learns_pair_order_and_reads_the_last_token(tmp_path):
    lm, tok = load_policy(ModelSpec(seed=12))
    rm = RewardModel(lm)
    pairs = [Pair(prompt=f"q{i}:", chosen=" yes", rejected=" no") for i in range(8)]
    data = encode_pairs(pairs, tok)
    layouts = [PreferenceCollator(tok.pad_token_id, layout=name)(data) for name in ("padded", "packed", "shared_prefix")]
    packed = layouts[1]
    with torch.no_grad():
        for batch in layouts[1:]:
            torch.testing.assert_close(rm(batch), rm(layouts[0]), atol=1e-5, rtol=0)  # last token found in each layout
    module = RewardModelModule(rm, lr=1e-2)
    _trainer(30, tmp_path).fit(module, DataLoader(data, batch_size=8, collate_fn=PreferenceCollator(tok.pad_token_id)))
    with torch.no_grad():
        r = rm(packed)
    assert (r[:8] > r[8:]).all()


def test_reward_model_margin_is_opt_in():
    lm, tok = load_policy(ModelSpec(seed=13))
    data = encode_pairs([Pair(prompt="a", chosen="b", rejected="c", margin=2.0)], tok)
    batch = PreferenceCollator(tok.pad_token_id)(data)
    plain, with_margin = RewardModelModule(RewardModel(lm)), RewardModelModule(RewardModel(lm), use_margin=True)
    with_margin.reward_model.head.load_state_dict(plain.reward_model.head.state_dict())
    gap = (lambda r: r[0] - r[1])(plain.reward_model(batch))
    assert plain._step(batch, "val").item() == pytest.approx(-torch.nn.functional.logsigmoid(gap).item(), abs=1e-6)
    assert with_margin._step(batch, "val").item() == pytest.approx(-torch.nn.functional.logsigmoid(gap - 2).item(), abs=1e-6)


class EvenCodepoints(RewardFunction):
    """Fraction of characters with an even code point: a dense signal a tiny random model can learn."""

    aspects = ("total",)

    def score(self, prompt, output, context):
        if not output:
            raise ValueError("empty completion")
        return {"total": sum(ord(c) % 2 == 0 for c in output) / len(output)}


def test_group_rl_step_matches_the_registered_loss():
    torch.manual_seed(0)
    policy, tok = load_policy(ModelSpec(seed=14, lora=LoraSpec(r=4)))
    module = GroupRLModule(policy, tok, EvenCodepoints(), build_reference("adapter_disabled", policy),
                           loss="grpo", loss_kwargs={"beta": 0.04}, group_size=4, max_new_tokens=6)
    prompt_ids, completions, texts = module.sample(["ab", "xyz"])
    assert len(completions) == 8 and all(1 <= len(c) <= 6 for c in completions)
    assert prompt_ids[0] == prompt_ids[3] != prompt_ids[4]  # grouped: 4 samples of prompt 0, then prompt 1
    torch.manual_seed(1)
    loss = module.training_step(["ab", "xyz"], 0)
    samples = module.last_samples
    adv = torch.tensor([s["advantage"] for s in samples]).view(2, 4)
    torch.testing.assert_close(adv.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    # Policy == reference at step 0 (fresh LoRA), on-policy ratio 1: loss = -mean_i A_i = 0.
    assert loss.item() == pytest.approx(0.0, abs=1e-5)


def test_group_rl_rloo_uses_leave_one_out_advantages(monkeypatch):
    """loss 'rloo' trains on rloo_advantages, with beta as a reward penalty (TRL's RLOO), never group_advantages."""
    import shared.modules.group_rl as group_rl

    calls, real = [], group_rl.rloo_advantages
    monkeypatch.setattr(group_rl, "rloo_advantages", lambda r, g, **k: calls.append((r, g, k)) or real(r, g, **k))
    monkeypatch.setattr(group_rl, "group_advantages", lambda *a, **k: pytest.fail("rloo used group_advantages"))
    torch.manual_seed(0)
    policy, tok = load_policy(ModelSpec(seed=17))
    reference = build_reference("frozen_copy", policy)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.05 * torch.randn_like(param))  # policy != reference, so the KL penalty is not 0
    module = GroupRLModule(policy, tok, EvenCodepoints(), reference, loss="rloo", loss_kwargs={"beta": 0.1},
                           group_size=4, max_new_tokens=6)
    loss = module.training_step(["ab", "xyz"], 0)
    ((rewards, group_size, kwargs),) = calls
    assert group_size == 4 and kwargs["beta"] == 0.1 and kwargs["normalize"] is False
    kl = kwargs["kl"]
    assert kl.shape == (8,) and kl.abs().sum() > 0
    shaped = (rewards - 0.1 * kl).view(2, 4)
    expected = (shaped - (shaped.sum(1, keepdim=True) - shaped) / 3).view(-1)  # R_i - mean_{j != i} R_j
    advantages = torch.tensor([s["advantage"] for s in module.last_samples])
    torch.testing.assert_close(advantages, expected, atol=1e-5, rtol=0)
    assert loss.item() == pytest.approx(-expected.mean().item(), abs=1e-5)  # on policy the ratio is 1

    # As a recipe builds it (loss_kwargs {"beta": 0.0}, no reference): no KL, beta never reaches the loss.
    calls.clear()
    plain = GroupRLModule(policy, tok, EvenCodepoints(), None, loss="rloo", loss_kwargs={"beta": 0.0},
                          group_size=2, max_new_tokens=4)
    plain.training_step(["ab"], 0)
    assert calls[0][2]["kl"] is None and calls[0][2]["beta"] == 0.0
    with pytest.raises(ValueError, match="advantage_scale does not apply"):
        GroupRLModule(policy, tok, EvenCodepoints(), None, loss="rloo", advantage_scale="none")


class ContextLength(RewardFunction):
    """1 when the completion is exactly `context["length"]` characters long, else 0."""

    aspects = ("total",)

    def score(self, prompt, output, context):
        return {"total": float(len(output) == context["length"])}


def test_group_rl_passes_each_items_context_to_the_reward():
    policy, tok = load_policy(ModelSpec(seed=16))
    module = GroupRLModule(policy, tok, ContextLength(), None, loss="grpo", group_size=3, max_new_tokens=4)
    seen = []
    original = module.reward.score
    module.reward.score = lambda p, o, c: (seen.append((p, c["length"])), original(p, o, c))[1]
    module.training_step([{"prompt": "ab", "context": {"length": 2}}, {"prompt": "xyz", "context": {"length": 7}}], 0)
    assert seen == [("ab", 2)] * 3 + [("xyz", 7)] * 3
    assert [s["prompt"] for s in module.last_samples] == ["ab"] * 3 + ["xyz"] * 3


def test_group_rl_raises_mean_reward(tmp_path):
    torch.manual_seed(0)
    policy, tok = load_policy(ModelSpec(seed=15))
    module = GroupRLModule(policy, tok, EvenCodepoints(), None, loss="grpo", group_size=8, max_new_tokens=8,
                           lr=3e-3)
    prompts = ["p1", "p2", "p3", "p4"]

    def mean_reward():
        torch.manual_seed(123)
        _, _, texts = module.sample(prompts * 4)
        return sum(EvenCodepoints()(prompts * 32, texts)[i]["total"] for i in range(len(texts))) / len(texts)

    before = mean_reward()
    _trainer(25, tmp_path).fit(module, DataLoader(prompts, batch_size=4, collate_fn=list))
    after = mean_reward()
    assert after > before + 0.15, (before, after)


def test_group_rl_layouts_give_the_same_loss_and_gradients():
    """Shared-prefix blocks (each prompt once per group) and plain packing train identically."""
    policy, tok = load_policy(ModelSpec(seed=15))
    reference = build_reference("frozen_copy", load_policy(ModelSpec(seed=16))[0])
    results = []
    for layout in ("shared_prefix", "packed"):
        module = GroupRLModule(policy, tok, EvenCodepoints(), reference, loss="grpo", loss_kwargs={"beta": 0.04},
                               group_size=3, layout=layout)
        prompt_ids = [[5, 6, 7]] * 3 + [[9, 10]] * 3
        completions = [[11], [12, 13, 2], [14, 15, 16, 17], [18, 2], [19, 20, 21], [22]]
        batch = module.collate(prompt_ids, completions)
        assert ("attention_mask_4d" in batch) == (layout == "shared_prefix")
        policy.zero_grad()
        out, advantages, mask, _ = module.rollout_loss(prompt_ids, completions, torch.tensor([1.0, 0.0, 0.5, 0.2, 0.9, 0.4]))
        out.loss.backward()
        assert mask.sum(1).tolist() == [len(c) for c in completions]
        results.append((out.loss.detach(), torch.cat([p.grad.flatten() for p in policy.parameters()])))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-6, rtol=1e-4)
    assert results[0][0].abs() > 1e-4  # the policy differs from the reference: the KL term makes the loss non-zero


def test_group_rl_rejects_bad_settings():
    policy, tok = load_policy(ModelSpec())
    with pytest.raises(ValueError, match="layout 'padded'"):
        GroupRLModule(policy, tok, EvenCodepoints(), layout="padded")
    with pytest.raises(ValueError, match="'sigmoid' is a pairwise loss"):
        GroupRLModule(policy, tok, EvenCodepoints(), loss="sigmoid")
    with pytest.raises(ValueError, match="needs a reference"):
        GroupRLModule(policy, tok, EvenCodepoints(), loss="grpo", loss_kwargs={"beta": 0.1})


def test_a_loaded_model_trains_in_train_mode_so_checkpointing_is_on(tmp_path, monkeypatch):
    import transformers.modeling_utils as modeling_utils
    from lightning.pytorch.callbacks import Callback

    from shared.models import save_policy

    base, tok = load_policy(ModelSpec(seed=2, num_layers=2))
    save_policy(base, tok, tmp_path / "base")
    calls = []
    real = modeling_utils.checkpoint
    monkeypatch.setattr(modeling_utils, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    policy, tok = load_policy(ModelSpec(source="hf", path=str(tmp_path / "base"), lora=LoraSpec(r=4),
                                        gradient_checkpointing=True))
    assert any(not m.training for m in policy.modules())  # from_pretrained: the base layers come in eval mode
    seen = []

    class Modes(Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append(all(m.training for m in module.policy.modules()))

    examples = encode_sft([(f"say {w}:", f" {w}!") for w in ("cat", "dog")], tok)
    collate = SFTCollator(tok.pad_token_id)
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, callbacks=[Modes()],
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(SFTModule(policy, lr=1e-3), DataLoader(examples, batch_size=2, collate_fn=collate))
    assert seen == [True, True]
    assert len(calls) == 2 * 2  # both layers ran under checkpoint() in both steps


def test_adapter_disabled_reference_runs_in_eval_mode_and_restores_every_mode():
    policy, tok = load_policy(ModelSpec(seed=3, num_layers=2, lora=LoraSpec(r=4)))
    policy.train()
    layer = policy.get_base_model().model.layers[1]
    layer.eval()  # a mixed tree: restored exactly, not made uniform
    before = [m.training for m in policy.modules()]
    during = []
    layer.register_forward_pre_hook(lambda m, args: during.append(policy.training or m.training))
    collate = PreferenceCollator(tok.pad_token_id)
    batch = collate(encode_pairs([Pair(prompt="q:", chosen=" yes", rejected=" no")], tok))
    reference = build_reference("adapter_disabled", policy)
    reference.logps(policy, batch)
    assert during == [False]
    assert [m.training for m in policy.modules()] == before
