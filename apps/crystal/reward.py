"""Score generated Wyckoff texts: validity, CHGNet energy, energy above hull, space group; novelty and uniqueness.

Per text (`CrystalScorer`, cached on disk by text through shared.rewards.CachedReward):
- parsed: the text decodes to a structure (apps.crystal.wyckoff.decode; else `reason` says why).
- struct_valid: parsed, every interatomic distance >= 0.5 A and volume >= 0.1 A^3 (CDVAE's rule).
- comp_valid: a charge-balanced oxidation-state assignment exists (pymatgen's guess), or all elements are
  metals (an alloy); CDVAE's compositional validity with pymatgen in place of SMACT.
- valid: struct_valid and comp_valid.
- min_distance_A, n_atoms (energies only for cells with 3-200 A^3 per atom and at most 120 atoms), spacegroup (spglib through pymatgen, symprec 0.1, of the generated structure).
- energy_per_atom (eV/atom, CHGNet, after relaxation when configured) and e_hull (eV/atom above the local
  CHGNet hull, apps.crystal.physics), for structurally valid structures only; absent when not computed.
Per set (`set_scores`): novel (no training structure matches by StructureMatcher), unique (no earlier
structure of the same set matches), sg_match (the generated space group equals the requested one).
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Structure

from apps.crystal.physics import CHGNetEnergy, EnergySettings, ReferenceHull
from apps.crystal.wyckoff import decode
from shared.records import Candidate
from shared.rewards import VALID, CachedReward, ProcessPoolReward, normalize_batch

MIN_DISTANCE_A = 0.5
MIN_VOLUME_A3 = 0.1
MAX_ENERGY_ATOMS = 120  # larger cells are not relaxed (time); they keep no energy
# CHGNet's neighbour lists grow with density: a cell packed far beyond any real crystal (model garbage such as
# "abc: 0.9 0.9 0.9") would exhaust memory, so energies are computed only inside this volume per atom (A^3).
VOLUME_PER_ATOM_A3 = (3.0, 200.0)


@dataclass
class RewardArgs:
    """CHGNet scoring.

    Attributes:
        relax: relax each structure with CHGNet (FIRE) before taking its energy.
        relax_steps: maximum relaxation steps.
        fmax: relaxation force threshold in eV/A.
        cache_dir: where reference energies and scores are cached across runs ("": <run_dir>/../cache).
        workers: processes that decode, check and compute energies in parallel (each with its own
            CHGNet and one torch thread); 0: one per CPU core (at most 8); 1: in this process.
    """

    relax: bool = True
    relax_steps: int = 60
    fmax: float = 0.1
    cache_dir: str = ""
    workers: int = 0

    def worker_count(self) -> int:
        return min(os.cpu_count() or 1, 8) if self.workers <= 0 else self.workers


def spacegroup_of(structure: Structure, symprec: float = 0.1) -> int:
    """Return the space group number spglib finds (0 when it finds none)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:
        return 0


def min_distance(structure: Structure) -> float:
    if len(structure) == 1:
        a, b, c = structure.lattice.abc
        return float(min(a, b, c))
    d = structure.distance_matrix + np.eye(len(structure)) * 1e9
    return float(d.min())


@functools.lru_cache(maxsize=4096)
def _charge_balanced_formula(formula: str) -> bool:
    composition = Composition(formula)
    if all(e.is_metal for e in composition.elements):
        return True
    try:
        return bool(composition.oxi_state_guesses(max_sites=-1))
    except Exception:
        return False


def charge_balanced(composition: Composition) -> bool:
    """True when pymatgen finds a charge-neutral oxidation-state guess, or every element is a metal.

    Cached per reduced formula: a model's samples repeat compositions, and the guess is the slowest
    check after the energy.
    """
    try:
        return _charge_balanced_formula(composition.reduced_composition.formula)
    except Exception:
        return False


