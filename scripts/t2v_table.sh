#!/usr/bin/env bash
# Reproduce the tables of docs/apps/t2v.md on the embedded default (CPU, 2 cores): the critic validation (rule
# critic, and a learned critic trained on a label file of rendered clips), then the IPO run (SFT, two rounds of
# DPO labelling and two of KTO labelling, the eval of every model on held-out prompts). Every step resumes if
# rerun; logs in runs/t2v/logs/. Then Prompt-A-Video on the IPO run's SFT video model.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=runs/t2v
mkdir -p $OUT/logs
$PY -m apps.t2v.critic labels --per-category 40 --seed 0 --out $OUT/critic/train_labels > $OUT/logs/labels.log 2>&1 || exit 1
$PY -m apps.t2v.critic labels --per-category 20 --seed 1 --out $OUT/critic/heldout_labels >> $OUT/logs/labels.log 2>&1 || exit 1
$PY -m apps.t2v.learned_critic --labels $OUT/critic/train_labels/labels.jsonl \
    --heldout-labels $OUT/critic/heldout_labels/labels.jsonl --out $OUT/critic/learned --steps 600 \
    > $OUT/logs/learned_critic.log 2>&1 || exit 1
$PY -m apps.t2v.critic validate --per-category 20 --seed 1 --learned $OUT/critic/learned/model \
    --out $OUT/critic/validation > $OUT/logs/validation.log 2>&1 || exit 1
cat $OUT/critic/validation/critic_accuracy.md
TIME=""  # GNU time gives the run's peak memory where it is installed
[ -x /usr/bin/time ] && TIME="/usr/bin/time -v"
$TIME $PY -m apps.t2v.train --config configs/t2v/ipo.yaml run_dir=$OUT/ipo > $OUT/logs/ipo.log 2>&1 || exit 1
cat $OUT/ipo/eval/table.md
# Prompt-A-Video on top of the IPO run's SFT video model: evolution, booster SFT, two DPO rounds, the eval.
$TIME $PY -m apps.t2v.train --config configs/t2v/prompt_a_video.yaml sft.init_from=$OUT/ipo/sft/model \
    run_dir=$OUT/prompt_a_video > $OUT/logs/prompt_a_video.log 2>&1 || exit 1
cat $OUT/prompt_a_video/eval/table.md
