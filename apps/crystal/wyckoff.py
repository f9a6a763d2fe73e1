"""PLaID++'s Wyckoff text format, encoded from a pymatgen Structure with pyxtal and decoded back.

    Na4Cl4
    Spacegroup: Fm-3m
    abc: 5.69 5.69 5.69
    angles: 90.00 90.00 90.00
    Sites (8)
    Na 0.000 0.000 0.000 4a
    Cl 0.500 0.500 0.500 4b

Line 1 is pyxtal's formula of the conventional cell, then the Hermann-Mauguin symbol, lattice
lengths (Angstrom) and angles (degrees) to 2 decimals, the number of atoms in the cell, and one
line per Wyckoff orbit of the asymmetric unit: element, fractional coordinates (3 decimals),
multiplicity and letter. The encoder refines the structure (symmetry tolerance 0.01) before
pyxtal reads it, as andaero/PLaID's utils.get_crystal_string_wyckoff_pyx does; the decoder
rebuilds the cell from space group, lattice and orbits with pyxtal. Model output is untrusted:
`decode` never raises, it returns a reason when the text is not a crystal.
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from dataclasses import dataclass

from pymatgen.core import Element, Structure

SYMPREC = 0.01
MAX_ATOMS = 500  # a decoded cell larger than this is rejected before pyxtal builds it
MAX_LENGTH_A = 100.0
_LABEL = re.compile(r"^(\d+)([a-zA-Z])$")
_SITES = re.compile(r"^Sites \((\d+)\)$")


class EncodeError(ValueError):
    """The structure cannot be written in the Wyckoff format (disordered, or pyxtal cannot read its symmetry)."""


def encode(structure: Structure, symprec: float = SYMPREC) -> str:
    """Return the Wyckoff text of an ordered structure (its refined conventional cell)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
    from pyxtal import pyxtal

    if not structure.is_ordered:
        raise EncodeError(f"{structure.composition.reduced_formula}: disordered structures have no Wyckoff text")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refined = SpacegroupAnalyzer(structure, symprec).get_refined_structure()
        crystal = pyxtal()
        try:
            crystal.from_seed(refined, tol=0.01)
        except Exception:  # pyxtal raises bare Exceptions on symmetry it cannot place; PLaID retries tighter
            try:
                crystal.from_seed(refined, tol=0.0001)
            except Exception as exc:
                raise EncodeError(f"{structure.composition.reduced_formula}: pyxtal cannot read its symmetry ({exc})") from None
    para = crystal.lattice.get_para(degree=True)
    lines = [
        f"{crystal.formula}",
        f"Spacegroup: {crystal.group.symbol}",
        "abc: " + " ".join(f"{v:.2f}" for v in para[:3]),
        "angles: " + " ".join(f"{v:.2f}" for v in para[3:]),
        f"Sites ({len(refined)})",
    ]
    for site in crystal.atom_sites:
        lines.append(f"{site.specie} " + " ".join(f"{x:.3f}" for x in site.position) + f" {site.wp.get_label()}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Decoded:
    """A decoded text: the structure, or None and the reason it is not one; the requested space group number."""

    structure: Structure | None
    reason: str | None = None
    spacegroup: int | None = None

    @property
    def ok(self) -> bool:
        return self.structure is not None


def _floats(line: str, key: str, n: int) -> list[float] | str:
    if not line.startswith(f"{key}:"):
        return f"expected '{key}: ...', got {line[:40]!r}"
    parts = line.split(":", 1)[1].split()
    if len(parts) != n:
        return f"'{key}' needs {n} numbers, got {len(parts)}"
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return f"'{key}' has a non-number: {line[:60]!r}"
    if not all(math.isfinite(v) for v in values):
        return f"'{key}' has a non-finite number"
    return values


def decode(text: str) -> Decoded:
    """Return the structure the text describes, or the reason it describes none; never raises."""
    try:
        return _decode(text)
    except Exception as exc:  # pyxtal and pymatgen raise many kinds on odd input; all of them mean invalid
        return Decoded(None, f"cannot build the structure: {type(exc).__name__}: {str(exc)[:80]}")


@functools.lru_cache(maxsize=None)
def _permissive_tolerances():
    """pyxtal's distance tolerances scaled to 1%: distances are the validity reward's business, not the parser's.

    Built once (about 5 ms each time; read-only afterwards).
    """
    from pyxtal.tolerance import Tol_matrix

    return Tol_matrix(prototype="atomic", factor=0.01)


@functools.lru_cache(maxsize=512)
def _group(symbol: str):
    """The pyxtal space group of a symbol or number (built once per symbol: generating its operations is slow)."""
    from pyxtal.symmetry import Group

    return Group(int(symbol)) if symbol.isdigit() else Group(symbol)


def _decode(text: str) -> Decoded:
    from pyxtal import pyxtal
    from pyxtal.lattice import Lattice

    if not isinstance(text, str):
        return Decoded(None, "not text")
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    if len(lines) < 6:
        return Decoded(None, f"needs at least 6 lines, got {len(lines)}")
    if not lines[1].startswith("Spacegroup:"):
        return Decoded(None, f"line 2: expected 'Spacegroup: <symbol>', got {lines[1][:40]!r}")
    symbol = lines[1].split(":", 1)[1].strip()
    try:
        group = _group(symbol)
    except Exception:
        return Decoded(None, f"line 2: unknown space group {symbol[:20]!r}")
    if not 1 <= group.number <= 230:
        return Decoded(None, f"line 2: unknown space group {symbol[:20]!r}")
    abc = _floats(lines[2], "abc", 3)
    if isinstance(abc, str):
        return Decoded(None, f"line 3: {abc}", group.number)
    angles = _floats(lines[3], "angles", 3)
    if isinstance(angles, str):
        return Decoded(None, f"line 4: {angles}", group.number)
    if not all(0.5 < v <= MAX_LENGTH_A for v in abc):
        return Decoded(None, f"line 3: lattice lengths must lie in (0.5, {MAX_LENGTH_A:g}] Angstrom", group.number)
    if not all(5.0 < v < 175.0 for v in angles):
        return Decoded(None, "line 4: lattice angles must lie in (5, 175) degrees", group.number)
    sites_line = _SITES.match(lines[4])
    if not sites_line:
        return Decoded(None, f"line 5: expected 'Sites (<atoms>)', got {lines[4][:40]!r}", group.number)
    letters = {wp.get_label() for wp in group.Wyckoff_positions}
    orbits: dict[str, list[tuple[str, float, float, float]]] = {}
    counts: dict[str, int] = {}
    for i, line in enumerate(lines[5:], start=6):
        parts = line.split()
        if len(parts) != 5:
            return Decoded(None, f"line {i}: expected '<element> x y z <wyckoff>', got {line[:40]!r}", group.number)
        element, label = parts[0], parts[4]
        if not Element.is_valid_symbol(element):
            return Decoded(None, f"line {i}: unknown element {element[:10]!r}", group.number)
        try:
            xyz = [float(p) for p in parts[1:4]]
        except ValueError:
            return Decoded(None, f"line {i}: coordinates must be numbers", group.number)
        if not all(math.isfinite(v) for v in xyz):
            return Decoded(None, f"line {i}: coordinates must be finite", group.number)
        m = _LABEL.match(label)
        if not m:
            return Decoded(None, f"line {i}: Wyckoff position {label[:10]!r} is not <multiplicity><letter>", group.number)
        if label not in letters:
            return Decoded(None, f"line {i}: space group {group.symbol} has no Wyckoff position {label}", group.number)
        orbits.setdefault(element, []).append((label, *xyz))
        counts[element] = counts.get(element, 0) + int(m.group(1))
    total = sum(counts.values())
    if total > MAX_ATOMS:
        return Decoded(None, f"{total} atoms in the cell, above the limit of {MAX_ATOMS}", group.number)
    if int(sites_line.group(1)) != total:
        return Decoded(None, f"line 5: says {sites_line.group(1)} atoms, the orbits hold {total}", group.number)
    lattice = Lattice.from_para(*abc, *angles, ltype=group.lattice_type)
    crystal = pyxtal()
    permissive = _permissive_tolerances()  # pyxtal's own distance check is switched off
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crystal.from_random(dim=3, group=group.number, species=list(orbits), numIons=list(counts.values()),
                            lattice=lattice, sites=list(orbits.values()), max_count=1, tm=permissive)
    if not crystal.valid:
        return Decoded(None, "pyxtal could not place the orbits in this space group", group.number)
    structure = crystal.to_pymatgen()
    if len(structure) != total:
        return Decoded(None, f"orbits expand to {len(structure)} atoms, not {total}", group.number)
    return Decoded(structure, None, group.number)
