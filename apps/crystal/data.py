"""Crystal data: pymatgen's shipped ordered structures (embedded default) or a folder of CIF files.

The embedded set is the 288 AFLOW prototypes (`pymatgen/analysis/prototypes/aflow_prototypes.json.gz`)
plus the ordered structures of `pymatgen/util/structures/`, keeping those whose elements CHGNet
covers (Z <= 94), whose conventional cell holds at most `max_atoms` atoms, and whose Wyckoff text
decodes back to the same structure (pymatgen StructureMatcher); duplicates (by StructureMatcher)
are dropped, first kept. The train / held-out split is seeded and by structure.
"""

from __future__ import annotations

import gzip
import json
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure

from apps.crystal.wyckoff import EncodeError, decode, encode
from shared.atomic import write_text
from shared.textfile import read_text

MAX_Z = 94  # CHGNet's element range


@dataclass
class DataArgs:
    """Where structures come from.

    Attributes:
        source: "embedded" (pymatgen's AFLOW prototypes and shipped structures) or a folder of *.cif files.
        max_atoms: keep structures whose conventional cell holds at most this many atoms.
        heldout_fraction: share of structures held out (never trained on; novelty is against the training set).
        max_train: use only the first N training structures (0: all).
        synthetic_per_structure: pyxtal-random crystals per training structure (its space group and composition)
            added to the SFT data to teach the format (0: none; see apps.crystal.data.synthetic_texts).
    """

    source: str = "embedded"
    max_atoms: int = 40
    heldout_fraction: float = 0.15
    max_train: int = 0
    synthetic_per_structure: int = 0


class DataError(ValueError):
    """A data source that cannot be read; the message names the file (and field) in one line."""


