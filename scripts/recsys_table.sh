#!/usr/bin/env bash
# Reproduce the results tables of docs/apps/recsys.md on the embedded default (CPU, 2 cores): the run
# (semantic IDs, SFT, SASRec, reward model, three IPA rounds), a second IPA training seed from the same
# SFT model (its reward model and SASRec retrained with seed 1), then one eval of every model on all 943
# held-out users. Every step resumes if rerun; logs in runs/recsys/logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/recsys
mkdir -p $OUT/logs
RUN=$OUT/onerec
$PY -m apps.recsys.train --config configs/recsys/onerec.yaml run_dir=$RUN > $OUT/logs/onerec.log 2>&1 || exit 1
$PY -m apps.recsys.train --config configs/recsys/onerec.yaml run_dir=$OUT/onerec_seed1 seed=1 \
    sft.init_from=$RUN/sft/model ids.init_from=$RUN/ids/semantic_ids.json > $OUT/logs/onerec_seed1.log 2>&1 || exit 1
$PY -m apps.recsys.eval --run $RUN --model onerec_ipa_r3_seed1=$OUT/onerec_seed1/ipa/round_002/checkpoint/model \
    > $OUT/logs/eval.log 2>&1 || exit 1
cat $RUN/eval/table.md
