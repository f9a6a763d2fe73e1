"""Constrained sampling: the Wyckoff automaton accepts real texts, rejects bad bookkeeping, and constrains any model."""

from __future__ import annotations

import itertools

import pytest

from apps.crystal.data import embedded_structures
from apps.crystal.grammar import WyckoffGrammar
from apps.crystal.grammar import format_constraint
from apps.crystal.prompts import prompt
from apps.crystal.wyckoff import EncodeError, decode, encode
from shared.constrained import TokenAutomaton, walk
from shared.generation import sample_texts
from shared.models import ModelSpec, byte_tokenizer, load_policy

ROCKSALT = "Na4Cl4\nSpacegroup: Fm-3m\nabc: 5.69 5.69 5.69\nangles: 90.00 90.00 90.00\nSites (8)\nNa 0.000 0.000 0.000 4a\nCl 0.500 0.500 0.500 4b"


def test_grammar_accepts_real_texts_to_their_end():
    grammar = WyckoffGrammar(max_atoms=40)
    checked = 0
    for _, s in itertools.islice(embedded_structures(), 0, 400, 10):
        try:
            text = encode(s)
        except EncodeError:
            continue
        atoms = int(text.splitlines()[4][len("Sites ("):-1])  # the conventional cell's count
        if atoms > 40 or max(e.Z for e in s.composition.elements) > 94:
            continue
        assert grammar.can_end(walk(grammar, text)), text
        checked += 1
    assert checked >= 20
    assert grammar.can_end(walk(grammar, ROCKSALT))


@pytest.mark.parametrize("bad, where", [
    (ROCKSALT.replace("Fm-3m", "Fm-3x"), "an invented space-group symbol"),
    (ROCKSALT.replace(" 4b", " 4z"), "a Wyckoff label the group lacks"),
    (ROCKSALT.replace("Sites (8)", "Sites (6)"), "an atom count the group's multiplicities cannot make"),
    (ROCKSALT.replace("Sites (8)", "Sites (12)") + "\nNa 0.250 0.250 0.250 8c", "orbits exceeding the count"),
    (ROCKSALT.replace("5.69 5.69", "5.69 05.69"), "a leading zero"),
    (ROCKSALT.replace("90.00 90.00 90.00", "90.00 90.00 190.00"), "an angle outside 10-170"),
    (ROCKSALT.replace("0.500 0.500 0.500", "2.500 0.500 0.500"), "a coordinate outside -2..2"),
    (ROCKSALT.replace("Na 0", "Xx 0"), "an unknown element"),
    (ROCKSALT.replace(" 4b", " 4a"), "a position without free parameters used twice"),
])
def test_grammar_rejects_broken_bookkeeping(bad, where):
    assert walk(WyckoffGrammar(max_atoms=40), bad) is None, where


def test_grammar_does_not_end_early_or_run_on():
    grammar = WyckoffGrammar(max_atoms=40)
    half = ROCKSALT.rsplit("\n", 1)[0]
    assert not grammar.can_end(walk(grammar, half))  # 4 of the 8 stated atoms
    assert walk(grammar, ROCKSALT + "\n") is None
    assert walk(WyckoffGrammar(max_atoms=4), ROCKSALT) is None  # above max_atoms


class Digits:
    """A toy constraint: exactly three characters from 'ab'."""

    def start(self):
        return 0

    def step(self, state, ch):
        return state + 1 if ch in "ab" and state < 3 else None

    def can_end(self, state):
        return state == 3


def test_token_automaton_masks_all_but_the_allowed_tokens():
    tok = byte_tokenizer()
    automaton = TokenAutomaton(Digits(), tok)
    mask = automaton.mask(0, len(tok))
    assert sorted(tok.decode([i]) for i in mask.nonzero().flatten().tolist()) == ["a", "b"]
    assert automaton.mask(3, len(tok)).nonzero().flatten().tolist() == [tok.eos_token_id]


def test_constrained_sampling_from_a_random_model_follows_the_constraint():
    model, tok = load_policy(ModelSpec(source="tiny", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64))
    texts = sample_texts(model, tok, ["x", "yy"], samples=4, temperature=1.0, max_new_tokens=10, seed=0,
                         constraint=TokenAutomaton(Digits(), tok))
    assert all(len(t) == 3 and set(t) <= {"a", "b"} for row in texts for t in row)


def test_constrained_crystal_samples_pass_the_decoders_bookkeeping():
    model, tok = load_policy(ModelSpec(source="tiny", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                       max_position_embeddings=1024))
    grammar = WyckoffGrammar(max_atoms=12)
    texts = sample_texts(model, tok, [prompt()], samples=8, temperature=1.0, max_new_tokens=400, seed=1,
                         constraint=format_constraint(tok, True, 12))[0]
    finished = [t for t in texts if grammar.can_end(walk(grammar, t))]
    assert len(finished) >= 6  # a random model can still run out of tokens inside a long formula line
    for t in texts:
        assert walk(grammar, t) is not None
    bookkeeping = ("unknown space group", "has no Wyckoff position", "says", "not <multiplicity><letter>")
    for t in finished:
        reason = decode(t).reason or ""
        assert not any(b in reason for b in bookkeeping), reason
