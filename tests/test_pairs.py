"""Pair builders on hand-built candidates: expected pairs written out, determinism, edge cases."""

import random

import numpy as np
import pytest

from shared.pairs import (
    PerturbationError,
    best_vs_worst,
    curriculum_order,
    margin_pairs,
    minimax_pairs,
    perturbation_negatives,
    plaid_pairs,
    plaid_spacegroup_pairs,
    ranked_lists,
    threshold_pairs,
    tiered_pairs,
)
from shared.records import Candidate, Pair, RankedList


def cand(pid, output, total=None, **scores):
    if total is not None:
        scores["total"] = total
    return Candidate(pid, f"prompt {pid}", output, scores=scores)


def triples(pairs):
    return [(p.prompt, p.chosen, p.rejected) for p in pairs]


GROUPS = [
    cand("a", "a1", 1.0),
    cand("a", "a2", 3.0),
    cand("a", "a3", 2.0),
    cand("b", "b1", 0.5),
    cand("b", "b2", 0.5),
    cand("c", "c1", 9.0),
]


def test_best_vs_worst_expected_pairs_and_provenance():
    pairs = best_vs_worst(GROUPS)
    assert triples(pairs) == [("prompt a", "a2", "a1")]  # b all tied, c single
    assert pairs[0].margin == 2.0
    assert pairs[0].metadata == {
        "builder": "best_vs_worst",
        "prompt_id": "a",
        "chosen_score": 3.0,
        "rejected_score": 1.0,
    }


def test_best_vs_worst_min_margin_and_callable_score():
    assert best_vs_worst(GROUPS, min_margin=2.5) == []
    pairs = best_vs_worst(GROUPS, score=lambda c: -c.scores["total"])
    assert triples(pairs) == [("prompt a", "a1", "a2")]


def test_missing_aspect_is_a_clear_error():
    with pytest.raises(ValueError, match=r"prompt_id='a' has no score 'quality' \(has \['total'\]\)"):
        best_vs_worst(GROUPS, score="quality")


def test_margin_pairs_all_orderings_above_margin():
    assert triples(margin_pairs(GROUPS, margin=0.0)) == [
        ("prompt a", "a2", "a3"),
        ("prompt a", "a2", "a1"),
        ("prompt a", "a3", "a1"),
    ]
    assert [p.margin for p in margin_pairs(GROUPS, margin=1.5)] == [2.0]


def test_margin_pairs_cap_is_seeded_and_keeps_order():
    cands = [cand("a", f"o{i}", float(i)) for i in range(6)]  # 15 pairs
    capped = margin_pairs(cands, max_pairs_per_prompt=4, seed=3)
    assert len(capped) == 4
    assert capped == margin_pairs(list(reversed(cands)), max_pairs_per_prompt=4, seed=3)
    assert margin_pairs(cands, max_pairs_per_prompt=4, seed=random.Random(9)) == margin_pairs(
        cands, max_pairs_per_prompt=4, seed=random.Random(9)
    )
    full = margin_pairs(cands)
    assert [full.index(p) for p in capped] == sorted(full.index(p) for p in capped)
    others = {tuple(triples(margin_pairs(cands, max_pairs_per_prompt=4, seed=s))) for s in range(10)}
    assert len(others) > 1


def test_ranked_lists_best_first_with_stable_ties():
    lists = ranked_lists(GROUPS)
    assert lists == [
        RankedList(
            "prompt a", ["a2", "a3", "a1"], [3.0, 2.0, 1.0], metadata={"builder": "ranked_lists", "prompt_id": "a"}
        ),
        RankedList("prompt b", ["b1", "b2"], [0.5, 0.5], metadata={"builder": "ranked_lists", "prompt_id": "b"}),
    ]
    assert ranked_lists(GROUPS, min_size=3) == lists[:1]


def test_builders_ignore_input_order():
    shuffled = list(GROUPS)
    random.Random(1).shuffle(shuffled)
    for build in (best_vs_worst, margin_pairs, ranked_lists):
        assert build(shuffled) == build(GROUPS)


