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


class _Regression(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def _select_fit(tmp_path, scores, every, patience, steps):
    import lightning as L

    from shared.training import SelectBest, TrainerArgs, build_trainer, fit, make_loader

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = _Regression()

        def training_step(self, batch, batch_idx):
            return ((self.model.w - 10.0) ** 2).sum()  # w walks from 0 toward 10, a different value every step

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    seen = []
    module = Module()

    def score(m):
        seen.append(float(m.model.w))
        return scores[len(seen) - 1]

    select = SelectBest(score, every, patience)
    args = TrainerArgs(accelerator="cpu", devices="1", progress_bar=False, log_every_n_steps=1, logger="none",
                       max_steps=steps)
    fit(build_trainer(args, tmp_path, callbacks=[select]), module, make_loader(list(range(4)), 1, lambda b: b))
    return module, select, seen


def test_select_best_keeps_the_best_checked_weights_and_stops_on_patience(tmp_path):
    from shared.training import SelectBest

    # checks at steps 2, 4, 6, 8 score 0.1, 0.5, 0.3, 0.2: the weights of step 4 come back; patience 2 stops at 8
    module, select, seen = _select_fit(tmp_path / "a", [0.1, 0.5, 0.3, 0.2, 0.9], every=2, patience=2, steps=20)
    assert isinstance(select, SelectBest)
    assert [s for s, _ in select.history] == [2, 4, 6, 8] and select.best_step == 4 and select.best == 0.5
    assert module.model.w.item() == pytest.approx(seen[1]) and seen[1] != seen[-1]


def test_select_best_lets_the_final_weights_compete(tmp_path):
    module, select, seen = _select_fit(tmp_path / "b", [0.1, 0.2, 0.7], every=2, patience=0, steps=5)
    assert [s for s, _ in select.history] == [2, 4, 5] and select.best_step == 5
    assert module.model.w.item() == pytest.approx(seen[-1])
