#!/usr/bin/env bash
# Reproduce the results table of docs/apps/rag.md on the embedded default (CPU, 2 cores): the PA-RAG run
# (SFT + informativeness -> robustness -> citation), the robustness-only and citation-only ablations from
# the same SFT model (informativeness alone from SFT is the run's first stage), then one eval of every model
# on 60 held-out questions in four document settings (golden, +distractors, +misleading, BM25 top 5).
# Every step resumes if rerun; logs in runs/rag/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/rag
mkdir -p $OUT/logs
RUN=$OUT/pa_rag
SFT=$RUN/sft/model
$PY -m apps.rag.train --config configs/rag/pa_rag.yaml run_dir=$RUN > $OUT/logs/pa_rag.log 2>&1 || exit 1
for stage in robustness citation; do
  $PY -m apps.rag.train --config configs/rag/pa_rag.yaml "stages=[$stage]" sft.init_from=$SFT \
      run_dir=$OUT/only_$stage > $OUT/logs/only_$stage.log 2>&1 || exit 1
done
# one call, one results table (table.md, results.json, results.csv, a PNG per metric) for every model
$PY -m apps.rag.eval --run $RUN --model only_robustness=$OUT/only_robustness --model only_citation=$OUT/only_citation \
    --questions 60 --settings golden distract mislead retrieved --out $RUN/eval > $OUT/logs/eval.log 2>&1 || exit 1
cat $RUN/eval/table.md
