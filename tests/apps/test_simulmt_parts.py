"""The token stream, the simultaneous decoder (wait-k, thresholds, limits, streaming) and SimulPL's scorers and pairs."""

from __future__ import annotations

import pytest
import torch

from apps.simulmt.decode import Setting, SimultaneousDecoder, StreamingSession, Trajectory
from apps.simulmt.language import Clause, Lexicon, NounPhrase, realise
from apps.simulmt.latency import wait_k_delays
from apps.simulmt.preferences import (
    PreferenceArgs,
    better,
    build_pairs,
    key_points,
    monotonicity,
    score_candidate,
    simplicity,
)
from apps.simulmt.stream import Vocabulary, build_initial_policy, encode_schedule, word_tokenizer
from shared.models import ModelSpec, load_policy
from shared.models.loading import ModelSpec as Spec

LEX = Lexicon.build()
PAIR = realise([Clause(NounPhrase("dog", "black"), NounPhrase("cat"), ("see", "sees", "saw"), past=True)], False, LEX, "s")


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("simulmt") / "init"
    spec = ModelSpec(source="tiny", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                     max_position_embeddings=256, seed=1)
    build_initial_policy(spec, LEX.source_words() + LEX.target_words(), folder)
    return load_policy(Spec(source="hf", path=str(folder)))


