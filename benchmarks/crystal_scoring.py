"""Crystal scoring throughput: apps.crystal's scoring service against a plain per-structure loop, side by side.

    python benchmarks/crystal_scoring.py                  # every embedded structure's text + corrupted copies
    python benchmarks/crystal_scoring.py --quick          # 60 structures
    python benchmarks/crystal_scoring.py --relax --quick  # with CHGNet relaxation (12 structures)

Texts: the Wyckoff text of each embedded structure (apps.crystal.data, max 40 atoms) and a
corrupted copy of each (a wrong Wyckoff letter, a truncated line or a swapped space group), as a
model's samples mix good and bad text. Both sides use CHGNet 0.3.0 energies, static by default or
relaxed with --relax (FIRE, cell and positions, 60 steps, fmax 0.1 eV/A: the training default),
and the same decoder, validity rules and hull references.

- plain loop: per text, decode, check, one `CHGNet.predict_structure` call (or one
  `StructOptimizer.relax`), E_hull; the way one writes it with the libraries alone, in one process
  with torch's default threads (one per core).
- ours: `apps.crystal.reward.ScoringService` with one worker process per core (each decodes,
  checks and computes energies with its own CHGNet, batched 16 structures per call when static),
  E_hull in the main process, on a fresh cache; then the same texts again (every score from the
  SQLite cache). The workers are started (CHGNet loaded) before timing, as the plain loop's CHGNet is.
Energies must agree to 1e-4 eV/atom; the script exits 1 otherwise. Reference-phase energies are
computed once before timing and shared by both sides, and each side first scores the texts of
`--warmup` other structures, untimed (a process's first CHGNet calls are several times slower).
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
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


def plain_loop(texts, service: ScoringService, relax: bool) -> list[float | None]:
    from chgnet.model import StructOptimizer

    model, hull, settings = service.hull.energy.model, service.hull, service.settings
    optimizer = StructOptimizer(model=model, optimizer_class="FIRE") if relax else None
    out = []
    for t in texts:
        d = decode(t)
        if not d.ok or min_distance(d.structure) < MIN_DISTANCE_A:
            out.append(None)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if relax:
                try:
                    result = optimizer.relax(d.structure, fmax=settings.fmax, steps=settings.steps, relax_cell=True,
                                             verbose=False)
                except Exception:
                    out.append(None)
                    continue
                e = float(result["trajectory"].energies[-1]) / len(result["final_structure"])
            else:
                e = float(model.predict_structure(d.structure, task="e")["e"])
        hull.e_above_hull(d.structure.composition, e)
        out.append(e)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--relax", action="store_true", help="relaxed energies (FIRE, 60 steps) instead of static")
    parser.add_argument("--structures", type=int, default=None,
                        help="structures to score (default: all; quick 60, quick with --relax 12)")
    parser.add_argument("--workers", type=int, default=0, help="our scoring processes (default: one per core)")
    parser.add_argument("--references-only", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=10,
                        help="structures (+ corrupted copies) each side scores before timing, not timed (default 10)")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores)
    workers = args.workers or cores
    crystals, _ = load_crystals("embedded", 40)
    warm, crystals = crystals[:args.warmup], crystals[args.warmup:]
    limit = args.structures or ((12 if args.relax else 60) if args.quick else None)
    if limit:
        crystals = crystals[:limit]
    rng = random.Random(0)
    texts = [c.text for c in crystals] + [corrupt(c.text, rng) for c in crystals]
    warm_texts = [c.text for c in warm] + [corrupt(c.text, rng) for c in warm]
    with contextlib.ExitStack() as stack:
        tmp = args.references_only or stack.enter_context(tempfile.TemporaryDirectory())
        # Reference-phase energies (which include every structure scored here, as training compounds)
        # are computed in another process and read from the hull's cache: a process that has already
        # run CHGNet on a structure scores it faster again, which would favour the plain loop.
        if not args.references_only:
            subprocess.run([sys.executable, __file__, "--references-only", tmp, *sys.argv[1:]], check=True)
        service = ScoringService(EnergySettings(relax=args.relax), [(c.id, c.structure) for c in warm + crystals],
                                 Path(tmp) / "a", workers=1 if args.references_only else workers)
        for c in warm + crystals:  # reference phases once, outside the timings
            service.hull.diagram([e.symbol for e in c.structure.composition.elements])
        if args.references_only:
            return
        start = time.perf_counter()
        service.start()
        t_start = time.perf_counter() - start
        plain_loop(warm_texts, service, args.relax)  # the first CHGNet calls of a process are slower: warm both
        service(warm_texts)
        start = time.perf_counter()
        theirs = plain_loop(texts, service, args.relax)
        t_plain = time.perf_counter() - start
        start = time.perf_counter()
        ours, _ = service(texts)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        again, _ = service(texts)
        t_cached = time.perf_counter() - start
        service.close()
    bad = [i for i, (a, b) in enumerate(zip(theirs, ours))
           if (a is None) != ("energy_per_atom" not in b) or (a is not None and abs(a - b["energy_per_atom"]) > 1e-4)]
    figures = {"mode": "relaxed" if args.relax else "static", "workers": workers, "cores": cores,
               "workers_start_s": round(t_start, 2), "texts": len(texts), "with_energy": sum(e is not None for e in theirs),
               "plain_loop_s": round(t_plain, 2), "ours_s": round(t_ours, 2), "ours_cached_s": round(t_cached, 3),
               "plain_texts_per_s": round(len(texts) / t_plain, 1), "ours_texts_per_s": round(len(texts) / t_ours, 1),
               "speedup": round(t_plain / t_ours, 2), "cached_speedup": round(t_plain / t_cached, 1),
               "energy_disagreements": len(bad)}
    print(f"{figures['mode']} energies, {workers} scoring workers on {cores} cores (started in {t_start:.1f} s); "
          f"{len(texts)} texts ({figures['with_energy']} with an energy): plain loop {t_plain:.1f} s, "
          f"ours {t_ours:.1f} s ({figures['speedup']}x), ours from cache {t_cached:.2f} s ({figures['cached_speedup']}x)")
    print(json.dumps(figures))
    if bad or again != ours:
        print(f"disagreements at {bad[:10]}" if bad else "cached scores differ from fresh ones", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
