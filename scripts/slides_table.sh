#!/usr/bin/env bash
# Reproduce the results table of docs/apps/slides.md on the embedded default (CPU, 2 cores): the run (SFT,
# then one DPO round), a second DPO seed from the same SFT model, then one eval of every model on 24 held-out
# tasks (reference decks, base SmolLM2, SFT, DPO seeds 0 and 1). Every step resumes if rerun; logs in
# runs/slides/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/slides
mkdir -p $OUT/logs
RUN=$OUT/dpo
TIME=""  # GNU time gives the run's peak memory (docs/apps/slides.md) where it is installed
[ -x /usr/bin/time ] && TIME="/usr/bin/time -v"
$TIME $PY -m apps.slides.train --config configs/slides/dpo.yaml run_dir=$RUN > $OUT/logs/dpo.log 2>&1 || exit 1
$PY -m apps.slides.train --config configs/slides/dpo.yaml sft.init_from=$RUN/sft/model seed=1 \
    run_dir=$OUT/dpo_seed1 > $OUT/logs/dpo_seed1.log 2>&1 || exit 1
# one call, one results table (table.md, results.json, results.csv, a PNG per metric) for every model
$PY -m apps.slides.eval --run $RUN --model dpo_seed1=$OUT/dpo_seed1 --tasks 24 --out $RUN/eval \
    > $OUT/logs/eval.log 2>&1 || exit 1
cat $RUN/eval/table.md