def test_empty_input_gives_nothing():
    for build in (best_vs_worst, margin_pairs, ranked_lists, threshold_pairs):
        assert build([]) == []
    assert tiered_pairs([], {"x": lambda c: True}, []) == []
    assert plaid_pairs([], round_index=1) == []


def test_threshold_pairs_prompt_a_video():
    cands = [
        cand("v", "best", 0.9, motion=0.8, aesthetic=0.7),
        cand("v", "close", 0.85, motion=0.9, aesthetic=0.9),
        cand("v", "low", 0.5),
        cand("v", "lower", 0.2),
    ]
    pairs = threshold_pairs(
        cands, chosen_threshold=0.8, margin=0.1, per_dimension_thresholds={"motion": 0.5, "aesthetic": 0.6}
    )
    assert triples(pairs) == [("prompt v", "best", "low"), ("prompt v", "best", "lower")]
    assert [round(p.margin, 6) for p in pairs] == [0.4, 0.7]
    assert threshold_pairs(cands, per_dimension_thresholds={"aesthetic": 0.75}) == []  # top fails a dimension
    assert threshold_pairs(cands, chosen_threshold=0.95) == []


def test_threshold_pairs_tries_the_second_when_the_top_fails_a_dimension():
    cands = [
        cand("v", "best", 0.9, aesthetic=0.7),
        cand("v", "close", 0.85, aesthetic=0.9),
        cand("v", "low", 0.5, aesthetic=0.9),
        cand("v", "lower", 0.2, aesthetic=0.9),
    ]
    pairs = threshold_pairs(cands, margin=0.1, per_dimension_thresholds={"aesthetic": 0.75}, tries=2)
    # "close" is chosen; "best" scores above it and is never its rejected partner, nor is "close" itself
    assert triples(pairs) == [("prompt v", "close", "low"), ("prompt v", "close", "lower")]
    assert threshold_pairs(cands, margin=-1.0, per_dimension_thresholds={"aesthetic": 0.75}, tries=2)[0].chosen == "close"
    assert all(p.rejected != "close" for p in threshold_pairs(cands, margin=-1.0, per_dimension_thresholds={"aesthetic": 0.75}, tries=2))
    assert threshold_pairs(cands, per_dimension_thresholds={"aesthetic": 0.95}, tries=4) == []
    assert threshold_pairs(cands, chosen_threshold=0.88, per_dimension_thresholds={"aesthetic": 0.75}, tries=2) == []
    with pytest.raises(ValueError, match="tries"):
        threshold_pairs(cands, tries=0)


def tier_cands():
    return [
        cand("p", "g1", q=2.0),
        cand("p", "g2", q=2.0),
        cand("p", "m1", q=1.0),
        cand("p", "b1", q=0.0),
        cand("p", "b2", q=0.0),
        cand("p", "b3", q=0.0),
        cand("p", "junk", q=-1.0),
    ]


TIERS = {
    "good": lambda c: c.scores["q"] == 2.0,
    "mid": lambda c: c.scores["q"] == 1.0,
    "bad": lambda c: c.scores["q"] == 0.0,
}


def test_tiered_pairs_all_when_k_is_none_or_large():
    pairs = tiered_pairs(tier_cands(), TIERS, [("good", "mid", None), ("mid", "bad", 5)])
    assert triples(pairs) == [
        ("prompt p", "g1", "m1"),
        ("prompt p", "g2", "m1"),
        ("prompt p", "m1", "b1"),
        ("prompt p", "m1", "b2"),
        ("prompt p", "m1", "b3"),
    ]  # "junk" matches no tier and is dropped
    assert pairs[0].metadata == {
        "builder": "tiered_pairs",
        "prompt_id": "p",
        "chosen_tier": "good",
        "rejected_tier": "mid",
    }