def test_a_schedule_encodes_reads_words_and_the_scored_mask():
    tok = word_tokenizer(LEX.source_words() + LEX.target_words())
    v = Vocabulary(tok)
    source, target = ["a1", "b2", "c3"], ["x", "y"]
    tok = word_tokenizer(source + target)
    v = Vocabulary(tok)
    prompt, ids, scored = encode_schedule(v, "simul", source, target, [1, 3], score_reads=True)
    assert tok.convert_ids_to_tokens(prompt) == ["<s>", "<simul>"]
    assert tok.convert_ids_to_tokens(ids) == ["<read>", "a1", "x", "<read>", "b2", "<read>", "c3", "</src>", "y", "</s>"]
    assert scored == [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
    _, ids2, scored2 = encode_schedule(v, "translate", source, target, [1, 1], score_reads=False)
    assert tok.convert_ids_to_tokens(ids2)[-5:] == ["<read>", "b2", "<read>", "c3", "</src>", "</s>"][-5:]
    assert sum(scored2) == 3  # x, y and </s>: imposed reads are not the policy's
    with pytest.raises(ValueError, match="2 delays for 1 target words"):
        encode_schedule(v, "simul", source, ["x"], [1, 2], score_reads=True)


def test_a_tokenizer_without_action_tokens_is_refused():
    from shared.models import byte_tokenizer

    with pytest.raises(ValueError, match="<read>"):
        Vocabulary(byte_tokenizer())


def test_wait_k_decoding_follows_the_schedule_exactly(policy):
    model, tok = policy
    decoder = SimultaneousDecoder(model, tok, max_ratio=1.0, max_extra=2)
    sources = [PAIR.source, PAIR.source[:3], ["kaba"] + PAIR.source]
    for k in (1, 3, 9):
        for source, traj in zip(sources, decoder.decode(sources, Setting("wait_k", k))):
            assert traj.delays == wait_k_delays(k, len(source), len(traj.target))
            assert traj.actions().count("R") == len(source)
            assert len(traj.target) <= decoder.max_words(len(source))


def test_thresholds_are_a_latency_knob_and_limits_always_end_the_output(policy):
    model, tok = policy
    decoder = SimultaneousDecoder(model, tok, max_ratio=1.0, max_extra=1)
    never_read = decoder.decode([PAIR.source], Setting("threshold", 1.0))[0]
    always_read = decoder.decode([PAIR.source], Setting("threshold", 1e-9))[0]
    assert always_read.delays and set(always_read.delays) == {len(PAIR.source)}
    # tau = 1 never chooses to read: only the first word and whatever the length limit forces (writing ahead
    # of the reads, read - written < 0, must not force a read when no minimum lag is set)
    assert never_read.delays[:3] == [1, 1, 1]
    # an untrained model rambles: it stops at the limit, the rest of the source is read, and it is marked
    assert len(never_read.target) <= decoder.max_words(len(PAIR.source))
    assert never_read.completion[-1] == tok.eos_token_id
    assert never_read.completion.count(Vocabulary(tok).read) == len(PAIR.source)


def test_sampling_is_seeded_and_streaming_matches_batch_decoding(policy):
    model, tok = policy
    decoder = SimultaneousDecoder(model, tok)
    a = decoder.decode([PAIR.source] * 3, Setting("threshold", 0.5), temperature=1.0, seed=4)
    b = decoder.decode([PAIR.source] * 3, Setting("threshold", 0.5), temperature=1.0, seed=4)
    assert [t.target for t in a] == [t.target for t in b]
    greedy = decoder.decode([PAIR.source], Setting("wait_k", 2))[0]
    session = StreamingSession(decoder, Setting("wait_k", 2))
    steps = [session.feed([w], finished=i + 1 == len(PAIR.source)) for i, w in enumerate(PAIR.source)]
    assert session.trajectory().target == greedy.target and session.trajectory().delays == greedy.delays
    assert [w for s in steps for w in s["written"]] == greedy.target
    assert sum(s["actions"].count("R") for s in steps) == len(PAIR.source)
    assert steps[0]["waiting"] and steps[-1]["done"]
    with pytest.raises(ValueError, match="finished"):
        session.feed(["more"])


def test_a_late_end_of_source_is_appended_and_the_session_finishes(policy):
    model, tok = policy
    session = StreamingSession(SimultaneousDecoder(model, tok), Setting("wait_k", 1))
    session.feed(PAIR.source)
    report = session.feed([], finished=True)
    assert report["done"] and session.row.ids.count(Vocabulary(tok).source_end) == 1
    empty = StreamingSession(SimultaneousDecoder(model, tok), Setting("wait_k", 1))
    assert empty.feed([], finished=True)["done"]


def test_a_minimum_lag_makes_the_own_policy_wait(policy):
    model, tok = policy
    decoder = SimultaneousDecoder(model, tok, max_ratio=1.0, max_extra=2)
    # tau = 1 never reads by choice: with lag 2 the schedule is exactly wait-2's
    traj = decoder.decode([PAIR.source], Setting("threshold", 1.0, min_lag=2))[0]
    assert traj.delays == wait_k_delays(2, len(PAIR.source), len(traj.target))


def test_settings_parse_and_reject_nonsense():
    assert Setting.parse("wait-3") == Setting("wait_k", 3) and Setting.parse("tau=0.25").name == "tau=0.25"
    assert Setting.parse("tau=0.9,lag=2") == Setting("threshold", 0.9, 2) and Setting("threshold", 0.9, 2).name == "tau=0.9,lag=2"
    for bad in ("wait-0", "wait-2.5", "3", "tau=x", "tau=1.5", "tau=0.5,lag=-1", "tau=0.5,lag=x"):
        with pytest.raises(ValueError):
            Setting.parse(bad)


# ---- SimulPL's aspects --------------------------------------------------------------------------

def test_key_points_need_the_right_tense_and_every_content_word():
    assert key_points("the black dog saw the cat .".split(), PAIR) == 1.0
    assert key_points("the black dog sees the cat .".split(), PAIR) == pytest.approx(4 / 5)  # wrong tense
    assert key_points("the dog saw the cat".split(), PAIR) == pytest.approx(3 / 5)  # no adjective, no period
    assert key_points([], PAIR) == 0.0


def test_monotonicity_prefers_source_order():
    canonical, monotone = PAIR.references[0].split(), PAIR.references[1].split()
    # canonical: black(1) dog(0) saw(5) cat(3): pairs up, down... 1 of 3 keeps order; monotone: dog black saw cat: 2 of 3
    assert monotonicity(canonical, PAIR.source, LEX) == pytest.approx(1 / 3)
    assert monotonicity(monotone, PAIR.source, LEX) == pytest.approx(2 / 3)
    assert monotonicity(["dog"], PAIR.source, LEX) == 1.0 and monotonicity(canonical, PAIR.source, None) is None


def test_simplicity_charges_extra_and_repeated_words():
    assert simplicity(PAIR.references[0].split(), PAIR.references) == 1.0
    # "the dog that is black saw the cat ." has 9 words, the shortest reference 7: 2 extra -> 1 - 2/9
    assert simplicity(PAIR.references[1].split(), PAIR.references) == pytest.approx(7 / 9)
    assert simplicity("the dog dog saw".split(), PAIR.references) == pytest.approx(0.75)
    assert simplicity([], PAIR.references) == 0.0


def _scored(text: str, delays: list[int]) -> dict:
    traj = Trajectory(PAIR.source, text.split(), delays, [], [], [])
    return {**score_candidate(PAIR, traj, PreferenceArgs(), LEX), "target": traj.target, "delays": delays}


def test_pairs_prefer_better_at_no_more_latency_or_as_good_and_faster():
    args = PreferenceArgs(pairs_per_source=3)
    n = len(PAIR.source)
    good_late = _scored(PAIR.references[0], [n] * 7)
    good_early = _scored(PAIR.references[0], [2, 2, 2, 7, 7, 7, 7])
    wrong_early = _scored("the black dog sees the cat .", [2, 2, 2, 7, 7, 7, 7])
    assert good_early["LAAL"] < good_late["LAAL"]
    assert better(good_early, good_late, n, args)  # as good, faster
    assert not better(good_late, good_early, n, args)
    assert not better(good_late, wrong_early, n, args)  # better, but later: not a pair
    assert better(good_early, wrong_early, n, args)  # better at the same latency
    pairs = build_pairs(PAIR, [good_late, good_early, wrong_early, dict(good_early)], args)
    # the duplicate of good_early is one candidate, and no candidate is used twice: one pair, good_early chosen
    assert len(pairs) == 1 and pairs[0][0] == 1 and pairs[0][1] in (0, 2)
    only_latency = build_pairs(PAIR, [good_late, good_early], args)
    assert only_latency == [(1, 0, pytest.approx((good_late["LAAL"] - good_early["LAAL"]) / n, abs=1e-6))]
    assert build_pairs(PAIR, [good_late, wrong_early], args) == []


def test_a_garbage_output_is_scored_not_raised():
    junk = _scored("zz ?? <read> the the the", [1, 1, 1, 1, 1, 1])
    assert 0.0 <= junk["preference"] < 0.5 and junk["key_points"] < 0.5
    empty = _scored("", [])
    assert empty["LAAL"] == len(PAIR.source) and empty["quality"] == 0.0


def test_the_scored_mask_leaves_source_tokens_out_of_sequence_logps(policy):
    from shared.logprobs import collate_packed, collate_padded, sequence_logps

    model, tok = policy
    v = Vocabulary(tok)
    prompt, ids, scored = encode_schedule(v, "simul", PAIR.source, PAIR.references[0].split(),
                                          [1] * 7, score_reads=True)
    full = sequence_logps(model, collate_padded([(prompt, ids)], tok.pad_token_id))
    masked = sequence_logps(model, collate_padded([(prompt, ids, scored)], tok.pad_token_id))
    packed = sequence_logps(model, collate_packed([(prompt, ids, scored), (prompt, ids)], pad_id=tok.pad_token_id))
    assert int(masked.lengths[0]) == sum(scored) < int(full.lengths[0])
    torch.testing.assert_close(packed.logps[0], masked.logps[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(packed.logps[1], full.logps[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="scored mask has 2 entries"):
        collate_padded([(prompt, ids, [1, 0])], tok.pad_token_id)


def test_a_pretrained_tokenizer_gets_the_action_tokens_and_multi_token_words_decode(tmp_path):
    """A Hugging Face model by path (here a byte-level tiny model): the action tokens are added, the
    embeddings resized, and words that span several tokens still get one delay each."""
    from shared.models import save_policy

    base, tok = load_policy(ModelSpec(seed=3))
    save_policy(base, tok, tmp_path / "base")
    folder = build_initial_policy(Spec(source="hf", path=str(tmp_path / "base")), [], tmp_path / "init")
    model, tok = load_policy(Spec(source="hf", path=str(folder)))
    v = Vocabulary(tok)
    assert len(v.word("dog")) == 4 and model.get_input_embeddings().weight.shape[0] == len(tok)
    decoder = SimultaneousDecoder(model, tok, max_ratio=1.0, max_extra=1)
    assert not decoder.word_level
    traj = decoder.decode([["ab", "cd", "ef"]], Setting("wait_k", 1))[0]
    assert len(traj.delays) == len(traj.target) and traj.delays == sorted(traj.delays)
    assert all(1 <= d <= 3 for d in traj.delays)


class _EndsAtOnce(torch.nn.Module):
    """A policy that always prefers </s> (and never <read> by itself): the worst case of 'never writes'."""

    def __init__(self, model, eos: int):
        super().__init__()
        self.model, self.eos = model, eos

    def forward(self, **kwargs):
        out = self.model(**kwargs)
        out.logits[..., self.eos] += 1e4
        return out


def test_an_output_that_never_writes_is_empty_and_scored_maximally_late(policy):
    from apps.simulmt.eval import sentence_rows

    model, tok = policy
    decoder = SimultaneousDecoder(_EndsAtOnce(model, tok.eos_token_id), tok)
    traj = decoder.decode([PAIR.source], Setting("threshold", 1e-9))[0]
    assert traj.target == [] and traj.delays == [] and traj.completion[-1] == tok.eos_token_id
    row = sentence_rows([PAIR], [traj], "x", Setting("threshold", 1e-9))[0]
    n = len(PAIR.source)
    assert (row["AL"], row["LAAL"], row["DAL"], row["AP"]) == (n, n, n, 1.0) and row["chrF"] == 0.0
    # under wait-k the same policy must still write while source words remain (</s> is masked until the end)
    forced = decoder.decode([PAIR.source], Setting("wait_k", 2))[0]
    assert len(forced.target) == n - 2 and forced.delays == wait_k_delays(2, n, n - 2)  # one word per read after k


def test_the_word_level_shortcut_agrees_with_decoding_the_tokens(policy):
    model, tok = policy
    fast = SimultaneousDecoder(model, tok, max_ratio=1.0, max_extra=2)
    slow = SimultaneousDecoder(model, tok, max_ratio=1.0, max_extra=2)
    slow.word_level = False  # count and time words by decoding the tokens, as for a subword model
    assert fast.word_level
    sources = [PAIR.source, PAIR.source[:4]]
    for setting in (Setting("threshold", 0.5), Setting("wait_k", 2)):
        for a, b in zip(fast.decode(sources, setting, temperature=1.0, seed=2),
                        slow.decode(sources, setting, temperature=1.0, seed=2)):
            assert (a.target, a.delays, a.completion) == (b.target, b.delays, b.completion)
