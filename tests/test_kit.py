"""The app kit: config sections, resumable stages on a tiny model, entry-point helpers, and the apps built on them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from shared.config import help_text
from shared.config.schema import Schema
from shared.kit import (
    AppConfig,
    GroupRLArgs,
    PreferenceArgs,
    SampleArgs,
    SandboxArgs,
    SFTArgs,
    limit_pairs,
    policy_at,
    preference_round_fit,
    run_group_rl,
    run_sft,
    start_run,
)
from shared.loop import Round
from shared.models import ModelSpec, is_complete
from shared.records import Pair, RankedList
from shared.rewards import RewardFunction
from shared.training import TrainerArgs

TINY = ModelSpec(source="tiny", hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, seed=5)
TRAINER = TrainerArgs(accelerator="cpu", devices="1", progress_bar=False, log_every_n_steps=1, logger="csv")


def test_sample_temperature_schedule():
    s = SampleArgs(temperature=0.8)
    assert s.schedule(3) == [0.8, 0.8, 0.8]
    s = SampleArgs(temperatures=[0.7, 0.9])
    assert s.schedule(4) == [0.7, 0.9, 0.9, 0.9] and s.temperature_at(0) == 0.7


def test_sandbox_args_pass_read_only_paths_and_refuse_missing_ones(tmp_path):
    assert SandboxArgs().limits().read_only_paths == ()
    limits = SandboxArgs(timeout_s=2.0, read_only_paths=[str(tmp_path)]).limits()
    assert (limits.timeout_s, limits.read_only_paths) == (2.0, (str(tmp_path),))
    with pytest.raises(ValueError, match="does not exist"):
        SandboxArgs(read_only_paths=[str(tmp_path / "missing")]).limits()


@pytest.mark.parametrize("module, cls", [("apps.codegen.config", "CodegenConfig"), ("apps.crystal.config", "CrystalConfig"),
                                         ("apps.t2i.config", "T2IConfig"), ("apps.t2v.config", "T2VConfig"),
                                         ("apps.rag.config", "RagConfig"),
                                         ("apps.simulmt.config", "SimulConfig"), ("apps.ladder.config", "LadderConfig"),
                                         ("apps.recsys.config", "RecConfig"), ("apps.slides.config", "SlidesConfig")])
def test_every_app_option_is_documented_in_help(module, cls):
    config = getattr(__import__(module, fromlist=[cls]), cls)
    schema = Schema(config)
    undocumented = [k for k, o in schema.options.items() if not o.doc] + [k for k, g in schema.groups.items() if not g.doc]
    assert undocumented == []
    text = help_text(config, prog="x")
    assert all(f"--{k}" in text for k in schema.options)
    # the kit's sections are the ones the app composes
    assert {"sft.steps", "sft.lr", "sft.batch_size", "eval.seeds", "eval.resamples", "eval.level", "seed", "run_dir"} <= set(schema.options)


def test_sft_stage_trains_saves_and_is_skipped_when_complete(tmp_path, monkeypatch):
    import shared.resources as resources

    released = []
    monkeypatch.setattr(resources, "release_memory", lambda: released.append(1))
    monkeypatch.setattr(resources, "RELEASE_MIN_GROWTH_MB", 0.0)  # a tiny fit grows the process by little
    examples = lambda: [(f"say {w}:", f" {w}!") for w in ("cat", "dog", "sun", "sea")]  # noqa: E731
    folder = run_sft(tmp_path, TINY, SFTArgs(steps=3, lr=1e-2, batch_size=2), TRAINER, 0, examples)
    assert released == [1]  # freed memory handed back when the fit ended
    assert folder == tmp_path / "sft" / "model" and is_complete(folder) and (tmp_path / "sft" / "checkpoints" / "last.ckpt").is_file()
    usage = json.loads((tmp_path / "sft" / "resources.json").read_text())["fit"]
    assert usage["peak_rss_mb"] >= usage["rss_start_mb"] > 10 and usage["seconds"] > 0
    stamp = (folder / "DONE").stat().st_mtime_ns
    called = []
    assert run_sft(tmp_path, TINY, SFTArgs(steps=3), TRAINER, 0, lambda: called.append(1) or []) == folder
    assert called == [] and (folder / "DONE").stat().st_mtime_ns == stamp  # nothing recomputed
    assert run_sft(tmp_path, TINY, SFTArgs(init_from="elsewhere"), TRAINER, 0, examples) == Path("elsewhere")


@pytest.mark.parametrize("records", [
    [Pair(prompt=f"q{i}:", chosen=" yes", rejected=" no") for i in range(4)],
    [RankedList(prompt=f"q{i}:", outputs=[" a", " b", " c"], scores=[3.0, 2.0, 1.0]) for i in range(4)],
])
def test_preference_round_fit_trains_from_the_previous_round(tmp_path, records, capsys):
    start = run_sft(tmp_path / "start", TINY, SFTArgs(steps=0), TRAINER, 0, list)
    loss = "sigmoid" if isinstance(records[0], Pair) else "plackett_luce"
    fit = preference_round_fit(TINY, PreferenceArgs(steps=2, batch_size=2, loss=loss, lr=1e-2, max_pairs=3), TRAINER, start)
    round = Round(index=0, seed=1, dir=tmp_path / "round_000", schedule={}, checkpoint_dir=tmp_path / "round_000" / "ckpt")
    saved = fit(round, records, {}, None)
    assert "training on 3 of 4 pairs" in capsys.readouterr().out  # pref.max_pairs is applied by the stage
    assert is_complete(saved) and (round.dir / "fit" / "logs").is_dir()
    before, _ = policy_at(TINY, start, 0, lora=False)
    after, _ = policy_at(TINY, saved, 0, lora=False)
    assert any(not torch.equal(a, b) for a, b in zip(before.parameters(), after.parameters()))


def test_ordered_preference_fit_keeps_the_curriculum_order(tmp_path, monkeypatch):
    import shared.kit.stages as stages

    encoded, seen = [], []
    real_encode = stages.encode_pairs
    monkeypatch.setattr(stages, "encode_pairs", lambda records, *a, **k: encoded.append(list(records)) or real_encode(records, *a, **k))
    monkeypatch.setattr(stages, "train_stage", lambda d, t, steps, seed, module, loader: seen.append(
        [len(encoded[-1][i].chosen) for i in loader.sampler]))
    start = run_sft(tmp_path / "start", TINY, SFTArgs(steps=0), TRAINER, 0, list)
    pairs = [Pair(prompt="q:", chosen=" " + "y" * n, rejected=" n") for n in (9, 7, 5, 3, 1)]
    pref = PreferenceArgs(steps=1, batch_size=1, max_pairs=4)
    for ordered in (True, False):
        fit = preference_round_fit(TINY, pref, TRAINER, start, ordered=ordered)
        rnd = Round(index=0, seed=3, dir=tmp_path / f"r{ordered}", schedule={}, checkpoint_dir=tmp_path / f"c{ordered}")
        fit(rnd, pairs, {}, None)
    kept, shuffled = seen
    assert kept == sorted(kept, reverse=True) and len(kept) == 4  # the max_pairs draw keeps the order
    assert sorted(shuffled) == sorted(kept) and shuffled != kept


def test_limit_pairs_is_a_seeded_draw():
    pairs = list(range(10))
    assert limit_pairs(pairs, 0, 1) is pairs and limit_pairs(pairs, 20, 1) is pairs
    assert limit_pairs(pairs, 3, 1) == limit_pairs(pairs, 3, 1) and len(set(limit_pairs(pairs, 3, 1))) == 3
    import random

    assert limit_pairs(pairs, 3, 1) == random.Random(1).sample(pairs, 3)  # the draw runs already made
    assert limit_pairs(pairs, 3, 1, keep_order=True) == sorted(limit_pairs(pairs, 3, 1))


class LongerIsBetter(RewardFunction):
    aspects = ("total",)

    def score(self, prompt, output, context):
        return {"total": float(len(output))}


def test_group_rl_stage_writes_every_step_and_resumes(tmp_path):
    policy, tok = policy_at(TINY, run_sft(tmp_path, TINY, SFTArgs(steps=0), TRAINER, 0, list), 0, lora=False)
    rl = GroupRLArgs(steps=2, prompts_per_step=2, group_size=2, lr=1e-3)
    items = [{"prompt": "a:", "context": {}}, {"prompt": "b:", "context": {}}]
    folder = run_group_rl(tmp_path / "grpo", policy, tok, LongerIsBetter(), items, rl, SampleArgs(max_new_tokens=4),
                          TINY, TRAINER, 0)
    steps = sorted((tmp_path / "grpo" / "samples").glob("step_*.jsonl"))
    assert is_complete(folder) and len(steps) == 2
    assert all(len(f.read_text().splitlines()) == 4 for f in steps)
    assert run_group_rl(tmp_path / "grpo", policy, tok, None, items, rl, SampleArgs(), TINY, TRAINER, 0) == folder


@dataclass
class ToyConfig(AppConfig):
    """A toy app.

    Attributes:
        sft: SFT.
    """

    sft: SFTArgs = field(default_factory=SFTArgs)


def test_start_run_saves_the_config_and_turns_data_errors_into_one_line(tmp_path, capsys):
    cfg, data = start_run(ToyConfig, [f"run_dir={tmp_path / 'ok'}", "sft.steps=3"], doc=None, prog="toy",
                          prepare=lambda c: c.sft.steps * 2)
    assert data == 6 and "steps: 3" in (tmp_path / "ok" / "config.yaml").read_text()

    def broken(cfg):
        raise ValueError("tasks.jsonl:3: field 'prompt' must be a string")

    with pytest.raises(SystemExit) as exit_info:
        start_run(ToyConfig, [f"run_dir={tmp_path / 'bad'}"], doc=None, prog="toy", prepare=broken)
    assert exit_info.value.code == 2 and not (tmp_path / "bad").exists()
    assert capsys.readouterr().err == "toy: error: tasks.jsonl:3: field 'prompt' must be a string\n"


def test_start_run_sets_the_allocator_threshold_from_the_trainer_config(tmp_path, monkeypatch, capsys):
    import shared.kit.cli as cli

    calls = []
    monkeypatch.setattr(cli, "set_mmap_threshold", calls.append)  # process-wide: not set in the test process
    start_run(ToyConfig, [f"run_dir={tmp_path / 'a'}", "trainer.mmap_threshold_kb=128"], doc=None, prog="toy",
              prepare=lambda c: None)
    start_run(ToyConfig, [f"run_dir={tmp_path / 'b'}"], doc=None, prog="toy", prepare=lambda c: None)
    assert calls == [128, 0]
    for bad, message in [("trainer.mmap_threshold_kb=-1", "trainer: mmap_threshold_kb must be >= 0"),
                         ("sft.lr=-1", "sft: lr must be > 0, got -1"), ("sft.batch_size=0", "sft: batch_size must be >= 1"),
                         ("sft.steps=-2", "sft: steps must be >= 0")]:
        with pytest.raises(SystemExit):
            start_run(ToyConfig, [f"run_dir={tmp_path / 'c'}", bad], doc=None, prog="toy", prepare=lambda c: None)
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, bad
    assert not (tmp_path / "c").exists()


def test_loop_errors_end_in_one_line_and_let_other_errors_through(capsys):
    from shared.kit import loop_errors
    from shared.loop import LoopError

    with pytest.raises(SystemExit) as info, loop_errors("prog"):
        raise LoopError("/run/round_000: 'config.lr' changed\nsince this run folder was started")
    assert info.value.code == 2
    assert capsys.readouterr().err == "prog: error: /run/round_000: 'config.lr' changed since this run folder was started\n"
    with pytest.raises(RuntimeError), loop_errors("prog"):
        raise RuntimeError("a bug keeps its traceback")
