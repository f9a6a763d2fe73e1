"""Sequence log-probs: packed and padded batches agree, and both match a plain full-logits computation."""

from __future__ import annotations

import random

import pytest
import torch

from shared.logprobs import collate_packed, collate_padded, sequence_logps
from shared.models import LoraSpec, ModelSpec, load_policy


def _examples(seed: int, n: int = 6) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [([rng.randrange(3, 259) for _ in range(rng.randint(1, 12))],
             [rng.randrange(3, 259) for _ in range(rng.randint(1, 20))]) for _ in range(n)]


def _naive(model, examples) -> torch.Tensor:
    """Full (time, vocab) logits per sequence, one at a time: the definition, with no batching at all."""
    out = []
    for prompt, comp in examples:
        ids = torch.tensor([[*prompt, *comp]])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        targets = ids[0, 1:]
        token = logp.gather(-1, targets[:, None]).squeeze(-1)
        out.append(token[len(prompt) - 1:].sum())
    return torch.stack(out)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_and_padded_agree_with_the_definition(attn):
    model, tok = load_policy(ModelSpec(attn_implementation=attn, seed=3))
    model.eval()
    examples = _examples(0)
    with torch.no_grad():
        padded = sequence_logps(model, collate_padded(examples, tok.pad_token_id))
        packed = sequence_logps(model, collate_packed(examples))
        naive = _naive(model, examples)
    torch.testing.assert_close(padded.logps, naive, atol=1e-5, rtol=0)
    torch.testing.assert_close(packed.logps, naive, atol=1e-5, rtol=0)
    assert packed.lengths.tolist() == [len(c) for _, c in examples] == padded.lengths.tolist()


def test_packing_isolates_sequences():
    """Changing one sequence must not change another's log-prob when packed together."""
    model, _ = load_policy(ModelSpec(seed=1))
    model.eval()
    a, b = _examples(1, 2)
    b2 = ([7] * len(b[0]), b[1])
    with torch.no_grad():
        first = sequence_logps(model, collate_packed([b, a])).logps[1]
        second = sequence_logps(model, collate_packed([b2, a])).logps[1]
    torch.testing.assert_close(first, second, atol=1e-6, rtol=0)


def test_gradients_agree_packed_and_padded():
    model, tok = load_policy(ModelSpec(seed=2, lora=LoraSpec(r=4)))
    examples = _examples(2, 4)
    grads = []
    for batch in (collate_padded(examples, tok.pad_token_id), collate_packed(examples)):
        model.zero_grad()
        sequence_logps(model, batch).logps.sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_average_is_length_normalised():
    model, tok = load_policy(ModelSpec())
    examples = _examples(4, 3)
    with torch.no_grad():
        out = sequence_logps(model, collate_padded(examples, tok.pad_token_id))
    torch.testing.assert_close(out.average(), out.logps / torch.tensor([len(c) for _, c in examples]))


def test_token_logps_sum_to_sequence_logps_and_are_left_aligned():
    from shared.logprobs import token_logps

    model, tok = load_policy(ModelSpec(seed=9))
    examples = _examples(5, 4)
    with torch.no_grad():
        for batch in (collate_packed(examples), collate_padded(examples, tok.pad_token_id)):
            per_token, mask = token_logps(model, batch)
            totals = sequence_logps(model, batch)
            assert mask.sum(1).tolist() == [len(c) for _, c in examples]
            assert all(mask[i, : len(c)].all() for i, (_, c) in enumerate(examples))
            torch.testing.assert_close((per_token * mask).sum(1), totals.logps, atol=1e-5, rtol=1e-6)


def test_pack_rows_first_fit_decreasing_within_capacity():
    from shared.logprobs import pack_rows

    rows = pack_rows([5, 9, 3, 4, 2, 7], 10)
    assert sorted(i for row in rows for i in row) == list(range(6))
    assert all(sum([5, 9, 3, 4, 2, 7][i] for i in row) <= 10 for row in rows)
    assert rows == [[1], [5, 2], [0, 3], [4]]  # 9 | 7+3 | 5+4 | 2


@pytest.mark.parametrize("row_tokens", [None, 0, 40])
def test_multi_row_packing_agrees_and_bounds_rows(row_tokens):
    model, tok = load_policy(ModelSpec(seed=3))
    model.eval()
    examples = _examples(7, 9)
    batch = collate_packed(examples, row_tokens=row_tokens, pad_id=tok.pad_token_id)
    longest = max(len(p) + len(c) for p, c in examples)
    if row_tokens is None:
        assert batch["input_ids"].shape[1] == longest and batch["input_ids"].shape[0] > 1
    if row_tokens == 0:
        assert batch["input_ids"].shape[0] == 1
    with torch.no_grad():
        packed = sequence_logps(model, batch)
        naive = _naive(model, examples)
    torch.testing.assert_close(packed.logps, naive, atol=1e-5, rtol=1e-6)  # sums of ~100: float summation order


