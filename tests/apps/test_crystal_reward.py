"""Crystal scoring: validity rules, CHGNet energies, the local hull, novelty/uniqueness, metrics; never raises on garbage."""

from __future__ import annotations

import json
import math

import pytest
from pymatgen.core import Composition, Lattice, Structure

from apps.crystal.eval import summarize_samples
from apps.crystal.physics import CHGNetEnergy, EnergySettings, ReferenceHull, element_decorations
from apps.crystal.reward import NoveltyChecker, ScoringService, charge_balanced, set_scores
from apps.crystal.wyckoff import encode
from shared.records import Candidate

ROCKSALT = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.69), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
CSCL = Structure(Lattice.cubic(4.12), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
NACL_CSCL_TYPE = Structure(Lattice.cubic(3.4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return ScoringService(EnergySettings(relax=False), [("rocksalt", ROCKSALT), ("cscl", CSCL)], cache)


def test_charge_balance():
    assert charge_balanced(Composition("NaCl")) and charge_balanced(Composition("Fe2O3"))
    assert not charge_balanced(Composition("NaCl2"))
    assert charge_balanced(Composition("Cu3Au"))  # all metals: an alloy


def test_scores_of_a_real_crystal_garbage_and_overlapping_atoms(service):
    overlapping = "NaCl\nSpacegroup: P1\nabc: 5.00 5.00 5.00\nangles: 90.00 90.00 90.00\nSites (2)\nNa 0.000 0.000 0.000 1a\nCl 0.040 0.000 0.000 1a"
    texts = [encode(ROCKSALT), "Spacegroup: what", overlapping, encode(NACL_CSCL_TYPE)]
    scores, reasons = service(texts)
    good, garbage, dense, other = scores
    assert good["parsed"] == good["valid_crystal"] == 1.0 and good["spacegroup"] == 225.0 and good["n_atoms"] == 8.0
    assert good["e_hull"] == pytest.approx(0.0, abs=1e-6)  # it is itself the NaCl reference phase
    assert garbage == {"parsed": 0.0, "struct_valid": 0.0, "comp_valid": 0.0, "valid_crystal": 0.0}
    assert "needs at least 6 lines" in reasons[1]
    assert dense["parsed"] == 1.0 and dense["struct_valid"] == 0.0 and "e_hull" not in dense and "apart" in reasons[2]
    assert other["valid_crystal"] == 1.0 and other["e_hull"] > 0.0  # the CsCl type is above rock salt for NaCl
    assert all(math.isfinite(v) for s in scores for v in s.values())
    again, _ = service(texts)
    assert again == scores and service.cached.hits >= 2  # scored structures come from the cache


def test_worker_processes_score_exactly_as_in_process(tmp_path):
    """One scoring process per core gives the same scores and reasons as scoring in this process."""
    overlapping = "NaCl\nSpacegroup: P1\nabc: 5.00 5.00 5.00\nangles: 90.00 90.00 90.00\nSites (2)\nNa 0.000 0.000 0.000 1a\nCl 0.040 0.000 0.000 1a"
    texts = [encode(ROCKSALT), "Spacegroup: what", overlapping, encode(NACL_CSCL_TYPE), encode(CSCL), "",
             encode(ROCKSALT.copy().scale_lattice(ROCKSALT.volume * 1.2))]
    references = [("rocksalt", ROCKSALT), ("cscl", CSCL)]
    parallel = ScoringService(EnergySettings(relax=False), references, tmp_path / "parallel", workers=2)
    try:
        got, got_reasons = parallel(texts)
    finally:
        parallel.close()
    local, local_reasons = ScoringService(EnergySettings(relax=False), references, tmp_path / "local")(texts)
    assert [set(s) for s in got] == [set(s) for s in local]
    for a, b in zip(got, local):
        assert a == pytest.approx(b, abs=1e-5)
    assert got_reasons == local_reasons
    assert sum("e_hull" in s for s in got) == 4


def test_unphysically_dense_cell_gets_no_energy_and_no_crash(service):
    # One atom in a 1.2 A cube passes the 0.5 A rule but packs 1.7 A^3 per atom: CHGNet is not asked.
    text = "H\nSpacegroup: P1\nabc: 1.20 1.20 1.20\nangles: 90.00 90.00 90.00\nSites (1)\nH 0.000 0.000 0.000 1a"
    (scores,), (reason,) = service([text])
    assert scores["struct_valid"] == 1.0 and "e_hull" not in scores and "per atom" in reason


def test_elemental_reference_is_the_lowest_decoration(service):
    hull = service.hull
    assert set(element_decorations("Na")) == {"fcc", "bcc", "hcp", "sc", "diamond", "dimer"}
    hull.diagram(["Na", "Cl"])
    na = [v["energy_per_atom"] for k, v in hull.cache.items() if k.startswith("element:Na:")]
    assert len(na) == 6
    entry = next(e for e in hull.diagram(["Na", "Cl"]).stable_entries if e.composition.reduced_formula == "Na")
    assert entry.energy_per_atom == pytest.approx(min(na))
    saved = json.loads(hull.path.read_text())
    assert "compound:rocksalt" in saved and "compound:cscl" not in saved  # only what the Na-Cl system needs


def test_reference_cache_is_reused(service, tmp_path):
    hull = ReferenceHull(service.hull.energy, service.hull.compounds, service.hull.path.parent)
    hull.e_above_hull(Composition("NaCl"), -3.0)
    assert hull.computed == 0


def test_novelty_uniqueness_and_space_group_match():
    novelty = NoveltyChecker([ROCKSALT])
    texts = [encode(ROCKSALT), encode(NACL_CSCL_TYPE), encode(NACL_CSCL_TYPE), "junk"]
    out = set_scores(texts, [225, 225, 221, None], novelty)
    assert [o["novel"] for o in out] == [0.0, 1.0, 1.0, 0.0]
    assert [o["unique"] for o in out] == [1.0, 1.0, 0.0, 0.0]
    assert [o["sg_match"] for o in out] == [1.0, 0.0, 1.0, 0.0]


def test_summarize_rates_and_sun():
    samples = [
        {"parsed": 1, "valid_crystal": 1, "e_hull": -0.01, "unique": 1, "novel": 1},  # S.U.N.
        {"parsed": 1, "valid_crystal": 1, "e_hull": 0.05, "unique": 1, "novel": 1},   # metastable S.U.N. only
        {"parsed": 1, "valid_crystal": 0, "e_hull": -0.5, "unique": 1, "novel": 1},   # invalid: counts nowhere
        {"parsed": 0},
    ]
    scored = [Candidate(prompt_id="unconditional", prompt="p", output="x", scores=s) for s in samples]
    scored += [Candidate(prompt_id="sg=225", prompt="p", output="x", scores={"sg_match": v}, metadata={"requested_sg": 225})
               for v in (1.0, 0.0)]
    m = summarize_samples(scored)
    assert m["valid"] == 0.5 and m["stable"] == 0.25 and m["metastable"] == 0.5
    assert m["sun"] == 0.25 and m["msun"] == 0.5 and m["sg_match"] == 0.5
    assert m["sun_low"] <= m["sun"] <= m["sun_high"]
    assert m["samples"] == 4 and m["sg_samples"] == 2 and m["median_e_hull"] == pytest.approx(-0.01)
