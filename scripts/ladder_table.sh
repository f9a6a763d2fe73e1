#!/usr/bin/env bash
# Reproduce the results table of docs/apps/ladder.md on the embedded default (CPU, 2 cores): the run
# (plain SFT, RAFT, graph-edit DPO with the curriculum), the DPO ablation without the curriculum from the
# same RAFT model, then one eval of every model on 100 held-out tasks (base plain and 1-shot, SFT, RAFT,
# RAFT + DPO, RAFT + DPO shuffled). Every step resumes if rerun; logs in runs/ladder/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/ladder
mkdir -p $OUT/logs
RUN=$OUT/raft_dpo
$PY -m apps.ladder.train --config configs/ladder/raft_dpo.yaml run_dir=$RUN > $OUT/logs/raft_dpo.log 2>&1 || exit 1
$PY -m apps.ladder.train --config configs/ladder/raft_dpo.yaml sft.steps=0 raft.init_from=$RUN/raft/model \
    pref.curriculum=false run_dir=$OUT/no_curriculum > $OUT/logs/no_curriculum.log 2>&1 || exit 1
# one call, one results table (table.md, results.json, results.csv, a PNG per metric) for every model
$PY -m apps.ladder.eval --run $RUN --model raft_dpo_shuffled=$OUT/no_curriculum --tasks 100 --out $RUN/eval \
    > $OUT/logs/eval.log 2>&1 || exit 1
cat $RUN/eval/table.md
