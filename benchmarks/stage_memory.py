"""Peak resident memory of each app's first training stage on its embedded default, cut to a few steps.

    python benchmarks/stage_memory.py                       # every app, as configured
    python benchmarks/stage_memory.py rag slides --steps 8  # some apps, more steps
    python benchmarks/stage_memory.py rag --set model.gradient_checkpointing=false   # compare a setting

For each app, runs `python -m apps.<app>.train --config <its embedded config> <stage>.steps=N
run_dir=<temporary folder> [--set ...]` in a process of its own, stops it as soon as the stage has
written <stage>/resources.json, and prints the stage's time and its own peak resident memory (what
`shared.resources` records in every run) beside the process's maximum resident memory up to then
(the kernel's figure, which includes loading the data and the model). The model, batch size and
sequence lengths are the embedded default's; only the number of steps is cut, so the peak is that
of the first N batches: a full run meets longer batches, and later stages (sampling, preference
fits, evaluation) have peaks of their own. The apps' docs give full runs' per-stage figures where
they were measured (`python -m shared.resources RUN`).

The last line is JSON: {app: {"stage", "steps", "seconds", "stage_peak_mb", "process_max_mb", "losses"}}, the
losses being the stage's logged training loss per step: a memory setting that leaves the maths alone
(gradient checkpointing, the allocator threshold) must leave them unchanged.
Linux only (/proc, wait4).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# app -> (embedded config, first training stage: its folder and its config section)
PROBES = {
    "codegen": ("configs/codegen/dstc.yaml", "sft"),
    "crystal": ("configs/crystal/plaid.yaml", "sft"),
    "rag": ("configs/rag/pa_rag.yaml", "sft"),
    "ladder": ("configs/ladder/raft_dpo.yaml", "sft"),
    "slides": ("configs/slides/dpo.yaml", "sft"),
    "simulmt": ("configs/simulmt/simulpl.yaml", "sft"),
    "recsys": ("configs/recsys/onerec.yaml", "sft"),
    "t2i": ("configs/t2i/ospo.yaml", "sft"),
    "t2v": ("configs/t2v/ipo.yaml", "sft"),
    "videollm": ("configs/videollm/temple.yaml", "pretrain"),
}


def probe(app: str, steps: int, extra: list[str], timeout_s: float) -> dict:
    """Run the app's first stage for `steps` steps in its own process; return its figures."""
    config, stage = PROBES[app]
    with tempfile.TemporaryDirectory(prefix=f"stage_memory_{app}_") as tmp:
        run = Path(tmp) / "run"
        record = run / stage / "resources.json"
        cmd = [sys.executable, "-m", f"apps.{app}.train", "--config", str(ROOT / config), f"{stage}.steps={steps}",
               "trainer.log_every_n_steps=1", f"run_dir={run}", *extra]
        start = time.perf_counter()
        log = open(Path(tmp) / "stderr.txt", "w+")  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        finished = False
        while True:  # reaped with wait4, not Popen.poll: wait4 also gives the child's maximum RSS
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                finished = True
                break
            if record.is_file() or time.perf_counter() - start > timeout_s:
                os.killpg(proc.pid, signal.SIGKILL)  # the stage is recorded; what follows it is not measured
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.5)
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        stderr = log.read()
        log.close()
        if not record.is_file():
            why = "timed out" if not finished else f"exited {proc.returncode}: {stderr.strip()[-400:]}"
            raise SystemExit(f"{app}: {stage} stage wrote no resources.json ({why})")
        fit = json.loads(record.read_text())["fit"]
        return {"stage": stage, "steps": steps, "seconds": fit["seconds"], "stage_peak_mb": fit["peak_rss_mb"],
                "process_max_mb": round(usage.ru_maxrss / 1024, 1), "wall_s": round(time.perf_counter() - start, 1),
                "losses": logged_losses(run / stage)}


def logged_losses(stage_dir: Path) -> list[float]:
    """Return the stage's per-step training losses from its CSV log (to check that a setting left them unchanged)."""
    losses = []
    for path in sorted(stage_dir.glob("logs/*/metrics.csv")):
        with path.open() as handle:
            losses += [float(row["train/loss"]) for row in csv.DictReader(handle) if row.get("train/loss")]
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("apps", nargs="*", metavar="APP", help=f"apps to probe (default: all of {', '.join(PROBES)})")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps of the stage")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every probed app (repeatable)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for one app's stage")
    args = parser.parse_args()
    unknown = [a for a in args.apps if a not in PROBES]
    if unknown:
        parser.error(f"unknown app {unknown[0]!r} (apps: {', '.join(PROBES)})")
    apps = args.apps or list(PROBES)
    results = {}
    print(f"| app | stage ({args.steps} steps) | seconds | stage peak RSS (GB) | process max RSS (GB) |"
          f"{' settings |' if args.set else ''}", flush=True)
    print(f"|---|---|---|---|---|{'---|' if args.set else ''}", flush=True)
    for app in apps:
        r = results[app] = probe(app, args.steps, args.set, args.timeout)
        print(f"| {app} | {r['stage']} | {r['seconds']:.0f} | {r['stage_peak_mb'] / 1024:.2f} | "
              f"{r['process_max_mb'] / 1024:.2f} |{' ' + ' '.join(args.set) + ' |' if args.set else ''}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