def test_tiered_pairs_samples_without_replacement_deterministically():
    pairs = tiered_pairs(tier_cands(), TIERS, [("good", "bad", 2)], seed=7)
    assert len(pairs) == 4
    for chosen in ("g1", "g2"):
        rejected = [p.rejected for p in pairs if p.chosen == chosen]
        assert len(set(rejected)) == 2 and set(rejected) <= {"b1", "b2", "b3"}
    shuffled = tier_cands()[::-1]
    assert tiered_pairs(shuffled, TIERS, [("good", "bad", 2)], seed=7) == pairs
    assert tiered_pairs(tier_cands(), TIERS, [("good", "bad", 2)], seed=random.Random(5)) == tiered_pairs(
        tier_cands(), TIERS, [("good", "bad", 2)], seed=random.Random(5)
    )
    seen = {tuple(triples(tiered_pairs(tier_cands(), TIERS, [("good", "bad", 2)], seed=s))) for s in range(10)}
    assert len(seen) > 1


def test_tiered_pairs_first_matching_tier_wins_and_rules_are_checked():
    overlapping = {"any": lambda c: True, "good": lambda c: c.scores["q"] == 2.0}
    assert tiered_pairs(tier_cands(), overlapping, [("good", "any", None)]) == []
    with pytest.raises(ValueError, match="unknown tier 'nope'"):
        tiered_pairs(tier_cands(), TIERS, [("good", "nope", 1)])


def crystals():
    return [
        Candidate("r", "gen", "SN", scores={"e_hull": -0.01, "novel": 1.0}),
        Candidate("r", "gen", "S", scores={"e_hull": 0.0, "novel": 0.0}),
        Candidate("r2", "gen", "M", scores={"e_hull": 0.05}),
        Candidate("r", "gen", "B", scores={"e_hull": 0.08}),  # boundary: above in rounds 1-2, metastable later
        Candidate("r3", "gen", "U2", scores={"e_hull": 0.5}),
        Candidate("r", "gen", "U3", scores={"e_hull": 1e9}),
        Candidate("r", "gen", "X", scores={}),  # failed structure: counts as unstable
    ]


def test_plaid_early_rounds_below_threshold_vs_three_above():
    pairs = plaid_pairs(crystals(), round_index=1, seed=0)
    below, above = {"SN", "S", "M"}, {"B", "U2", "U3", "X"}
    assert sorted(p.chosen for p in pairs) == sorted(["M", "S", "SN"] * 3)
    for chosen in below:
        rejected = [p.rejected for p in pairs if p.chosen == chosen]
        assert len(set(rejected)) == 3 and set(rejected) <= above
    assert plaid_pairs(crystals()[::-1], round_index=2, seed=0) == plaid_pairs(crystals(), round_index=2, seed=0)


def test_plaid_tiered_rounds_counts():
    pairs = plaid_pairs(crystals(), round_index=3, seed=1)
    by_tiers = {}
    for p in pairs:
        key = (p.metadata["chosen_tier"], p.metadata["rejected_tier"])
        by_tiers.setdefault(key, []).append((p.chosen, p.rejected))
    metastable, unstable = {"M", "B"}, {"U2", "U3", "X"}
    assert by_tiers[("stable_novel", "stable_not_novel")] == [("SN", "S")]
    ((c, r),) = by_tiers[("stable_novel", "metastable")]
    assert c == "SN" and r in metastable
    ((c, r),) = by_tiers[("stable_not_novel", "metastable")]
    assert c == "S" and r in metastable
    for key, chosen in [("stable_novel", ["SN"]), ("stable_not_novel", ["S"]), ("metastable", ["B", "M"])]:
        got = by_tiers[(key, "unstable")]
        assert sorted(c for c, _ in got) == sorted(chosen * 2)
        for ch in chosen:
            rejected = [r for c, r in got if c == ch]
            assert len(set(rejected)) == 2 and set(rejected) <= unstable
    assert len(pairs) == 11


