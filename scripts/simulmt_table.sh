#!/usr/bin/env bash
# Reproduce the results of docs/apps/simulmt.md on the embedded default (CPU, 2 cores): the SimulPL recipe
# (multi-task SFT, then SimulPL and the plain-DPO ablation) trained with three seeds (model init, data order
# and sampling; the same generated sentences), then one eval of the three runs together: wait-k 1..9 with
# each run's SFT model and every model's own policy at five thresholds, on the 300 held-out sentences.
# About 15 minutes per run and 5 for the eval. Every step resumes if rerun; logs in runs/simulmt/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/simulmt
mkdir -p $OUT/logs
RUNS=()
for seed in 0 1 2; do
  run=$OUT/seed$seed
  [ "$seed" = 0 ] && run=$OUT/simulpl   # seed 0 is the embedded default's run (make simulmt)
  $PY -m apps.simulmt.train --config configs/simulmt/simulpl.yaml seed=$seed model.seed=$seed run_dir=$run \
      > $OUT/logs/train_seed$seed.log 2>&1 || exit 1
  RUNS+=(--run "$run")
done
$PY -m apps.simulmt.eval "${RUNS[@]}" --out $OUT/eval > $OUT/logs/eval.log 2>&1 || exit 1
cat $OUT/eval/table.md $OUT/eval/corpus.md
