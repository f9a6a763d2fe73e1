"""Iterative driver: round folders, schedules, resume after SIGKILL, fingerprint checks."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from shared.loop import STAGES, LoopError, RecipeFunctions, RunLayout, Schedule, ScheduleError, run_loop
from shared.pairs import best_vs_worst, ranked_lists
from shared.records import Candidate, Pair, RankedList, read_jsonl

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 3
SCHEDULE = {"temperature": [1.0, 0.7, 0.5], "lr": 0.5, "beta": [0.1, 0.2, 0.3]}
CONFIG = {"model": {"name": "toy", "width": 4}, "prompts": 4}
RUN = dict(rounds=ROUNDS, schedule=SCHEDULE, seed=7, config=CONFIG)
ALL_STEPS = [(r, s) for r in range(ROUNDS) for s in STAGES]
ROUND_FILES = ["candidates.jsonl", "scored.jsonl", "pairs.jsonl", "checkpoint/policy.json",
               "checkpoint/weights.txt", "fit.json", "metrics.json", "resources.json"]
LEFTOVER_PATTERNS = ("*.tmp", "*.partial", "*.old")


class KillingPair(Pair):
    """A pair whose serialisation SIGKILLs the process, to die halfway through writing pairs.jsonl."""

    def to_dict(self):
        if self.metadata.get("kill_here"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().to_dict()


class ToyRecipe:
    """Cheap deterministic stages; the policy is one float `skill` in checkpoint/policy.json.

    Each stage appends `round stage` to `log` just before returning (completed calls only) and can
    SIGKILL the process partway through, once: `kill` is "round:stage" and `marker` records that it
    already happened. `kill` "1:write" dies while the driver writes round 1's pairs.jsonl.
    """

    def __init__(self, log: Path | None = None, kill: str | None = None, marker: Path | None = None):
        self.log, self.marker = log, marker
        self.kill = None if not kill else (int(kill.split(":")[0]), kill.split(":")[1])
        self.completed: Counter = Counter()
        self.seen: dict = {}

    def _kill_now(self, r: int, stage: str) -> bool:
        if self.kill != (r, stage) or self.marker.exists():
            return False
        self.marker.touch()
        return True

    def _done(self, r: int, stage: str) -> None:
        self.completed[(r, stage)] += 1
        if self.log is not None:
            with open(self.log, "a") as f:
                f.write(f"{r} {stage}\n")

    def sample(self, rnd, checkpoint, schedule):
        skill = 0.0 if checkpoint is None else json.loads((Path(checkpoint) / "policy.json").read_text())["skill"]
        rng = random.Random(rnd.seed)
        out = [Candidate(f"p{i}", f"prompt {i}", f"{skill + i + rng.gauss(0, schedule['temperature']):.6f}",
                         metadata={"round": rnd.index, "temperature": schedule["temperature"]})
               for i in range(CONFIG["prompts"]) for _ in range(3)]
        self.seen[(rnd.index, "sample")] = (None if checkpoint is None else Path(checkpoint), dict(schedule))
        self._done(rnd.index, "sample")
        return out

    def score(self, rnd, candidates):
        out = []
        for i, c in enumerate(candidates):
            if i == len(candidates) // 2 and self._kill_now(rnd.index, "score"):
                os.kill(os.getpid(), signal.SIGKILL)
            out.append(dataclasses.replace(c, scores={"total": -abs(float(c.output) - 2.0)}))
        self._done(rnd.index, "score")
        return out

    def build(self, rnd, scored):
        pairs = best_vs_worst(scored, score="total")
        if self._kill_now(rnd.index, "write"):
            pairs = [KillingPair(**{**vars(p), "metadata": {**p.metadata, "kill_here": i == 2}})
                     for i, p in enumerate(pairs)]
        self._done(rnd.index, "build")
        return pairs

    def fit(self, rnd, pairs, schedule, init_checkpoint):
        skill = 0.0 if init_checkpoint is None else json.loads((init_checkpoint / "policy.json").read_text())["skill"]
        (rnd.checkpoint_dir / "weights.txt").write_text(f"{len(pairs)} pairs\n")
        if self._kill_now(rnd.index, "fit"):
            os.kill(os.getpid(), signal.SIGKILL)
        skill += schedule["lr"] * sum(p.margin for p in pairs) / len(pairs)
        (rnd.checkpoint_dir / "policy.json").write_text(json.dumps({"skill": skill, "beta": schedule["beta"]}))
        self.seen[(rnd.index, "fit")] = (init_checkpoint, dict(schedule))
        self._done(rnd.index, "fit")
        return rnd.checkpoint_dir

    def evaluate(self, rnd, checkpoint):
        policy = json.loads((checkpoint / "policy.json").read_text())
        scored = read_jsonl(rnd.dir / "scored.jsonl", Candidate)
        self._done(rnd.index, "evaluate")
        return {"skill": policy["skill"], "mean_total": sum(c.scores["total"] for c in scored) / len(scored)}


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def _leftovers(root: Path) -> list[Path]:
    return [p for pattern in LEFTOVER_PATTERNS for p in root.rglob(pattern)]


def _deterministic_files(root: Path) -> dict[str, bytes]:
    """Every file but the PNG (its bytes depend on the matplotlib build) and the time and memory records."""
    return {name: (root / name).read_bytes() for name in sorted(_tree(root))
            if name != "rounds.png" and not name.endswith("resources.json")}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    run_loop(ToyRecipe(), run_dir, **RUN)
    return run_dir


def test_full_run_writes_every_round_once(tmp_path, monkeypatch):
    import shared.resources as resources

    released = []
    monkeypatch.setattr(resources, "release_memory", lambda: released.append(1))
    monkeypatch.setattr(resources, "RELEASE_MIN_GROWTH_MB", 0.0)  # the toy steps grow the process by little
    recipe = ToyRecipe()
    result = run_loop(recipe, tmp_path / "run", **RUN)
    assert len(released) == len(ALL_STEPS)  # freed memory handed back after every step
    root = tmp_path / "run"
    expected = {f"round_{r:03d}/{name}" for r in range(ROUNDS) for name in ROUND_FILES}
    assert _tree(root) == expected | {"state.json", "metrics.csv", "rounds.png", ".lock"}
    assert recipe.completed == Counter({step: 1 for step in ALL_STEPS})
    assert result.ran == ALL_STEPS
    assert json.loads((root / "state.json").read_text())["round"] == ROUNDS - 1
    assert json.loads((root / "state.json").read_text())["stage"] == "evaluate"
    usage = json.loads((root / "round_001" / "resources.json").read_text())
    assert list(usage) == ["sample", "score", "build", "fit", "evaluate"]  # every step, in the order it ran
    assert all(u["peak_rss_mb"] >= u["rss_start_mb"] > 10 and u["seconds"] >= 0 for u in usage.values())

    rows = list(csv.DictReader((root / "metrics.csv").open()))
    assert [row["round"] for row in rows] == ["0", "1", "2"]
    assert list(rows[0]) == ["round", "skill", "mean_total"]
    assert [float(row["skill"]) for row in rows] == [m["skill"] for m in result.metrics]
    assert result.checkpoint == root / "round_002" / "checkpoint"
    assert json.loads((root / "round_001/fit.json").read_text()) == {"checkpoint": "round_001/checkpoint"}

    png = (root / "rounds.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    from PIL import Image

    with Image.open(root / "rounds.png") as image:
        image.verify()
        assert image.size[0] > 100 and image.size[1] > 100


def test_stages_get_previous_checkpoint_and_round_schedule(tmp_path):
    recipe = ToyRecipe()
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft/policy.json").write_text(json.dumps({"skill": 10.0}))
    run_loop(recipe, tmp_path / "run", initial_checkpoint=tmp_path / "sft", **{**RUN, "rounds": 2,
             "schedule": {k: v[:2] if isinstance(v, list) else v for k, v in SCHEDULE.items()}})
    assert recipe.seen[(0, "sample")] == (tmp_path / "sft", {"temperature": 1.0, "lr": 0.5, "beta": 0.1})
    assert recipe.seen[(1, "sample")] == (tmp_path / "run/round_000/checkpoint",
                                          {"temperature": 0.7, "lr": 0.5, "beta": 0.2})
    assert recipe.seen[(1, "fit")][0] == tmp_path / "run/round_000/checkpoint"
    assert json.loads((tmp_path / "run/round_001/checkpoint/policy.json").read_text())["beta"] == 0.2
    cands = read_jsonl(tmp_path / "run/round_001/candidates.jsonl", Candidate)
    assert {c.metadata["temperature"] for c in cands} == {0.7}


def test_rerun_skips_completed_rounds_and_extends(tmp_path):
    recipe = ToyRecipe()
    run_loop(recipe, tmp_path / "run", **RUN)
    before = _deterministic_files(tmp_path / "run")
    again = run_loop(recipe, tmp_path / "run", **RUN)
    assert again.ran == [] and recipe.completed == Counter({step: 1 for step in ALL_STEPS})
    assert _deterministic_files(tmp_path / "run") == before

    longer = {**SCHEDULE, "temperature": [1.0, 0.7, 0.5, 0.4], "beta": [0.1, 0.2, 0.3, 0.3]}
    more = run_loop(recipe, tmp_path / "run", **{**RUN, "rounds": 4, "schedule": longer})
    assert more.ran == [(3, s) for s in STAGES]
    assert len(list(csv.DictReader((tmp_path / "run/metrics.csv").open()))) == 4
    assert more.metrics[:3] == again.metrics


SCRIPT = """\
import sys
from pathlib import Path
from shared.loop import run_loop
from tests.test_loop import RUN, ToyRecipe

