"""The core demo end to end at CI size, and its command-line contract."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared.demo import UpperFirstLetter, main
from shared.records import Pair, read_jsonl


def test_reward_scores_the_rule_and_never_raises():
    r = UpperFirstLetter()
    scores = r(["say apple:"] * 4, [" A", " a", " q", None], [{"word": "apple"}] * 4)
    assert [s["rule"] for s in scores] == [1.0, 0.5, 0.0, 0.0]
    assert [s["valid"] for s in scores] == [1.0, 1.0, 1.0, 0.0]


@pytest.mark.slow
def test_demo_runs_the_whole_loop_and_writes_the_run_folder(tmp_path):
    results = main(["data.words=80", "data.heldout=20", "sft.steps=40", "dpo.steps=5", "dpo.samples=2",
                    "seeds=[0]", f"run_dir={tmp_path}"])
    assert len(results) == 1 and 0 <= results[0]["dpo"]["rule_rate"] <= 1
    seed = tmp_path / "seed0"
    for name in ("candidates.jsonl", "pairs.jsonl", "rule_rate.png", "sft/training.png", "dpo/training.png",
                 "model/config.json", "sft/checkpoints/last.ckpt", "dpo/checkpoints/last.ckpt"):
        assert (seed / name).exists(), name
    pairs = read_jsonl(seed / "pairs.jsonl", Pair)
    assert len(pairs) == results[0]["pairs"] > 0
    assert all(p.metadata["chosen_score"] > p.metadata["rejected_score"] for p in pairs)
    assert "dpo:" in (tmp_path / "config.yaml").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["results"][0]["seed"] == 0


def test_demo_cli_help_and_bad_keys():
    help_out = subprocess.run([sys.executable, "-m", "shared.demo", "--help"], capture_output=True, text=True)
    assert help_out.returncode == 0
    for option in ("--dpo.loss", "--sft.steps", "--model.lora.r", "--seeds"):
        assert option in help_out.stdout, option
    bad = subprocess.run([sys.executable, "-m", "shared.demo", "dpo.betta=0.2"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "dpo.betta" in bad.stderr and "dpo.beta" in bad.stderr
