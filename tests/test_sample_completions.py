"""shared.generation.sample_completions: each completion's text, whether it ended with EOS, and its length."""

from __future__ import annotations

from shared.generation import Sampled, _completion, sample_completions, sample_texts
from shared.models import ModelSpec, load_policy


def test_a_row_is_cut_at_its_first_eos_and_says_whether_it_ended():
    _, tok = load_policy(ModelSpec())
    eos = tok.eos_token_id
    hi = tok.encode("hi", add_special_tokens=False)
    assert _completion(tok, hi + [eos, eos, eos], eos) == Sampled("hi", True, len(hi))
    assert _completion(tok, hi, eos) == Sampled("hi", False, len(hi))
    assert _completion(tok, [eos], eos) == Sampled("", True, 0)


def test_sample_completions_agree_with_sample_texts_and_flag_the_unfinished():
    model, tok = load_policy(ModelSpec())
    prompts = ["abc", "hello there"]
    done = sample_completions(model, tok, prompts, samples=2, temperature=1.0, max_new_tokens=4, seed=3)
    assert [[c.text for c in row] for row in done] == sample_texts(model, tok, prompts, samples=2, temperature=1.0,
                                                                   max_new_tokens=4, seed=3)
    for row in done:
        for c in row:
            assert c.finished == (c.tokens < 4)  # without EOS the completion used every new token
            assert 0 <= c.tokens <= 4
