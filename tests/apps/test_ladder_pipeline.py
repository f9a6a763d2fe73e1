"""End to end at CI size: plain SFT, RAFT and graph-edit DPO on SmolLM2 with a small LoRA, then eval and infer.

The run is configs/ladder/tiny.yaml; its numbers mean little. It checks that each stage trains and
saves, that the DPO pairs have the reference as chosen and a behaviour-changing program as
rejected in curriculum order, that every sampled program is kept with its scores, that a rerun
resumes without retraining, and that eval and infer read the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.ladder.config import LadderConfig
from apps.ladder.data import load_split
from apps.ladder.program import parse_program
from apps.ladder.score import Reference
from apps.ladder.train import main
from shared.config import load_yaml
from shared.records import Candidate, Pair, read_jsonl


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("ladder") / "run"
    args = ["--config", "configs/ladder/tiny.yaml", f"run_dir={run}"]
    return run, args, main(args)


@pytest.mark.slow
def test_stages_train_in_order_and_dpo_pairs_are_curriculum_ordered(tiny_run):
    run, args, summary = tiny_run
    cfg = load_yaml(LadderConfig, run / "config.yaml")
    for stage in ("sft", "raft"):
        assert (run / stage / "model" / "config.json").is_file()
    state = json.loads((run / "dpo" / "state.json").read_text())
    assert Path(state["fingerprint"]["initial_checkpoint"]).resolve() == (run / "raft" / "model").resolve()
    rnd = run / "dpo" / "round_000"
    candidates = read_jsonl(rnd / "candidates.jsonl", Candidate)
    scored = read_jsonl(rnd / "scored.jsonl", Candidate)
    assert len(candidates) == len(scored) == cfg.pref.tasks * cfg.sample.n  # nothing generated is dropped
    assert all(set(c.scores) == {"parsed", "exact", "equivalent", "outputs"} for c in scored)
    tasks = {t.id: t for t in load_split(cfg.data, "train")}
    pairs = read_jsonl(rnd / "pairs.jsonl", Pair)
    assert pairs and {p.metadata["kind"] for p in pairs} - {"sampled"}
    for p in pairs:
        task = tasks[p.metadata["task"]]
        assert p.chosen == task.program
        if p.metadata["parsed"]:
            assert not Reference.of(task).behaves_like(parse_program(p.rejected))[0]
    keys = [float("inf") if p.metadata["edit_distance"] is None else p.metadata["edit_distance"] for p in pairs]
    assert keys == sorted(keys, reverse=True)  # easy (far from the reference) first
    final = json.loads((run / "final_model.json").read_text())
    assert Path(final["path"]) == (rnd / "checkpoint" / "model").resolve()
    for metrics in summary["heldout"].values():
        assert set(metrics) == {"parsed", "exact", "equivalent", "outputs"} and all(0 <= v <= 1 for v in metrics.values())
    again = main(args)  # every stage is complete: nothing retrains, the same numbers come back
    assert again["heldout"] == summary["heldout"]


def _cli(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_eval_and_infer_read_the_run(tiny_run, tmp_path):
    run, _, _ = tiny_run
    out = tmp_path / "eval"
    done = _cli("-m", "apps.ladder.eval", "--run", str(run), "--tasks", "3", "--out", str(out), "--resamples", "50")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"base", "base 1-shot", "sft", "raft", "raft_dpo"}
    table = (out / "table.md").read_text()
    assert "sim. equivalent" in table and "parse rate" in table
    rows = [json.loads(line) for line in (out / "raft_dpo" / "programs.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all({"program", "parsed", "exact", "equivalent", "outputs", "composition"} <= set(r) for r in rows)

    answer = tmp_path / "answer"
    done = _cli("-m", "apps.ladder.infer", "--model", str(run), "--instruction", "Start Pump1 with Start1; Stop1 stops it.",
                "--inputs", "Start1", "Stop1", "--outputs", "Pump1", "--out", str(answer), "--max-new-tokens", "24")
    assert done.returncode == 0, done.stderr[-2000:]
    reply = json.loads(done.stdout)
    assert set(reply) == {"program", "parsed", "reason", "plcopen", "st"}
    assert (answer / "program.txt").read_text().strip() == reply["program"]
    assert reply["parsed"] == (answer / "program.xml").is_file()


def test_a_changed_config_for_a_started_run_is_a_one_line_error(tiny_run):
    run, _, _ = tiny_run
    done = _cli("-m", "apps.ladder.train", "--config", "configs/ladder/tiny.yaml", f"run_dir={run}", "pref.edits=3")
    assert done.returncode == 2 and "Traceback" not in done.stderr  # model-loading progress may come first
    errors = [line for line in done.stderr.splitlines() if line.startswith("python -m apps.ladder.train: error:")]
    assert len(errors) == 1 and "pref" in errors[0] and done.stderr.rstrip().endswith(errors[0])


def test_bad_data_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"instruction": "x", "program": "NO(A) OUT(B"}\n')
    done = _cli("-m", "apps.ladder.train", "--config", "configs/ladder/tiny.yaml", f"run_dir={tmp_path / 'r'}",
                f"data.train={bad}")
    assert done.returncode == 2 and f"{bad}:1: program" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_run_is_served_over_http(tiny_run):
    import urllib.error
    import urllib.request

    from apps.ladder.infer import LadderGenerator, run_context
    from shared.models import load_policy, resolve_model
    from shared.serving import create_app, running_server

    run, _, _ = tiny_run
    retriever, k = run_context(str(run))
    assert k == 1 and retriever is not None
    generator = LadderGenerator(*load_policy(resolve_model(str(run))[0]), retriever=retriever, k=k, max_new_tokens=24)

    def post(url, body):
        request = urllib.request.Request(url + "/generate", json.dumps(body).encode(), {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    task = json.dumps({"instruction": "Pump1 runs while Start1 is on.", "variables": {"Start1": "input", "Pump1": "output"}})
    with running_server(create_app(generator, max_batch_size=2, max_wait_ms=5)) as url:
        status, body = post(url, {"prompts": [task, "Latch Motor2 with Start2, stop with Stop2."]})
        assert status == 200 and len(body["outputs"]) == 2
        for out in body["outputs"]:
            assert set(out) == {"program", "parsed", "reason", "plcopen", "st"}
            assert out["parsed"] == (out["plcopen"] is not None) == (out["reason"] == "")
        status, body = post(url, {"prompts": ['{"instruction": "x", "variables": {"A": "sensor"}}']})
        assert status == 422 and "variables[0].role" in body["error"]
