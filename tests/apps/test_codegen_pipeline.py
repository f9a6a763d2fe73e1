"""End to end at CI size: SFT + DSTC and SFT + Posterior-GRPO on a tiny model and four embedded tasks.

The tiny byte-level model is fine-tuned until it has memorised the four tasks' reference code and
asserts, so that its temperature-1.2 samples mix correct and corrupted programs: that is what gives
the pass matrix different row counts and the GRPO groups different rewards.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from apps.codegen.train import main
from shared.records import Pair, read_jsonl

TINY = ["model.source=tiny", "model.hidden_size=96", "model.num_layers=2", "model.num_heads=4",
        "model.intermediate_size=192", "model.max_position_embeddings=1024", "model.lora.r=0",
        "data.max_train_tasks=4", "data.max_heldout_tasks=3", "sft.steps=150", "sft.lr=0.003", "sft.batch_size=8",
        "sample.temperature=1.2", "sample.top_p=1.0", "sample.max_new_tokens=160", "eval.max_new_tokens=160",
        "trainer.log_every_n_steps=1", "sandbox.timeout_s=3"]


@pytest.mark.slow
def test_dstc_pipeline_runs_and_resumes(tmp_path):
    run = tmp_path / "dstc"
    args = TINY + ["recipe=dstc", "sft.formats=[code,tests]", "sample.n=6", "dstc.test_samples=3",
                   "pref.steps=4", "pref.batch_size=2", f"run_dir={run}"]
    summary = main(args)
    pairs = read_jsonl(run / "dstc" / "round_000" / "pairs.jsonl", Pair)
    assert pairs, "no DSTC pairs were built"
    for p in pairs:
        assert p.chosen.startswith("```python") and p.metadata["chosen_passed"] > p.metadata["rejected_passed"]
    assert (run / "sft" / "model" / "config.json").is_file()
    final = json.loads((run / "final_model.json").read_text())
    assert (run / "dstc") in __import__("pathlib").Path(final["path"]).parents
    assert 0.0 <= summary["heldout"]["pass@1"] <= 1.0
    # A rerun finds every stage complete and gives the same result without retraining.
    again = main(args)
    assert again["heldout"] == summary["heldout"]


@pytest.mark.slow
def test_posterior_grpo_pipeline(tmp_path):
    run = tmp_path / "pgrpo"
    summary = main(TINY + ["recipe=grpo", "sft.formats=[reasoning]", "reward_model.steps=3", "reward_model.lora_r=0",
                           "reward_model.pairs_per_task=3", "grpo.steps=2", "grpo.prompts_per_step=2",
                           "grpo.group_size=3", f"run_dir={run}"])
    assert summary["mode"] == "reasoning"
    assert (run / "reward_model" / "head.pt").is_file()
    accuracy = json.loads((run / "reward_model" / "heldout_accuracy.json").read_text())
    assert 0.0 <= accuracy["accuracy"] <= 1.0 and {"accuracy/factual", "accuracy/logic", "accuracy/coherence"} <= set(accuracy)
    rows = [json.loads(line) for f in sorted((run / "grpo" / "samples").glob("*.jsonl")) for line in f.read_text().splitlines()]
    assert len(rows) == 2 * 2 * 3 and all({"completion", "reward", "advantage"} <= set(r) for r in rows)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "apps.codegen.train", *args], capture_output=True, text=True, timeout=600)


def test_wrong_config_key_and_malformed_task_file_are_one_line_errors(tmp_path):
    bad_key = _cli("dstc.steps_typo=3", f"run_dir={tmp_path / 'a'}")
    assert bad_key.returncode == 2 and "steps_typo" in bad_key.stderr and "Traceback" not in bad_key.stderr
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"task_id": "t/1", "prompt": "def f():\\n", "entry_point": "f", "test": "def check(c): pass"}\n{oops\n')
    bad_file = _cli(f"data.train={tasks}", f"run_dir={tmp_path / 'b'}")
    assert bad_file.returncode == 2 and "Traceback" not in bad_file.stderr
    assert f"{tasks}:2" in bad_file.stderr and len(bad_file.stderr.strip().splitlines()) == 1