class TextAnalysis:
    """The per-text part of scoring, which needs no hull: decode, validity, space group, CHGNet energy.

    A `shared.rewards` Reward (batched, never raises per text, reasons in `last_errors`); each score
    dict also carries the structure's "formula" (a string) for the hull step. Picklable: a worker
    process loads its own CHGNet on first use, with `threads` torch threads.
    """

    aspects = ("parsed", "struct_valid", "comp_valid", "valid_crystal", "min_distance_A", "n_atoms", "spacegroup",
               "energy_per_atom")

    def __init__(self, settings: EnergySettings, energy: CHGNetEnergy | None = None, threads: int | None = None):
        self.settings, self._energy, self.threads = settings, energy, threads
        self.last_errors: list[str | None] = []

    def __getstate__(self) -> dict:
        return {"settings": self.settings, "_energy": None, "threads": self.threads, "last_errors": []}

    def warm_up(self) -> None:
        """Load CHGNet and pymatgen's tables (the charge-balance guess reads them on first use) by scoring two
        rock-salt texts (a worker calls this when it starts).

        The first CHGNet calls of a process are several times slower than later ones.
        """
        from pymatgen.core import Lattice

        from apps.crystal.wyckoff import encode

        rocksalt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        self(["", ""], [encode(rocksalt), encode(rocksalt.copy().scale_lattice(rocksalt.volume * 1.1))])

    @property
    def energy(self) -> CHGNetEnergy:
        if self._energy is None:
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            self._energy = CHGNetEnergy(self.settings)
        return self._energy

    def __call__(self, prompts: Sequence, outputs: Sequence, contexts: Sequence[dict] | None = None) -> list[dict]:
        results: list[dict] = []
        structures: list[tuple[int, Structure]] = []
        self.last_errors = []
        for i, text in enumerate(outputs):
            decoded = decode(text)
            if not decoded.ok:
                results.append({"parsed": 0.0, "struct_valid": 0.0, "comp_valid": 0.0, "valid_crystal": 0.0})
                self.last_errors.append(decoded.reason)
                continue
            s = decoded.structure
            try:
                dist = min_distance(s)
                struct_ok = dist >= MIN_DISTANCE_A and s.volume >= MIN_VOLUME_A3
                comp_ok = charge_balanced(s.composition)
                scores = {"parsed": 1.0, "struct_valid": float(struct_ok), "comp_valid": float(comp_ok),
                          "valid_crystal": float(struct_ok and comp_ok), "min_distance_A": min(dist, 100.0),
                          "n_atoms": float(len(s)), "spacegroup": float(spacegroup_of(s))}
                reason = None if struct_ok else f"atoms {dist:.2f} A apart (below {MIN_DISTANCE_A} A)"
                per_atom = s.volume / len(s)
                if struct_ok and not VOLUME_PER_ATOM_A3[0] <= per_atom <= VOLUME_PER_ATOM_A3[1]:
                    reason = f"{per_atom:.1f} A^3 per atom, outside {VOLUME_PER_ATOM_A3}: no energy"
                elif struct_ok and len(s) > MAX_ENERGY_ATOMS:
                    reason = f"{len(s)} atoms, above {MAX_ENERGY_ATOMS}: no energy"
                elif struct_ok:
                    structures.append((i, s))
            except Exception as exc:  # a structure pymatgen itself cannot analyse
                scores = {"parsed": 1.0, "struct_valid": 0.0, "comp_valid": 0.0, "valid_crystal": 0.0}
                reason = f"cannot analyse: {type(exc).__name__}"
            results.append(scores)
            self.last_errors.append(reason)
        energies = self.energy([s for _, s in structures]) if structures else []
        for (i, s), r in zip(structures, energies):
            if r.energy_per_atom is None:
                self.last_errors[i] = r.reason
                continue
            results[i]["energy_per_atom"] = r.energy_per_atom
            results[i]["formula"] = s.composition.formula
        return results


class CrystalScorer:
    """Score texts in batches (a `shared.rewards` Reward: aspects, batched __call__, never raises per text).

    The per-text work (`TextAnalysis`) runs in this process, or with `workers` > 1 in that many
    worker processes (shared.rewards.ProcessPoolReward: one torch thread and one CHGNet each, so
    decoding, checks, graph building and relaxations run in parallel across the cores; a crashed or
    hung worker scores its texts invalid). E_hull is computed here, against the one reference hull.
    """

    aspects = TextAnalysis.aspects + ("e_hull",)

    def __init__(self, hull: ReferenceHull, workers: int = 1, timeout_s: float = 600.0):
        self.hull = hull
        local = TextAnalysis(hull.energy.settings, energy=hull.energy)
        self.analysis = local if workers <= 1 else ProcessPoolReward(
            TextAnalysis(hull.energy.settings, threads=1), workers=workers, timeout_s=timeout_s, threads_per_worker=1)
        self.last_errors: list[str | None] = []

    def start(self) -> None:
        """Start the worker processes (each loads CHGNet) now rather than on the first call."""
        if isinstance(self.analysis, ProcessPoolReward):
            self.analysis.start()

    def close(self) -> None:
        if isinstance(self.analysis, ProcessPoolReward):
            self.analysis.close()

    def __call__(self, prompts: Sequence, outputs: Sequence, contexts: Sequence[dict] | None = None) -> list[dict[str, float]]:
        prompts, outputs, contexts = normalize_batch(prompts, outputs, contexts)
        # The pool gives each worker a contiguous chunk; dealing texts round-robin spreads the costly
        # ones (those that get an energy) evenly, since samples of one prompt tend to sit together.
        n, ways = len(outputs), getattr(self.analysis, "workers", 1)
        order = [i for start in range(ways) for i in range(start, n, ways)]
        dealt = self.analysis([prompts[i] for i in order], [outputs[i] for i in order], [contexts[i] for i in order])
        results: list[dict[str, float]] = [{} for _ in range(n)]
        self.last_errors = [None] * n
        for position, i in enumerate(order):
            results[i], self.last_errors[i] = dealt[position], self.analysis.last_errors[position]
        for i, r in enumerate(results):
            r.pop(VALID, None)  # the pool marks a crashed chunk's texts invalid; parsed = 0 already says so
            formula = r.pop("formula", None)
            if formula is None or "energy_per_atom" not in r:
                continue
            try:
                r["e_hull"] = self.hull.e_above_hull(Composition(formula), r["energy_per_atom"])
            except Exception as exc:  # an element with no reference phase
                self.last_errors[i] = f"no hull: {type(exc).__name__}: {str(exc)[:60]}"
        return results


