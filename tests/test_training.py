"""Lightning owns the loop: exact resume from a checkpoint, CSV logs, and 2-process DDP on CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train_script import Crash, run

ROOT = Path(__file__).resolve().parents[1]


def _weights(folder) -> dict:
    return torch.load(Path(folder) / "lora.pt")


@pytest.mark.parametrize("crash_after", [2, 3])  # at an epoch boundary (2 steps/epoch) and mid-epoch
def test_resume_after_a_crash_is_exact(tmp_path, crash_after):
    run(str(tmp_path / "straight"), steps=6, devices=1, batch=4)
    with pytest.raises(Crash):
        run(str(tmp_path / "resumed"), steps=6, devices=1, batch=4, checkpoint_every=1, crash_after=crash_after)
    assert (tmp_path / "resumed" / "checkpoints" / "last.ckpt").is_file()
    run(str(tmp_path / "resumed"), steps=6, devices=1, batch=4, checkpoint_every=1)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys() and a
    assert sorted(p.name for p in (tmp_path / "resumed" / "logs").iterdir()) == ["version_0", "version_1"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


def test_csv_logger_writes_trl_metric_names(tmp_path):
    run(str(tmp_path), steps=3, devices=1, batch=4)
    header = (tmp_path / "logs" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in ("train/loss", "train/rewards/chosen", "train/rewards/rejected", "train/rewards/accuracies",
                 "train/rewards/margins", "train/logps/chosen", "train/logps/rejected"):
        assert name in header, name


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = str(ROOT / "tests" / "train_script.py")
    for out, devices, batch in (("one", 1, 4), ("two", 2, 2)):
        proc = subprocess.run([sys.executable, script, str(tmp_path / out), "4", str(devices), str(batch)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    moved = max((v - torch.zeros_like(v)).abs().max().item() for k, v in a.items() if "lora_B" in k)
    assert moved > 1e-3  # training happened
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)