def test_plaid_x3_applies_only_to_tiered_round_one():
    pairs = plaid_pairs(crystals(), round_index=1, tiered_from_round=1)
    assert sum(p.metadata["rejected_tier"] == "unstable" and p.chosen == "M" for p in pairs) == 3
    assert (
        sum(
            p.metadata["rejected_tier"] == "unstable" and p.chosen == "M"
            for p in plaid_pairs(crystals(), round_index=4)
        )
        == 2
    )


def sg_crystals():
    return [
        Candidate("sg225", "p225", "MN", scores={"e_hull": 0.02, "sg_match": 1.0, "novel": 1.0}),
        Candidate("sg225", "p225", "MK", scores={"e_hull": -0.1, "sg_match": 1.0, "novel": 0.0}),
        Candidate("sg225", "p225", "N1", scores={"e_hull": 0.08, "sg_match": 0.0, "novel": 1.0}),
        Candidate("sg225", "p225", "N2", scores={"e_hull": 0.0, "sg_match": 0.0}),
        Candidate("sg225", "p225", "U", scores={"e_hull": 0.2, "sg_match": 1.0, "novel": 1.0}),
        Candidate("sg225", "p225", "X", scores={}),
        Candidate("sg1", "p1", "other", scores={"e_hull": 0.5}),
    ]


def test_plaid_spacegroup_rules_and_counts():
    pairs = plaid_spacegroup_pairs(sg_crystals(), seed=3)
    got = {}
    for p in pairs:
        got.setdefault((p.metadata["chosen_tier"], p.metadata["rejected_tier"]), []).append((p.chosen, p.rejected))
    assert sorted(got[("matching_novel", "not_matching")]) == [("MN", "N1"), ("MN", "N2")]
    assert sorted(got[("matching_not_novel", "not_matching")]) == [("MK", "N1"), ("MK", "N2")]
    assert got[("matching_novel", "matching_not_novel")] == [("MN", "MK")]  # only one to draw from
    for chosen in ("MN", "MK", "N1", "N2"):  # every stable one (E_hull <= 0.08) over both unstable ones
        rejected = sorted(r for (c, r) in sum((v for k, v in got.items() if k[1] == "unstable"), []) if c == chosen)
        assert rejected == ["U", "X"]
    assert all(p.prompt == "p225" for p in pairs)  # never across requested space groups
    assert len(pairs) == 2 + 2 + 1 + 8
    assert plaid_spacegroup_pairs(sg_crystals()[::-1], seed=3) == pairs


def test_curriculum_order_easy_to_hard_by_margin():
    pairs = [Pair("p", f"c{m}", "r", margin=float(m)) for m in (1, 5, 3, 2, 4)]
    stages = curriculum_order(pairs, stages=2)
    assert [[p.margin for p in s] for s in stages] == [[5.0, 4.0, 3.0], [2.0, 1.0]]
    assert curriculum_order(pairs[::-1], stages=2) == stages
    assert [len(s) for s in curriculum_order(pairs, stages=9)] == [1, 1, 1, 1, 1]


def test_curriculum_order_one_stage_per_level_for_temple():
    pairs = [Pair("p", f"c{i}", "r", metadata={"m": m}) for i, m in enumerate([2, 16, 8, 16, 4, 2])]
    stages = curriculum_order(pairs, difficulty=lambda p: -p.metadata["m"], stages=None)
    assert [[p.metadata["m"] for p in s] for s in stages] == [[16, 16], [8], [4], [2, 2]]


def test_curriculum_default_needs_margins():
    with pytest.raises(ValueError, match=r"needs Pair\.margin"):
        curriculum_order([Pair("p", "a", "b")])


CODES = ["def f(): return 1", "def f(): return 2", "def f(): return 3"]
TESTS = ["assert t1", "assert t2", "assert t3"]


