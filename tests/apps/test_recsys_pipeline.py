"""End to end at CI size: semantic IDs, next-session SFT of the MoE generator, SASRec, the reward model, one IPA
round, then eval, infer and serving (configs/recsys/tiny.yaml: 120 MovieLens users; its numbers mean little).

Checks that each stage saves, that IPA keeps every beam-searched session with its scores and pairs the best
with the worst by reward, that a rerun resumes without retraining, and that eval and infer read the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.recsys.config import RecConfig
from apps.recsys.train import main
from shared.config import load_yaml
from shared.records import Candidate, Pair, read_jsonl


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("recsys") / "run"
    args = ["--config", "configs/recsys/tiny.yaml", f"run_dir={run}"]
    return run, args, main(args)


def _cli(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_stages_save_and_ipa_pairs_best_with_worst(tiny_run):
    run, args, summary = tiny_run
    cfg = load_yaml(RecConfig, run / "config.yaml")
    for folder in ("sft/model", "sasrec/model", "ipa/round_000/checkpoint/model"):
        assert (run / folder / "config.json").is_file() and (run / folder / "tokenizer.json").is_file()
    sids = json.loads((run / "ids" / "semantic_ids.json").read_text())
    assert len(set(map(tuple, sids["codes"]))) == len(sids["item_ids"])  # every item has its own ID
    report = json.loads((run / "reward" / "report.json").read_text())
    assert set(report) >= {"click", "like", "watch"} and all(0 <= report[s]["auc"] <= 1 for s in ("click", "like", "watch"))
    rnd = run / "ipa" / "round_000"
    candidates = read_jsonl(rnd / "candidates.jsonl", Candidate)
    scored = read_jsonl(rnd / "scored.jsonl", Candidate)
    assert len(candidates) == len(scored) > 0  # every beam-searched session is kept
    users = {c.prompt_id for c in candidates}
    assert len(candidates) <= len(users) * cfg.ipa.beams
    for c in scored:
        assert {"click", "like", "watch", "reward", "true_engagement"} <= set(c.scores)
        assert 0 < len(c.metadata["items"]) <= cfg.data.session and len(set(c.metadata["items"])) == len(c.metadata["items"])
    pairs = read_jsonl(rnd / "pairs.jsonl", Pair)
    assert pairs
    by_user = {}
    for c in scored:
        by_user.setdefault(c.prompt_id, []).append(c.scores["reward"])
    for p in pairs:
        rewards = by_user[p.metadata["user"]]
        assert p.margin == pytest.approx(max(rewards) - min(rewards), abs=1e-6) and p.margin > 0
    final = json.loads((run / "final_model.json").read_text())
    assert Path(final["path"]) == (rnd / "checkpoint" / "model").resolve()
    assert set(final["models"]) == {"onerec_sft", "onerec_ipa_r1"}
    again = main(args)  # every stage is complete: nothing retrains, the same numbers come back
    assert again["sft"] == summary["sft"] and again["reward"] == summary["reward"]


@pytest.mark.slow
def test_eval_infer_and_serving_read_the_run(tiny_run, tmp_path):
    run, _, _ = tiny_run
    out = tmp_path / "eval"
    done = _cli("-m", "apps.recsys.eval", "--run", str(run), "--users", "8", "--out", str(out), "--resamples", "50")
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"popularity", "sasrec", "onerec_sft", "onerec_ipa_r1"}
    table = (out / "table.md").read_text()
    assert "NDCG@10" in table and "true engagement" in table

    known = json.loads((run / "ids" / "semantic_ids.json").read_text())["item_ids"]
    history = known[:3]
    done = _cli("-m", "apps.recsys.infer", "--model", str(run), "--history", ",".join(history), "--items", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    reply = json.loads(done.stdout)
    ids = [i["id"] for i in reply["items"]]
    assert len(ids) == 3 and len(set(ids)) == 3 and not set(ids) & set(history)
    assert all(i["title"] and i["semantic_id"].startswith("<a_") for i in reply["items"])
    for bad, message in ((["--history", "1,999999"], "unknown item '999999'"), (["--user", "nobody"], "unknown user"),
                         (["--history", ","], "empty history")):
        done = _cli("-m", "apps.recsys.infer", "--model", str(run), *bad)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr

    import urllib.error
    import urllib.request

    from apps.recsys.infer import Recommender
    from shared.serving import create_app, running_server

    def post(url, body):
        request = urllib.request.Request(url + "/generate", json.dumps(body).encode(), {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    with running_server(create_app(Recommender(run), max_batch_size=2, max_wait_ms=5)) as url:
        status, body = post(url, {"prompts": [",".join(history), known[5]], "params": {"items": 2, "beams": 4}})
        assert status == 200 and [len(o["items"]) for o in body["outputs"]] == [2, 2]
        status, body = post(url, {"prompts": ["1,nope"]})
        assert status == 422 and "unknown item 'nope'" in body["error"]


def test_a_changed_config_for_a_started_ipa_is_a_one_line_error(tiny_run):
    run, _, _ = tiny_run
    done = _cli("-m", "apps.recsys.train", "--config", "configs/recsys/tiny.yaml", f"run_dir={run}", "ipa.beta=0.5")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("python -m apps.recsys.train: error:")]
    assert len(errors) == 1 and "ipa" in errors[0]


def test_a_malformed_interaction_file_is_a_one_line_error(tmp_path):
    inter, items = tmp_path / "inter.csv", tmp_path / "items.csv"
    inter.write_text("user,item,timestamp\nu1,a,1\nu1,b,two\n")
    items.write_text("item,title\na,A\nb,B\n")
    done = _cli("-m", "apps.recsys.train", "--config", "configs/recsys/tiny.yaml", f"run_dir={tmp_path / 'r'}",
                f"data.interactions={inter}", f"data.items={items}")
    assert done.returncode == 2 and f"{inter}:3:" in done.stderr and "timestamp" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