def test_gpt2_packing_agrees_with_the_definition():
    """The benchmark's GPT-2-style model honours packed position ids too."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=259, n_positions=128, n_embd=32, n_layer=2, n_head=4,
                                       resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)).eval()
    examples = _examples(8, 6)
    with torch.no_grad():
        packed = sequence_logps(model, collate_packed(examples))
        padded = sequence_logps(model, collate_padded(examples, 0))
        naive = _naive(model, examples)
    torch.testing.assert_close(packed.logps, naive, atol=1e-5, rtol=1e-6)  # sums of ~100: float summation order
    torch.testing.assert_close(padded.logps, naive, atol=1e-5, rtol=1e-6)  # sums of ~100: float summation order


def _triples(seed: int, n: int = 5):
    rng = random.Random(seed)
    draw = lambda lo, hi: [rng.randrange(3, 259) for _ in range(rng.randint(lo, hi))]  # noqa: E731
    return [(draw(1, 10), draw(1, 12), draw(1, 12)) for _ in range(n)]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_shared_prefix_layout_scores_each_completion_as_if_alone(attn):
    from shared.logprobs import collate_shared_prefix, token_logps

    model, tok = load_policy(ModelSpec(seed=1, attn_implementation=attn))
    model.eval()
    triples = _triples(0)
    sequences = [(p, c) for p, c, _ in triples] + [(p, r) for p, _, r in triples]
    shared = collate_shared_prefix(triples, pad_id=tok.pad_token_id)
    assert shared["input_ids"].numel() < collate_padded(sequences, tok.pad_token_id)["input_ids"].numel()
    with torch.no_grad():
        got = sequence_logps(model, shared)
        naive = _naive(model, sequences)
        per_token, mask = token_logps(model, shared)
    torch.testing.assert_close(got.logps, naive, atol=1e-5, rtol=1e-6)
    assert got.lengths.tolist() == [len(s[1]) for s in sequences]
    torch.testing.assert_close((per_token * mask).sum(1), naive, atol=1e-5, rtol=1e-6)


def test_shared_prefix_gradients_match_packed():
    from shared.logprobs import collate_shared_prefix

    model, tok = load_policy(ModelSpec(seed=2, lora=LoraSpec(r=4)))
    triples = _triples(1, 4)
    sequences = [(p, c) for p, c, _ in triples] + [(p, r) for p, _, r in triples]
    weights = torch.linspace(-1, 1, 2 * len(triples))
    grads = []
    for batch in (collate_shared_prefix(triples), collate_packed(sequences)):
        model.zero_grad()
        (sequence_logps(model, batch).logps * weights).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_shared_prefix_needs_a_prompt():
    from shared.logprobs import collate_shared_prefix

    with pytest.raises(ValueError, match="non-empty prompt"):
        collate_shared_prefix([([], [5], [6])])


def _groups(seed: int, n: int = 4):
    """Prompts with 1-5 completions each, of different lengths (some of one token)."""
    rng = random.Random(seed)
    draw = lambda lo, hi: [rng.randrange(3, 259) for _ in range(rng.randint(lo, hi))]  # noqa: E731
    return [(draw(1, 10), [draw(1, 12) for _ in range(rng.randint(1, 5))]) for _ in range(n)]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("row_tokens", [None, 200])
def test_prefix_groups_score_each_completion_as_if_alone(attn, row_tokens):
    from shared.logprobs import collate_prefix_groups, token_logps

    model, tok = load_policy(ModelSpec(seed=4, attn_implementation=attn))
    model.eval()
    groups = _groups(0)
    sequences = [(prompt, c) for prompt, completions in groups for c in completions]
    batch = collate_prefix_groups(groups, row_tokens=row_tokens, pad_id=tok.pad_token_id)
    if row_tokens:  # several blocks share a row, and rows are padded
        assert batch["input_ids"].size(0) < len(groups)
    assert torch.equal(batch["input_ids"].reshape(-1)[batch["score_at"]], batch["score_target"])
    block_tokens = sum(len(p) + sum(map(len, c)) for p, c in groups)  # each prompt once
    assert batch["input_ids"].numel() - block_tokens == int((batch["attention_mask_4d"][:, 0].sum(-1) == 1).sum()) - len(groups)
    with torch.no_grad():
        got = sequence_logps(model, batch)
        per_token, mask = token_logps(model, batch)
        naive = _naive(model, sequences)
        packed_tokens, packed_mask = token_logps(model, collate_packed(sequences))
    torch.testing.assert_close(got.logps, naive, atol=1e-5, rtol=1e-6)
    assert got.lengths.tolist() == [len(c) for _, c in sequences]
    torch.testing.assert_close(per_token, packed_tokens, atol=1e-5, rtol=1e-5)  # token by token, same order
    assert torch.equal(mask, packed_mask)


def test_prefix_groups_gradients_match_packed():
    from shared.logprobs import collate_prefix_groups

    model, _ = load_policy(ModelSpec(seed=5, lora=LoraSpec(r=4)))
    groups = _groups(2, 3)
    sequences = [(prompt, c) for prompt, completions in groups for c in completions]
    weights = torch.linspace(-1, 1, len(sequences))
    grads = []
    for batch in (collate_prefix_groups(groups), collate_packed(sequences)):
        model.zero_grad()
        (sequence_logps(model, batch).logps * weights).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-5, rtol=1e-4)


def test_prefix_groups_need_a_prompt():
    from shared.logprobs import collate_prefix_groups

    with pytest.raises(ValueError, match="non-empty prompt"):
        collate_prefix_groups([([5], [[6]]), ([], [[7], [8]])])
