"""CHGNet energies per atom (static or after relaxation) and energy above a local CHGNet convex hull.

Units: energies in eV/atom, distances in Angstrom. CHGNet 0.3.0's pretrained weights ship inside
the `chgnet` package (no download). The hull of a chemical system is a pymatgen PhaseDiagram over
reference phases whose energies are computed with the same CHGNet settings: for each element the
lowest of six simple decorations (fcc, bcc, hcp, simple cubic, diamond, a dimer in a 12 A box) and
any training structure of that element alone; and every training compound inside the system.
Reference energies are computed on first use and cached on disk as JSON keyed by the settings, so
a later run (or the eval) reuses them. This is a stand-in for Materials Project's hull: absolute
E_hull values differ from MP's, but the same reference set scores every model alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element, Lattice, Structure

from shared.atomic import write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnergySettings:
    """How CHGNet energies are computed: relax (FIRE, cell and positions) for at most `steps` to `fmax` eV/A."""

    relax: bool = True
    steps: int = 60
    fmax: float = 0.1
    batch_size: int = 16

    def key(self) -> str:
        from chgnet import __version__

        text = json.dumps({"chgnet": __version__, "relax": self.relax, "steps": self.steps, "fmax": self.fmax})
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class EnergyResult:
    """Energy per atom (eV/atom) and the final structure, or the reason there is none."""

    energy_per_atom: float | None
    structure: Structure | None = None
    reason: str | None = None


class CHGNetEnergy:
    """Batched CHGNet energies per atom; never raises for one bad structure (its reason is returned)."""

    def __init__(self, settings: EnergySettings):
        from chgnet.model import CHGNet

        self.settings = settings
        self.model = CHGNet.load(verbose=False)
        self._optimizer = None

    def __call__(self, structures: Sequence[Structure]) -> list[EnergyResult]:
        if not structures:
            return []
        if self.settings.relax:
            return [self._relax(s) for s in structures]
        return self._static(list(structures))

    def _static(self, structures: list[Structure]) -> list[EnergyResult]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                preds = self.model.predict_structure(structures, task="e", batch_size=self.settings.batch_size)
            preds = preds if isinstance(preds, list) else [preds]
            return [self._result(float(np.asarray(p["e"]).reshape(-1)[0]), s) for p, s in zip(preds, structures)]
        except Exception:  # one structure spoils the batch: score them one by one
            if len(structures) == 1:
                return [self._one_static(structures[0])]
            return [self._one_static(s) for s in structures]

    def _one_static(self, s: Structure) -> EnergyResult:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = self.model.predict_structure(s, task="e")
            return self._result(float(np.asarray(pred["e"]).reshape(-1)[0]), s)
        except Exception as exc:
            return EnergyResult(None, None, f"CHGNet failed: {type(exc).__name__}: {str(exc)[:80]}")

    def _relax(self, s: Structure, relax_cell: bool = True) -> EnergyResult:
        from chgnet.model import StructOptimizer

        if self._optimizer is None:
            self._optimizer = StructOptimizer(model=self.model, optimizer_class="FIRE")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = self._optimizer.relax(s, fmax=self.settings.fmax, steps=self.settings.steps,
                                            relax_cell=relax_cell, verbose=False)
            final = out["final_structure"]
            return self._result(float(out["trajectory"].energies[-1]) / len(final), final)
        except Exception as exc:  # a relaxation that diverges (overlapping atoms, exploding cell)
            return EnergyResult(None, None, f"relaxation failed: {type(exc).__name__}: {str(exc)[:80]}")

    @staticmethod
    def _result(e: float, s: Structure) -> EnergyResult:
        if not math.isfinite(e):
            return EnergyResult(None, None, "non-finite energy")
        return EnergyResult(e, s)

    def relax_fixed_cell(self, s: Structure) -> EnergyResult:
        """Energy with the cell held fixed (a molecule in a box must not collapse its box)."""
        if not self.settings.relax:
            return self._one_static(s)
        return self._relax(s, relax_cell=False)


def element_decorations(symbol: str) -> dict[str, Structure]:
    """Return six simple one-element structures sized from the element's atomic radius."""
    el = Element(symbol)
    # Tabulated radii of light elements (O: 0.6 A) would pack cells far denser than any solid; relaxation fixes the size.
    r = max(1.0, float(el.atomic_radius or el.atomic_radius_calculated or 1.5))
    bond = 2 * float(el.atomic_radius or 1.0)
    s = [symbol]
    return {
        "fcc": Structure(Lattice.cubic(2 * math.sqrt(2) * r), s * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
        "bcc": Structure(Lattice.cubic(4 * r / math.sqrt(3)), s * 2, [[0, 0, 0], [0.5, 0.5, 0.5]]),
        "hcp": Structure(Lattice.hexagonal(2 * r, 2 * r * 1.633), s * 2, [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]),
        "sc": Structure(Lattice.cubic(2 * r), s, [[0, 0, 0]]),
        "diamond": Structure(Lattice.cubic(8 * r / math.sqrt(3)), s * 8, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                                                                       [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75],
                                                                       [0.25, 0.75, 0.75]]),
        "dimer": Structure(Lattice.cubic(12.0), s * 2, [[0, 0, 0], [bond / 12.0, 0, 0]]),
    }