run_dir, log, kill, marker = sys.argv[1:]
run_loop(ToyRecipe(log=Path(log), kill=kill, marker=Path(marker)), run_dir, **RUN)
"""


def _run_script(tmp_path: Path, kill: str) -> subprocess.CompletedProcess:
    script = tmp_path / "drive.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, str(script), str(tmp_path / "run"), str(tmp_path / "log.txt"), kill,
            str(tmp_path / "killed.marker")]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "kill, last_saved, lost",
    [
        ("1:score", (1, "sample"), "round_001/scored.jsonl"),
        ("1:fit", (1, "build"), "round_001/checkpoint"),
        ("1:write", (1, "score"), "round_001/pairs.jsonl"),
    ],
    ids=["score", "fit", "mid-write-pairs"],
)
def test_sigkill_then_rerun_matches_uninterrupted_run(tmp_path, reference, kill, last_saved, lost):
    root = tmp_path / "run"
    first = _run_script(tmp_path, kill)
    assert first.returncode == -signal.SIGKILL, first.stderr
    state = json.loads((root / "state.json").read_text())
    assert (state["round"], state["stage"]) == last_saved
    assert not (root / lost).exists()
    # Every round file the killed run had finished is byte-identical to the uninterrupted run's.
    ref = _deterministic_files(reference)
    leftover = {p.relative_to(root).as_posix() for p in _leftovers(root)}
    done = {name: data for name, data in _deterministic_files(root).items()
            if name.startswith("round_") and not any(name.startswith(x) for x in leftover)}
    assert done and all(data == ref[name] for name, data in done.items())
    if kill == "1:write":
        assert [p.name.startswith(".pairs.jsonl.") for p in _leftovers(root)] == [True]
    if kill == "1:fit":
        assert (root / "round_001/checkpoint.partial/weights.txt").exists()

    second = _run_script(tmp_path, kill)
    assert second.returncode == 0, second.stderr
    assert _deterministic_files(root) == ref
    assert _leftovers(root) == []
    completions = [tuple(line.split()) for line in (tmp_path / "log.txt").read_text().splitlines()]
    expected = [(str(r), s) for r, s in ALL_STEPS]
    if kill == "1:write":
        # build returned, but the kill came while its pairs were being saved, so that step ran again.
        expected.insert(expected.index(("1", "build")), ("1", "build"))
    assert completions == expected
    assert len(list(csv.DictReader((root / "metrics.csv").open()))) == ROUNDS


def test_schedule_resolves_lists_and_constants():
    schedule = Schedule({"temperature": [1.0, 0.8, 0.6], "beta": 0.1, "stop": ("a", "b", "c")})
    schedule.validate(3)
    assert schedule.at(0) == {"temperature": 1.0, "beta": 0.1, "stop": "a"}
    assert schedule.at(2) == {"temperature": 0.6, "beta": 0.1, "stop": "c"}
    assert Schedule({"lists": [[1, 2], [3, 4]]}).at(1) == {"lists": [3, 4]}
    assert Schedule().at(5) == {}


@pytest.mark.parametrize(
    "values, rounds, message",
    [
        ({"beta": 0.1, "lr": [1e-5, 1e-6]}, 3, "schedule 'lr' has 2 values for 3 rounds"),
        ({"lr": [1e-5] * 4}, 3, "schedule 'lr' has 4 values for 3 rounds"),
        ({"temperature": []}, 1, "schedule 'temperature' has 0 values for 1 round;"),
    ],
)
def test_schedule_length_errors_name_the_key(values, rounds, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule(values).validate(rounds)


def test_schedule_value_errors():
    with pytest.raises(ScheduleError, match="schedule 'lr' has no value for round 2"):
        Schedule({"lr": [1, 2]}).at(2)
    with pytest.raises(ScheduleError, match="schedule 'fn' must hold JSON values"):
        Schedule({"fn": print})
    with pytest.raises(ScheduleError, match="schedule 'beta' must hold JSON values"):
        Schedule({"beta": [0.1, float("nan")]})
    with pytest.raises(ScheduleError, match="keys must be non-empty strings"):
        Schedule({"": 1})


def test_driver_checks_schedule_before_running(tmp_path):
    recipe = ToyRecipe()
    with pytest.raises(ScheduleError, match="schedule 'temperature' has 3 values for 2 rounds"):
        run_loop(recipe, tmp_path / "run", **{**RUN, "rounds": 2})
    assert not (tmp_path / "run").exists() and not recipe.completed


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": 8}, "'seed' changed from 7 to 8"),
        ({"config": {**CONFIG, "model": {"name": "toy", "width": 8}}}, "'config.model.width' changed from 4 to 8"),
        ({"config": {**CONFIG, "extra": True}}, "'config.extra' changed from unset to true"),
        ({"initial_checkpoint": "SFT"}, "'initial_checkpoint' changed from null to \"/"),
        ({"schedule": {**SCHEDULE, "beta": [0.1, 0.25, 0.3]}}, "schedule 'beta' of round 1 changed from 0.2 to 0.25"),
        ({"schedule": {**SCHEDULE, "loss": "ipo"}}, "schedule 'loss' of round 0 changed from unset to \"ipo\""),
    ],
    ids=["seed", "config", "config-new-key", "initial-checkpoint", "schedule", "schedule-new-key"],
)
def test_changed_fingerprint_fails_in_one_line(tmp_path, change, message):
    root = tmp_path / "run"
    with pytest.raises(RuntimeError):
        run_loop(_failing(ToyRecipe(), "fit", round_index=1), root, **RUN)  # round 1 done up to build
    before = _deterministic_files(root)
    if change.get("initial_checkpoint") == "SFT":
        change = {"initial_checkpoint": tmp_path / "sft"}
        (tmp_path / "sft").mkdir()
        (tmp_path / "sft/policy.json").write_text(json.dumps({"skill": 1.0}))
    recipe = ToyRecipe()
    with pytest.raises(LoopError) as info:
        run_loop(recipe, root, **{**RUN, **change})
    text = str(info.value)
    assert "\n" not in text and message in text and "overwrite=True" in text and str(root) in text
    assert not recipe.completed and _deterministic_files(root) == before


def test_overwrite_starts_the_run_over(tmp_path):
    root = tmp_path / "run"
    run_loop(ToyRecipe(), root, **{**RUN, "rounds": 1, "schedule": {"temperature": 1.0, "lr": 0.5, "beta": 0.1}})
    (root / "config.yaml").write_text("kept: true\n")
    old = (root / "round_000/candidates.jsonl").read_bytes()
    recipe = ToyRecipe()
    restarted = run_loop(recipe, root, **{**RUN, "seed": 8}, overwrite=True)
    assert restarted.ran == ALL_STEPS and recipe.completed == Counter({step: 1 for step in ALL_STEPS})
    assert (root / "round_000/candidates.jsonl").read_bytes() != old
    assert json.loads((root / "state.json").read_text())["fingerprint"]["seed"] == 8
    assert (root / "config.yaml").read_text() == "kept: true\n"


def test_schedule_of_unstarted_rounds_may_change(tmp_path):
    with pytest.raises(RuntimeError):
        run_loop(_failing(ToyRecipe(), "sample", round_index=2), tmp_path / "run", **RUN)
    changed = {**SCHEDULE, "temperature": [1.0, 0.7, 0.9]}
    result = run_loop(ToyRecipe(), tmp_path / "run", **{**RUN, "schedule": changed})
    assert result.ran == [(2, s) for s in STAGES]


def _failing(recipe, stage: str, round_index: int, result=None):
    """Wrap `recipe` so `stage` of `round_index` raises RuntimeError, or returns `result` if given."""
    original = getattr(recipe, stage)

    def wrapped(rnd, *args):
        if rnd.index != round_index:
            return original(rnd, *args)
        if result is None:
            raise RuntimeError(f"{stage} failed")
        return result(rnd, *args) if callable(result) else result

    return RecipeFunctions(**{s: wrapped if s == stage else getattr(recipe, s) for s in STAGES})


def test_resume_after_exception_reloads_ranked_lists_and_cleans_fit_folder(tmp_path):
    recipe = ToyRecipe()
    recipe.build = lambda rnd, scored: ranked_lists(scored, score="total")
    received = []

    def fit(rnd, lists, schedule, init):
        received.append([type(x) for x in lists])
        (rnd.checkpoint_dir / f"attempt{len(received)}.txt").write_text("x")
        if len(received) == 1:
            raise RuntimeError("out of memory")
        (rnd.checkpoint_dir / "policy.json").write_text(json.dumps({"skill": 1.0}))
        return rnd.checkpoint_dir / "policy.json"

    def evaluate(rnd, checkpoint):
        return json.loads(checkpoint.read_text())

    functions = RecipeFunctions(recipe.sample, recipe.score, recipe.build, fit, evaluate)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_loop(functions, tmp_path / "run", rounds=1, seed=7, schedule={"temperature": 1.0})
    assert (tmp_path / "run/round_000/checkpoint.partial/attempt1.txt").exists()
    result = run_loop(functions, tmp_path / "run", rounds=1, seed=7, schedule={"temperature": 1.0})
    assert result.ran == [(0, "fit"), (0, "evaluate")]
    assert received == [[RankedList] * CONFIG["prompts"]] * 2
    assert sorted(p.name for p in (tmp_path / "run/round_000/checkpoint").iterdir()) == ["attempt2.txt", "policy.json"]
    assert json.loads((tmp_path / "run/round_000/fit.json").read_text()) == {
        "checkpoint": "round_000/checkpoint/policy.json"}
    assert _leftovers(tmp_path / "run") == []


def test_fit_may_save_outside_the_run_folder(tmp_path):
    recipe = ToyRecipe()
    elsewhere = tmp_path / "store"

    def fit(rnd, pairs, schedule, init):
        out = elsewhere / f"r{rnd.index}"
        out.mkdir(parents=True)
        (out / "policy.json").write_text(json.dumps({"skill": 0.0 if init is None else 1.0 + rnd.index}))
        return str(out)

    functions = RecipeFunctions(recipe.sample, recipe.score, recipe.build, fit, recipe.evaluate)
    result = run_loop(functions, tmp_path / "run", rounds=2, seed=7, schedule={"temperature": 1.0})
    assert json.loads((tmp_path / "run/round_001/fit.json").read_text()) == {"checkpoint": str(elsewhere / "r1")}
    assert recipe.seen[(1, "sample")][0] == elsewhere / "r0"
    assert result.checkpoint == elsewhere / "r1" and [m["skill"] for m in result.metrics] == [0.0, 2.0]
    assert not (tmp_path / "run/round_000/checkpoint").exists()
    assert not (tmp_path / "run/round_000/checkpoint.partial").exists()


@pytest.mark.parametrize(
    "stage, result, message",
    [
        ("sample", {"a": 1}, "round 1 sample: expected a list of Candidate, got dict"),
        ("score", lambda rnd, c: c[:2] + [Pair("p", "a", "b")], "round 1 score: expected a list of Candidate "
                                                                 "(one kind), item 2 is Pair"),
        ("build", lambda rnd, s: [Pair("p", "a", "b"), RankedList("p", ["a"], [1.0])],
         "round 1 build: expected a list of Pair or RankedList (one kind), item 1 is RankedList"),
        ("build", [], "round 1 build: no pairs or ranked lists to fit on"),
        ("fit", lambda rnd, *a: rnd.dir / "nowhere", "nowhere, which does not exist"),
        ("fit", lambda rnd, *a: rnd.checkpoint_dir, "round 1 fit: returned its checkpoint folder but saved nothing"),
        ("fit", 3, "round 1 fit: expected the saved checkpoint's path, got int"),
        ("evaluate", {"reward": float("nan")}, "round 1 evaluate: metric 'reward' must be a finite number"),
        ("evaluate", [1.0], "round 1 evaluate: expected a mapping of metric name to number, got list"),
    ],
)
def test_bad_stage_results_fail_and_keep_earlier_steps(tmp_path, stage, result, message):
    recipe = _failing(ToyRecipe(), stage, round_index=1, result=result)
    with pytest.raises(LoopError, match=re.escape(message)):
        run_loop(recipe, tmp_path / "run", **RUN)
    state = json.loads((tmp_path / "run/state.json").read_text())
    assert (state["round"], state["stage"]) == ALL_STEPS[ALL_STEPS.index((1, stage)) - 1]
    assert not RunLayout(tmp_path / "run").artefact(1, stage).exists()
    assert len(list(csv.DictReader((tmp_path / "run/metrics.csv").open()))) == 1


def test_second_run_on_the_same_folder_is_refused(tmp_path):
    recipe = ToyRecipe()
    inner_errors = []

    def sample(rnd, checkpoint, schedule):
        try:
            run_loop(ToyRecipe(), tmp_path / "run", **RUN)
        except LoopError as exc:
            inner_errors.append(str(exc))
        return recipe.sample(rnd, checkpoint, schedule)

    functions = RecipeFunctions(sample, recipe.score, recipe.build, recipe.fit, recipe.evaluate)
    run_loop(functions, tmp_path / "run", **{**RUN, "rounds": 1, "schedule": {"temperature": 1.0, "lr": 0.5,
                                                                              "beta": 0.1}})
    assert inner_errors == [f"{tmp_path / 'run'}: another run is using this folder"]


def test_recipe_and_arguments_are_checked(tmp_path):
    with pytest.raises(LoopError, match="recipe RecipeFunctions has no callable 'evaluate'"):
        run_loop(RecipeFunctions(*[print] * 4, evaluate=None), tmp_path, rounds=1)
    with pytest.raises(LoopError, match="rounds must be a positive integer, got 0"):
        run_loop(ToyRecipe(), tmp_path, rounds=0)
    with pytest.raises(LoopError, match="config must be JSON-serialisable"):
        run_loop(ToyRecipe(), tmp_path, rounds=1, config={"f": print})


def test_unreadable_state_fails_in_one_line(tmp_path):
    run_loop(ToyRecipe(), tmp_path / "run", rounds=1, seed=7, schedule={"temperature": 1.0, "lr": 0.5, "beta": 0.1})
    state = tmp_path / "run/state.json"
    state.write_text(state.read_text().replace('"fingerprint"', '"renamed"'))
    with pytest.raises(LoopError, match=r"state.json: unreadable run state \('fingerprint'\); start over in a new run folder"):
        run_loop(ToyRecipe(), tmp_path / "run", rounds=1, seed=7)
