#!/usr/bin/env bash
# Reproduce the codegen results table of docs/apps/codegen.md on the embedded default (CPU, ~1.5 h on
# 2 cores): one shared SFT model, then DSTC-DPO, DSTC-KTO (on the DPO run's samples), outcome-only
# GRPO and Posterior-GRPO from it, then one eval of every model on the held-out split and HumanEval.
# Every step resumes if rerun; logs go to runs/codegen/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/codegen
mkdir -p $OUT/logs
SFT=$OUT/sft/sft/model
COMMON="data.max_heldout_tasks=20 sft.init_from=$SFT"

[ -f $SFT/DONE ] || $PY -m apps.codegen.train --config configs/codegen/dstc.yaml recipe=sft run_dir=$OUT/sft \
    data.max_heldout_tasks=20 > $OUT/logs/sft.log 2>&1
$PY -m apps.codegen.train --config configs/codegen/dstc.yaml $COMMON run_dir=$OUT/dstc > $OUT/logs/dstc.log 2>&1
$PY -m apps.codegen.train --config configs/codegen/dstc_kto.yaml $COMMON run_dir=$OUT/dstc_kto \
    dstc.reuse_samples_from=$OUT/dstc > $OUT/logs/dstc_kto.log 2>&1
$PY -m apps.codegen.train --config configs/codegen/grpo.yaml $COMMON run_dir=$OUT/grpo > $OUT/logs/grpo.log 2>&1
$PY -m apps.codegen.train --config configs/codegen/pgrpo.yaml $COMMON run_dir=$OUT/pgrpo > $OUT/logs/pgrpo.log 2>&1
MODELS=""
for m in base=smollm2@code sft=$SFT@code sft-reasoning=$SFT@reasoning dstc-dpo=$OUT/dstc dstc-kto=$OUT/dstc_kto \
         grpo=$OUT/grpo posterior-grpo=$OUT/pgrpo; do MODELS="$MODELS --model $m"; done
# one call, one results table (table.md, results.json, results.csv, a PNG per metric) for every model
$PY -m apps.codegen.eval $MODELS --tasks embedded:heldout --humaneval --max-new-tokens 192 --batch-size 32 \
    --out $OUT/eval > $OUT/logs/eval.log 2>&1
cat $OUT/eval/table.md