class ReferenceHull:
    """Energy above the hull (eV/atom) against CHGNet reference phases, computed lazily and cached on disk.

    `compounds` are (id, structure) reference phases (the training set); elements get their
    decorations plus any one-element compound. The cache file is `cache_dir/references-<settings>.json`.
    """

    def __init__(self, energy: CHGNetEnergy, compounds: Sequence[tuple[str, Structure]], cache_dir: str | Path):
        self.energy = energy
        self.compounds = list(compounds)
        self.path = Path(cache_dir) / f"references-{energy.settings.key()}.json"
        self.cache: dict[str, dict] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.computed = 0  # reference energies computed (not read from the cache) by this object
        self._diagrams: dict[tuple[str, ...], object] = {}

    def _energies(self, items: list[tuple[str, Structure]], fixed_cell: set[str] = frozenset()) -> None:
        todo = [(k, s) for k, s in items if k not in self.cache]
        if not todo:
            return
        free = [(k, s) for k, s in todo if k not in fixed_cell]
        results = dict(zip([k for k, _ in free], self.energy([s for _, s in free])))
        for k, s in todo:
            if k in fixed_cell:
                results[k] = self.energy.relax_fixed_cell(s)
        for k, s in todo:
            r = results[k]
            self.cache[k] = {"formula": s.composition.formula, "energy_per_atom": r.energy_per_atom}
        self.computed += len(todo)
        write_json(self.path, self.cache)

    def _element_energy(self, symbol: str) -> float:
        decorations = {f"element:{symbol}:{name}": s for name, s in element_decorations(symbol).items()}
        own = {f"compound:{cid}": s for cid, s in self.compounds if {e.symbol for e in s.composition.elements} == {symbol}}
        self._energies(list({**decorations, **own}.items()), fixed_cell={f"element:{symbol}:dimer"})
        values = [self.cache[k]["energy_per_atom"] for k in (*decorations, *own)]
        values = [v for v in values if v is not None]
        if not values:
            raise ValueError(f"no reference energy for {symbol}")
        return min(values)

    def diagram(self, elements: Sequence[str]):
        """Return the PhaseDiagram of a chemical system (elements and the training compounds inside it)."""
        from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram

        key = tuple(sorted(set(elements)))
        if key not in self._diagrams:
            entries = [PDEntry(Composition(el), self._element_energy(el)) for el in key]
            inside = [(f"compound:{cid}", s) for cid, s in self.compounds
                      if len(s.composition.elements) > 1 and {e.symbol for e in s.composition.elements} <= set(key)]
            self._energies(inside)
            for k, s in inside:
                e = self.cache[k]["energy_per_atom"]
                if e is not None:
                    entries.append(PDEntry(s.composition, e * s.composition.num_atoms, name=k))
            self._diagrams[key] = PhaseDiagram(entries)
        return self._diagrams[key]

    def e_above_hull(self, composition: Composition, energy_per_atom: float) -> float:
        """Return E_hull in eV/atom (negative: below the reference hull)."""
        from pymatgen.analysis.phase_diagram import PDEntry

        diagram = self.diagram([e.symbol for e in composition.elements])
        entry = PDEntry(composition, energy_per_atom * composition.num_atoms)
        _, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True)
        return float(e_hull)

    def settings(self) -> dict:
        return asdict(self.energy.settings)