def text_key(prompt, output, context) -> str | None:
    """Cache key: the text alone (the scores do not depend on the prompt)."""
    return hashlib.sha256(output.encode("utf-8")).hexdigest() if isinstance(output, str) else None


class ScoringService:
    """CHGNet, the reference hull and the cached scorer, built once per process; reports throughput."""

    def __init__(self, settings: EnergySettings, references: Sequence[tuple[str, Structure]], cache_dir: str | Path,
                 workers: int = 1):
        self.settings = settings
        self.hull = ReferenceHull(CHGNetEnergy(settings), references, cache_dir)
        self.scorer = CrystalScorer(self.hull, workers=workers)
        self.cached = CachedReward(self.scorer, Path(cache_dir) / f"scores-{settings.key()}", key_fn=text_key)
        self.seconds = 0.0
        self.scored = 0

    def __call__(self, texts: Sequence[str]) -> tuple[list[dict[str, float]], list[str | None]]:
        """Return (scores, reasons) per text; reasons are None for cache hits and fully scored texts."""
        start = time.perf_counter()
        scores = self.cached([""] * len(texts), list(texts))
        self.seconds += time.perf_counter() - start
        self.scored += len(texts)
        return scores, list(self.cached.last_errors)

    def start(self) -> None:
        """Start the scoring workers now (each loads CHGNet), not on the first call."""
        self.scorer.start()

    def close(self) -> None:
        self.scorer.close()

    def stats(self) -> dict[str, float]:
        return {"texts": self.scored, "seconds": round(self.seconds, 2),
                "texts_per_s": round(self.scored / self.seconds, 2) if self.seconds else 0.0,
                "cache_hits": self.cached.hits, "cache_misses": self.cached.misses,
                "reference_energies_computed": self.hull.computed}


class NoveltyChecker:
    """StructureMatcher against the training set, compared only within the same reduced formula."""

    def __init__(self, training: Sequence[Structure]):
        from pymatgen.analysis.structure_matcher import StructureMatcher

        self.matcher = StructureMatcher()
        self.by_formula: dict[str, list[Structure]] = {}
        for s in training:
            self.by_formula.setdefault(s.composition.reduced_formula, []).append(s)

    def matches(self, s: Structure, pool: Sequence[Structure]) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for other in pool:
                try:
                    if self.matcher.fit(s, other):
                        return True
                except Exception:
                    continue
        return False

    def novel(self, s: Structure) -> bool:
        return not self.matches(s, self.by_formula.get(s.composition.reduced_formula, []))


def set_scores(texts: Sequence[str], requested_sg: Sequence[int | None], novelty: NoveltyChecker) -> list[dict[str, float]]:
    """Return novel / unique / sg_match per text (all 0.0 for a text that does not decode)."""
    out = []
    seen: dict[str, list[Structure]] = {}
    for text, sg in zip(texts, requested_sg):
        decoded = decode(text)
        if not decoded.ok:
            out.append({"novel": 0.0, "unique": 0.0, "sg_match": 0.0})
            continue
        s = decoded.structure
        formula = s.composition.reduced_formula
        unique = not novelty.matches(s, seen.get(formula, []))
        seen.setdefault(formula, []).append(s)
        out.append({"novel": float(novelty.novel(s)), "unique": float(unique),
                    "sg_match": float(sg is not None and spacegroup_of(s) == sg)})
    return out


def score_candidates(candidates: Sequence[Candidate], service: ScoringService, novelty: NoveltyChecker) -> list[Candidate]:
    """Fill scores (physics per text, then novelty / uniqueness / space-group match within each condition)."""
    texts = [c.output for c in candidates]
    physics, reasons = service(texts)
    by_condition: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        by_condition.setdefault(c.prompt_id, []).append(i)
    extra: dict[int, dict[str, float]] = {}
    for idx in by_condition.values():  # uniqueness is counted within one condition's samples
        for i, s in zip(idx, set_scores([texts[i] for i in idx], [candidates[i].metadata.get("requested_sg") for i in idx],
                                        novelty)):
            extra[i] = s
    scored = []
    for i, c in enumerate(candidates):
        metadata = dict(c.metadata)
        if reasons[i]:
            metadata["reason"] = reasons[i]
        scored.append(replace(c, scores={**physics[i], **extra[i]}, metadata=metadata))
    return scored
