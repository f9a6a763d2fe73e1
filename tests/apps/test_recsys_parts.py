"""The recsys app's parts: encoder-decoder log-probs and the MoE load-balancing loss in the core modules, the
trie-constrained session decoding, ranking metrics, AUC, the reward towers and the baselines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from apps.recsys.baselines import ItemTokens, SASRecArgs, build_sasrec, popularity_ranking
from apps.recsys.metrics import ranking_row
from apps.recsys.model import EOS, PAD, START, ModelArgs, SessionVocab, build_generator, generate_sessions
from apps.recsys.reward import RewardData, RewardScorer, RewardTowers, auc
from apps.recsys.semantic_ids import assign_semantic_ids
from shared.logprobs import collate_seq2seq, sequence_logps
from shared.modules import EncodedPair, FrozenCopyReference, PreferenceCollator, PreferenceModule, SFTModule
from shared.modules.reward_model import SignalRewardModule


@pytest.fixture(scope="module")
def vocab():
    rng = np.random.default_rng(0)
    items = [f"i{n}" for n in range(60)]
    return SessionVocab(assign_semantic_ids(items, rng.normal(size=(60, 8)), [4, 4, 4], iterations=5, seed=0))


@pytest.fixture(scope="module")
def generator(vocab):
    torch.manual_seed(0)
    args = ModelArgs(d_model=32, ffn_dim=32, experts=4, encoder_layers=1, decoder_layers=2, heads=2, dropout=0.0)
    return build_generator(args, len(vocab), 128)


def _examples(vocab):
    items = vocab.sids.item_ids
    return [(vocab.history_ids(items[:3], 10), vocab.session_ids(items[5:7])),
            (vocab.history_ids(items[10:12], 10), vocab.session_ids(items[20:23]))]


def test_seq2seq_sequence_logps_match_the_models_own_logits(vocab, generator):
    examples = _examples(vocab)
    batch = collate_seq2seq(examples, PAD, START)
    assert batch["decoder_input_ids"][0, 0] == START and batch["decoder_targets"][0, len(examples[0][1]) - 1] == EOS
    generator.eval()
    with torch.no_grad():
        scored = sequence_logps(generator, batch)
        assert scored.aux_loss is None  # no gradients: no load-balancing term
        expected = []
        for prompt, completion in examples:
            out = generator(input_ids=torch.tensor([prompt]), decoder_input_ids=torch.tensor([[START, *completion[:-1]]]))
            logp = out.logits[0].log_softmax(-1)
            expected.append(sum(logp[t, tok].item() for t, tok in enumerate(completion)))
    assert scored.logps.tolist() == pytest.approx(expected, abs=1e-4)
    assert scored.lengths.tolist() == [len(c) for _, c in examples]


def test_sft_adds_the_routers_load_balancing_loss(vocab, generator):
    batch = collate_seq2seq(_examples(vocab), PAD, START)
    generator.train()
    scored = sequence_logps(generator, batch)
    assert scored.aux_loss is not None and scored.aux_loss.requires_grad
    labels = batch["decoder_targets"].masked_fill(~batch["decoder_attention_mask"].bool(), -100)
    torch.manual_seed(0)
    out = generator(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    decoder_input_ids=batch["decoder_input_ids"], decoder_attention_mask=batch["decoder_attention_mask"],
                    labels=labels, output_router_logits=True)
    coef = generator.config.router_aux_loss_coef
    # transformers' top-2 load-balancing loss over both stacks, weighted by router_aux_loss_coef
    assert scored.aux_loss.item() == pytest.approx(coef * (out.encoder_aux_loss + out.decoder_aux_loss).item(), rel=1e-5)
    assert scored.aux_loss.item() > 0
    module = SFTModule(generator)
    logged = {}
    module.log_metrics = lambda metrics, stage, batch_size: logged.update(metrics)
    loss = module._step(batch, "train")
    nll = -scored.logps.sum() / scored.lengths.sum()
    assert loss.item() == pytest.approx(nll.item() + scored.aux_loss.item(), rel=1e-5)
    assert logged["aux_loss"].item() == pytest.approx(scored.aux_loss.item(), rel=1e-5)
    generator.eval()


def test_dpo_on_seq2seq_pairs_starts_at_zero_margin_and_moves(vocab, generator):
    items = vocab.sids.item_ids
    pairs = [EncodedPair(vocab.history_ids(items[:4], 10), vocab.session_ids(items[6:8]), vocab.session_ids(items[30:32])),
             EncodedPair(vocab.history_ids(items[2:5], 10), vocab.session_ids(items[9:11]), vocab.session_ids(items[40:42]))]
    batch = PreferenceCollator(PAD, decoder_start_id=START)(pairs)
    assert "decoder_input_ids" in batch and int(batch["num_pairs"]) == 2
    policy = build_generator(ModelArgs(d_model=32, ffn_dim=32, experts=2, encoder_layers=1, decoder_layers=1, heads=2,
                                       dropout=0.0), len(vocab), 128).train()
    module = PreferenceModule(policy, FrozenCopyReference(policy), loss="sigmoid", loss_kwargs={"beta": 0.5}, lr=1e-2,
                              rpo_alpha=1.0)
    logged = {}
    module.log_metrics = lambda metrics, stage, batch_size: logged.update(metrics)
    module._step(batch, "train")
    assert float(logged["rewards/margins"]) == pytest.approx(0.0, abs=1e-5) and "aux_loss" in logged
    optimiser = module.configure_optimizers()
    for _ in range(15):
        optimiser.zero_grad()
        module._step(batch, "train").backward()
        optimiser.step()
    assert float(logged["rewards/margins"]) > 0


def test_constrained_sessions_name_real_unseen_distinct_items(vocab, generator):
    items = vocab.sids.item_ids
    histories = [items[:5], items[20:30], items[40:41]]
    found = generate_sessions(generator, vocab, histories, items=4, beams=6, returns=3, max_history=10)
    for history, sessions in zip(histories, found):
        assert len(sessions) == 3
        for s in sessions:
            assert s["invalid"] == 0 and len(s["items"]) == 4
            assert len(set(s["items"])) == 4 and not set(s["items"]) & set(history)
        assert sessions[0]["score"] >= sessions[-1]["score"]
    ranked = generate_sessions(generator, vocab, histories, items=1, beams=10, returns=10, max_history=10)
    assert all(len({s["items"][0] for s in r}) == 10 for r in ranked)  # distinct beams are distinct items


def test_the_constraint_leaves_only_items_outside_the_banned_set(vocab):
    from apps.recsys.model import SessionConstraint

    items = vocab.sids.item_ids
    allowed_items = set(items[:3])
    constraint = SessionConstraint(vocab, [frozenset(items[3:])], items=2)
    first = constraint(0, torch.tensor([START]))
    firsts = {vocab.level_of(t)[1] for t in first}
    assert firsts == {vocab.sids.code_of(i)[0] for i in allowed_items}
    chosen = items[0]
    prefix = [START, *vocab.item_ids(chosen)]
    after = constraint(0, torch.tensor(prefix))
    assert all(vocab.level_of(t)[0] == 0 for t in after)
    full = [START, *vocab.item_ids(items[0]), *vocab.item_ids(items[1])]
    assert constraint(0, torch.tensor(full)) == [EOS]
    everything = SessionConstraint(vocab, [frozenset(items)], items=2)
    assert everything(0, torch.tensor([START])) == [EOS]  # nothing left to recommend: end, never invent


def test_decode_counts_what_names_no_item(vocab):
    items = vocab.sids.item_ids
    good = vocab.item_ids(items[0])
    assert vocab.decode([START, *good, EOS]) == ([items[0]], 0)
    wrong_level = vocab.offsets[1]  # a level-2 token where an item must start
    assert vocab.decode([START, wrong_level, *good, EOS]) == ([items[0]], 1)
    assert vocab.decode([START, *good, *good[:1], EOS]) == ([items[0]], 1)  # unfinished item
    assert vocab.decode([START, *good, 3, EOS]) == ([items[0]], 1)  # <unk>
    unused = [c for c in range(vocab.sids.codebook_sizes[0]) if c not in vocab.trie.children(())]
    if unused:
        assert vocab.decode([vocab.offsets[0] + unused[0]])[1] == 1
    with pytest.raises(ValueError, match="empty history"):
        vocab.history_ids([], 5)
    with pytest.raises(ValueError, match="unknown item"):
        vocab.item_ids("nope")


def test_ranking_metrics_follow_recbole():
    row = ranking_row(["a", "b", "t", "c"], "t", [1, 5, 10])
    assert row["hit@1"] == 0 and row["hit@5"] == 1 and row["hit@10"] == 1
    assert row["ndcg@5"] == pytest.approx(1 / math.log2(4)) and row["ndcg@1"] == 0
    assert ranking_row(["t"], "t", [1])["ndcg@1"] == 1.0
    assert ranking_row(["a"], "t", [1, 5]) == {"hit@1": 0.0, "ndcg@1": 0.0, "hit@5": 0.0, "ndcg@5": 0.0}


def test_auc_by_rank_sum():
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_signal_reward_module_is_masked_bce_per_tower():
    class Fixed(torch.nn.Module):
        def forward(self, batch):
            return batch["logits"]

    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    module = SignalRewardModule(Fixed(), ["click", "like"], weights=[1.0, 3.0])
    logged = {}
    module.log_metrics = lambda metrics, stage, batch_size: logged.update(metrics)
    loss = module._step({"logits": logits, "labels": labels, "label_mask": mask}, "train")
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    click = (bce[0, 0] + bce[1, 0]) / 2
    like = bce[0, 1]
    assert float(loss) == pytest.approx(float((click + 3 * like) / 4))
    assert float(logged["accuracy/click"]) == 0.5 and float(logged["accuracy/like"]) == 1.0


def test_reward_towers_learn_a_signal_and_survive_save_and_load(tmp_path):
    from apps.recsys.reward import RewardArgs

    torch.manual_seed(0)
    items = [str(i) for i in range(20)]
    data = RewardData(items, ["click"], max_history=5)
    # users whose history is of even items click even items; odd likewise
    rows = []
    rng = np.random.default_rng(0)
    for _ in range(400):
        parity = int(rng.integers(2))
        history = [str(int(i)) for i in rng.choice(np.arange(parity, 20, 2), 3, replace=False)]
        item = str(int(rng.integers(20)))
        rows.append(data.row(history, item, {"click": float(int(item) % 2 == parity)}))
    model = RewardTowers(len(items), ["click"], dim=16, max_history=5)
    module = SignalRewardModule(model, ["click"], lr=3e-2)
    module.log_metrics = lambda *a, **k: None
    optimiser = module.configure_optimizers()
    for step in range(150):
        batch = data.collate(rows[(step * 32) % 368:(step * 32) % 368 + 32])
        optimiser.zero_grad()
        module._step(batch, "train").backward()
        optimiser.step()
    scorer = RewardScorer(model, data)
    p = scorer.probabilities(["0", "2", "4"], ["6", "7"])
    assert p[0, 0] > 0.8 and p[1, 0] < 0.2
    scorer.save(tmp_path / "rm", RewardArgs(dim=16, max_history=5), items)
    again = RewardScorer.load(tmp_path / "rm")
    assert np.allclose(again.probabilities(["0", "2", "4"], ["6", "7"]), p)
    assert scorer.session_signals(["0", "2"], ["6", "8"])["reward"] > scorer.session_signals(["0", "2"], ["7", "9"])["reward"]
    with pytest.raises(ValueError, match="unknown item"):
        scorer.probabilities(["0"], ["x"])


def test_baselines_never_recommend_the_history():
    assert popularity_ranking({"a": 5, "b": 9, "c": 1, "d": 9}, ["b"], 2) == ["d", "a"]
    items = [str(i) for i in range(12)]
    tokens = ItemTokens(items)
    model = build_sasrec(SASRecArgs(d_model=16, layers=1, heads=2, max_history=8), len(items))
    ranked = tokens.rank(model, [["1", "2", "3"], ["4"]], k=5, max_history=8)
    assert all(len(r) == 5 for r in ranked)
    assert not set(ranked[0]) & {"1", "2", "3"} and "4" not in ranked[1]
    assert tokens.example(["1", "2"], 8) == ([1], [5, 6])


def test_the_saved_tokenizer_speaks_the_vocabulary(vocab, tmp_path):
    from transformers import AutoTokenizer

    items = vocab.sids.item_ids
    ids = vocab.session_ids(items[:2])
    vocab.tokenizer().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert tok(vocab.text(ids) + " </s>", add_special_tokens=False).input_ids == ids
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (PAD, START, EOS)
    with pytest.raises(ValueError, match="first four"):
        from shared.models import word_level_tokenizer

        word_level_tokenizer(["a", "b"])
