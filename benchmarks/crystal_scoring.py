"""Crystal scoring throughput: apps.crystal's batched, cached scorer against a plain per-structure loop, side by side.

    python benchmarks/crystal_scoring.py            # every embedded structure's text + corrupted copies
    python benchmarks/crystal_scoring.py --quick    # 60 structures

Texts: the Wyckoff text of each embedded structure (apps.crystal.data, max 40 atoms) and a
corrupted copy of each (a wrong Wyckoff letter, a truncated line or a swapped space group), as a
model's samples mix good and bad text. Both sides use CHGNet 0.3.0 static energies (no relaxation,
so the model calls dominate) and the same decoder, validity rules and hull references.

- plain loop: per text, decode, check, one `CHGNet.predict_structure` call, E_hull; the way one
  writes it with the libraries alone.
- ours: `apps.crystal.reward.ScoringService` (CHGNet batched 16 structures per call) on a fresh
  cache, then the same texts again (every structure from the SQLite cache).
Energies must agree to 1e-4 eV/atom (batching changes nothing); the script exits 1 otherwise.
Reference-phase energies are computed once before timing and shared by both sides.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from apps.crystal.data import load_crystals  # noqa: E402
from apps.crystal.physics import EnergySettings  # noqa: E402
from apps.crystal.reward import MIN_DISTANCE_A, ScoringService, min_distance  # noqa: E402
from apps.crystal.wyckoff import decode  # noqa: E402


def corrupt(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    kind = rng.randrange(3)
    if kind == 0:
        lines[-1] = lines[-1][:-1] + "z"
    elif kind == 1:
        lines[rng.randrange(2, len(lines))] = lines[rng.randrange(2, len(lines))][:7]
    else:
        lines[1] = "Spacegroup: P6/mmm" if "Fm-3m" in lines[1] else "Spacegroup: Fm-3m"
    return "\n".join(lines)


def plain_loop(texts, service: ScoringService) -> list[float | None]:
    model, hull = service.hull.energy.model, service.hull
    out = []
    for t in texts:
        d = decode(t)
        if not d.ok or min_distance(d.structure) < MIN_DISTANCE_A:
            out.append(None)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = float(model.predict_structure(d.structure, task="e")["e"])
        hull.e_above_hull(d.structure.composition, e)
        out.append(e)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    crystals, _ = load_crystals("embedded", 40)
    if args.quick:
        crystals = crystals[:60]
    rng = random.Random(0)
    texts = [c.text for c in crystals] + [corrupt(c.text, rng) for c in crystals]
    with tempfile.TemporaryDirectory() as tmp:
        service = ScoringService(EnergySettings(relax=False), [(c.id, c.structure) for c in crystals], Path(tmp) / "a")
        for c in crystals:  # reference phases once, outside the timings
            service.hull.diagram([e.symbol for e in c.structure.composition.elements])
        start = time.perf_counter()
        theirs = plain_loop(texts, service)
        t_plain = time.perf_counter() - start
        start = time.perf_counter()
        ours, _ = service(texts)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        again, _ = service(texts)
        t_cached = time.perf_counter() - start
    bad = [i for i, (a, b) in enumerate(zip(theirs, ours))
           if (a is None) != ("energy_per_atom" not in b) or (a is not None and abs(a - b["energy_per_atom"]) > 1e-4)]
    figures = {"texts": len(texts), "with_energy": sum(e is not None for e in theirs),
               "plain_loop_s": round(t_plain, 2), "ours_s": round(t_ours, 2), "ours_cached_s": round(t_cached, 3),
               "plain_texts_per_s": round(len(texts) / t_plain, 1), "ours_texts_per_s": round(len(texts) / t_ours, 1),
               "speedup": round(t_plain / t_ours, 2), "cached_speedup": round(t_plain / t_cached, 1),
               "energy_disagreements": len(bad)}
    print(f"{len(texts)} texts ({figures['with_energy']} with an energy): plain loop {t_plain:.1f} s, "
          f"ours {t_ours:.1f} s ({figures['speedup']}x), ours from cache {t_cached:.2f} s ({figures['cached_speedup']}x)")
    print(json.dumps(figures))
    if bad or again != ours:
        print(f"disagreements at {bad[:10]}" if bad else "cached scores differ from fresh ones", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