def test_minimax_pairs_dstc():
    matrix = np.array([[True, False, False], [True, True, False], [False, False, False]])
    pair = minimax_pairs(CODES, TESTS, matrix, prompt="write f", joiner="\n#\n")
    assert pair.chosen == "def f(): return 2\n#\nassert t1\n#\nassert t2"
    assert pair.rejected == "def f(): return 3\n#\nassert t1\n#\nassert t2\n#\nassert t3"
    assert pair.margin == 2.0
    assert pair.metadata["chosen_index"] == 1 and pair.metadata["rejected_index"] == 2


def test_minimax_pairs_ties_go_to_lowest_index_and_lists_work():
    matrix = [[1, 1, 0], [0, 1, 1], [1, 0, 0], [0, 0, 1]]
    pair = minimax_pairs([*CODES, "def f(): return 4"], TESTS, matrix, prompt="p")
    assert (pair.metadata["chosen_index"], pair.metadata["rejected_index"]) == (0, 2)
    assert pair.rejected == "def f(): return 3\n\nassert t2\n\nassert t3"


def test_minimax_pairs_no_preference_gives_none():
    assert minimax_pairs(CODES, TESTS, np.ones((3, 3), dtype=bool), prompt="p") is None
    assert minimax_pairs(CODES[:1], TESTS, [[True, False, True]], prompt="p") is None


@pytest.mark.parametrize(
    "matrix, message",
    [
        (np.ones((3, 2), dtype=bool), r"codes x tests = \(3, 3\), got shape \(3, 2\)"),
        ([[1, 0, 1], [1, 0], [0, 0, 0]], r"got ragged rows"),
        ([[1, 0, 2], [1, 0, 1], [0, 0, 0]], r"booleans or 0/1"),
    ],
)
def test_minimax_pairs_validates_matrix(matrix, message):
    with pytest.raises(ValueError, match=message):
        minimax_pairs(CODES, TESTS, matrix, prompt="p")


OPERATORS = {
    "reverse": lambda text, rng: text[::-1],
    "noop": lambda text, rng: text,
    "none": lambda text, rng: None,
    "drop": lambda text, rng: _drop_word(text, rng),
}


def _drop_word(text, rng):
    words = text.split()
    del words[rng.randrange(len(words))]
    return " ".join(words)


def test_perturbation_negatives_skip_useless_edits_and_name_the_operator():
    good = [Candidate("t", "caption", "a b c d"), Candidate("u", "caption", "x y")]
    pairs = perturbation_negatives(good, OPERATORS, per_output=2, seed=0)
    assert len(pairs) == 4
    for p in pairs:
        assert p.metadata["operator"] in {"reverse", "drop"}
        assert p.rejected != p.chosen
        if p.metadata["operator"] == "reverse":
            assert p.rejected == p.chosen[::-1]
    assert perturbation_negatives(good[::-1], OPERATORS, per_output=2, seed=0) == pairs
    assert len(perturbation_negatives(good, OPERATORS, per_output=5)) == 4  # only two operators make edits


def test_perturbation_negatives_operator_order_is_seeded():
    good = [Candidate(str(i), "p", f"w{i} v{i} u{i}") for i in range(8)]
    ops = {"reverse": OPERATORS["reverse"], "drop": OPERATORS["drop"]}
    chosen_ops = {tuple(p.metadata["operator"] for p in perturbation_negatives(good, ops, seed=s)) for s in range(5)}
    assert len(chosen_ops) > 1


def test_perturbation_operator_error_names_operator():
    def broken(text, rng):
        raise KeyError("no objects")

    with pytest.raises(
        PerturbationError, match=r"operator 'swap_objects' failed on a candidate of prompt_id='t': KeyError"
    ):
        perturbation_negatives([Candidate("t", "p", "o")], {"swap_objects": broken})


def test_pool_without_grouping_refuses_to_pair_different_prompts():
    mixed = [
        Candidate("a", "prompt a", "x", scores={"total": 1.0}),
        Candidate("b", "prompt b", "y", scores={"total": 0.0}),
    ]
    with pytest.raises(ValueError, match="cannot pair outputs of different prompts"):
        best_vs_worst(mixed, group_by=None)