@dataclass
class Crystal:
    """One structure with its conditioning attributes and its Wyckoff text."""

    id: str
    structure: Structure
    text: str
    formula: str  # reduced formula
    spacegroup: int

    def to_dict(self) -> dict:
        return {"id": self.id, "formula": self.formula, "spacegroup": self.spacegroup, "text": self.text,
                "structure": self.structure.as_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Crystal:
        return cls(d["id"], Structure.from_dict(d["structure"]), d["text"], d["formula"], int(d["spacegroup"]))


def _package_file(package: str, *parts: str) -> Path:
    import importlib

    module = importlib.import_module(package)
    return Path(list(module.__path__)[0], *parts)


def embedded_structures() -> list[tuple[str, Structure]]:
    """Return (id, structure) for every structure pymatgen ships (AFLOW prototypes, then util/structures)."""
    out = []
    path = _package_file("pymatgen.analysis", "prototypes", "aflow_prototypes.json.gz")
    with gzip.open(path, "rt") as f:
        for entry in json.load(f):
            out.append((f"aflow:{entry['tags']['aflow']}", Structure.from_dict(entry["snl"])))
    for path in sorted(_package_file("pymatgen.util", "structures").glob("*.json")):
        out.append((f"pymatgen:{path.stem}", Structure.from_file(path)))
    return out


def cif_structures(folder: str | Path) -> list[tuple[str, Structure]]:
    """Return (id, structure) for every *.cif in a folder; a file that does not parse is a one-line DataError.

    The text is read as pymatgen reads a CIF (UTF-8, an undecodable byte replaced: old CIFs carry
    Latin-1 author names in comments), after shared.textfile's checks: a UTF-8 byte-order mark is
    skipped, binary data (NUL bytes) or UTF-16 text is refused naming the file and line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of CIF files")
    files = sorted(folder.glob("*.cif"))
    if not files:
        raise DataError(f"{folder}: no *.cif files")
    out = []
    for path in files:
        text = read_text(path, error=DataError, errors="replace")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(text, fmt="cif")
        except Exception as exc:  # pymatgen's CIF parser raises ValueError, KeyError, IndexError...
            reason = " ".join(str(exc).split())[:80]
            raise DataError(f"{path}: not a readable CIF ({type(exc).__name__}: {reason})") from None
        out.append((f"cif:{path.stem}", structure))
    return out


def _keep(structure: Structure) -> str | None:
    """Return why a structure is left out, or None to keep it."""
    if not structure.is_ordered:
        return "disordered"
    if max(e.Z for e in structure.composition.elements) > MAX_Z:
        return f"an element beyond Z={MAX_Z}"
    return None


def build_crystals(sources: list[tuple[str, Structure]], max_atoms: int, check_round_trip: bool = True) -> tuple[list[Crystal], dict[str, int]]:
    """Return the kept crystals (deduplicated, text checked) and counts of what was dropped and why."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    dropped: dict[str, int] = {}
    kept: list[Crystal] = []
    by_formula: dict[str, list[Crystal]] = {}
    for cid, structure in sources:
        structure = structure.copy()
        structure.remove_oxidation_states()
        reason = _keep(structure)
        text, sg = None, 0
        if reason is None:
            try:
                text = encode(structure)
            except EncodeError:
                reason = "no Wyckoff text"
        if reason is None and int(text.split("Sites (")[1].split(")")[0]) > max_atoms:
            reason = f"more than {max_atoms} atoms in the conventional cell"
        if reason is None and check_round_trip:
            back = decode(text)
            sg = back.spacegroup or 0
            if not back.ok or not matcher.fit(structure, back.structure):
                reason = "text does not decode to the same structure"
        formula = structure.composition.reduced_formula
        if reason is None and any(matcher.fit(structure, other.structure) for other in by_formula.get(formula, [])):
            reason = "duplicate"
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        crystal = Crystal(cid, structure, text, formula, sg or decode(text).spacegroup or 0)
        kept.append(crystal)
        by_formula.setdefault(formula, []).append(crystal)
    return kept, dropped


def split(crystals: list[Crystal], heldout_fraction: float, seed: int) -> tuple[list[Crystal], list[Crystal]]:
    """Return (train, heldout): a seeded shuffle by id, the first heldout_fraction held out."""
    order = sorted(crystals, key=lambda c: c.id)
    random.Random(seed).shuffle(order)
    n = round(len(order) * heldout_fraction)
    return order[n:], order[:n]


def load_crystals(source: str, max_atoms: int) -> tuple[list[Crystal], dict[str, int]]:
    """Return the crystals of `embedded` or of a CIF folder, with the counts of what was dropped."""
    sources = embedded_structures() if source == "embedded" else cif_structures(source)
    return build_crystals(sources, max_atoms)


def read_crystals(path: Path) -> list[Crystal]:
    """Read crystals written by write_crystals (the run folder's data/*.jsonl)."""
    with open(path) as f:
        return [Crystal.from_dict(json.loads(line)) for line in f if line.strip()]


def write_crystals(path: Path, crystals: list[Crystal]) -> None:
    """Write crystals as JSONL, atomically."""
    write_text(path, "".join(json.dumps(c.to_dict()) + "\n" for c in crystals))


def orbit_counts(text: str) -> tuple[list[str], list[int]]:
    """Species and their atom counts in the conventional cell, from a Wyckoff text."""
    species: list[str] = []
    counts: list[int] = []
    for line in text.splitlines()[5:]:
        element, *_, label = line.split()
        if element not in species:
            species.append(element)
            counts.append(0)
        counts[species.index(element)] += int(label[:-1])
    return species, counts


def synthetic_texts(train: list[Crystal], per_structure: int, seed: int) -> list[tuple[str, Crystal]]:
    """Return (text, source crystal) for pyxtal-random crystals with each training structure's space group and
    composition (random lattice, Wyckoff combination and coordinates), `per_structure` attempts each.

    Format data, not materials: 224 real structures spread over 92 space groups are too few for a small
    model to learn which Wyckoff positions each space group has; these texts are valid by construction.
    They are used for SFT only (never as references for the hull or novelty).
    """
    from pyxtal import pyxtal

    rng = random.Random(seed)
    out = []
    for c in train:
        species, counts = orbit_counts(c.text)
        for _ in range(per_structure):
            crystal = pyxtal()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    crystal.from_random(3, c.spacegroup, species, counts, max_count=5, random_state=rng.randrange(2**31))
                    if not crystal.valid:
                        continue
                    text = encode(crystal.to_pymatgen())
            except Exception:  # pyxtal cannot place these counts in this group, or the cell does not refine
                continue
            if decode(text).ok:
                out.append((text, c))
    return out
