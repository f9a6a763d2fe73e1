"""Group sampling with one prefill per prompt gives the samples generate's num_return_sequences gives."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from shared.group_sampling import generate_groups, left_pad
from shared.models import LoraSpec, ModelSpec, load_policy

PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14], [15, 16, 17, 18, 19]]  # different lengths: left padding


def _gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=64, n_embd=32, n_layer=2, n_head=4, eos_token_id=2,
                                      bos_token_id=1, pad_token_id=0)).eval()


def _llama(lora: bool = False):
    model, _ = load_policy(ModelSpec(seed=7, lora=LoraSpec(r=4 if lora else 0)))
    if lora:  # a non-zero adapter, so that the prefill must go through it
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.5)
    return model.eval()


@pytest.mark.parametrize("build", [_gpt2, _llama, lambda: _llama(lora=True)], ids=["gpt2", "llama", "llama-lora"])
def test_shared_prefill_gives_the_same_samples(build):
    model = build()
    rows = []
    for share in (True, False):
        torch.manual_seed(3)
        with torch.no_grad():
            rows.append(generate_groups(model, PROMPTS, 4, pad_id=0, share_prefix=share, do_sample=True, top_k=0,
                                        max_new_tokens=12, min_new_tokens=12))
    assert rows[0].shape == (12, 7 + 12)
    assert torch.equal(rows[0], rows[1])
    ids, _ = left_pad(PROMPTS, 0)
    assert torch.equal(rows[0][:, :7], ids.repeat_interleave(4, 0))  # group after group, prompts untouched
    assert len({tuple(r) for r in rows[0][:4, 7:].tolist()}) > 1  # the group's samples differ


def test_shared_prefill_greedy_matches_and_one_token_prompts_fall_back():
    model = _llama()
    with torch.no_grad():
        shared = generate_groups(model, PROMPTS, 2, pad_id=0, do_sample=False, max_new_tokens=8, min_new_tokens=8)
        plain = model.generate(input_ids=left_pad(PROMPTS, 0)[0].repeat_interleave(2, 0),
                               attention_mask=left_pad(PROMPTS, 0)[1].repeat_interleave(2, 0),
                               do_sample=False, max_new_tokens=8, min_new_tokens=8, pad_token_id=0)
        single = generate_groups(model, [[5], [6]], 3, pad_id=0, do_sample=True, max_new_tokens=4, min_new_tokens=4)
    assert torch.equal(shared, plain)
    assert single.shape == (6, 5) and single[:3, 0].tolist() == [5, 5, 5]
