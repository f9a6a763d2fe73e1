"""End to end at CI size: multi-task SFT, SimulPL and the DPO ablation on a very small model, then eval and infer.

The run is configs/simulmt/tiny.yaml; its numbers mean little. It checks that the methods sample,
score and pair candidates by the SimulPL rule, train from the SFT model with the right loss and
scored tokens, that a rerun resumes without retraining, that eval writes the table, corpus
scores and curves, and that infer streams a translation on the command line and over HTTP.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.simulmt.train import PROG, encode_for, main
from shared.records import Candidate, Pair, read_jsonl


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("simulmt") / "run"
    args = ["--config", "configs/simulmt/tiny.yaml", f"run_dir={run}"]
    return run, args, main(args)


def test_methods_pair_by_the_rule_train_from_sft_and_resume(tiny_run):
    run, args, summary = tiny_run
    assert summary["methods"] == ["simulpl", "dpo"]
    sft = (run / "sft" / "model").resolve()
    for method in summary["methods"]:
        round_dir = run / method / "round_000"
        scored = read_jsonl(round_dir / "scored.jsonl", Candidate)
        pairs = read_jsonl(round_dir / "pairs.jsonl", Pair)
        assert pairs, method
        # every candidate is kept with its aspects: 24 sources x 2 thresholds x 2 samples (configs/simulmt/tiny.yaml)
        assert len(scored) == 24 * 2 * 2
        assert all({"quality", "key_points", "preference", "LAAL"} <= set(c.scores) for c in scored)
        for p in pairs:
            c, r = p.metadata["chosen_scores"], p.metadata["rejected_scores"]
            better = c["preference"] >= r["preference"] + 0.05 and c["LAAL"] <= r["LAAL"]
            faster = c["preference"] >= r["preference"] - 0.01 and (r["LAAL"] - c["LAAL"]) / len(p.prompt.split()[1:]) >= 0.1
            assert better or faster
            assert p.margin == pytest.approx(max(0.0, (r["LAAL"] - c["LAAL"]) / len(p.prompt.split()[1:])), abs=1e-5)
        state = json.loads((run / method / "state.json").read_text())
        assert Path(state["fingerprint"]["initial_checkpoint"]).resolve() == sft
        assert Path(summary["models"][method]).is_dir()
    final = json.loads((run / "final_model.json").read_text())
    assert Path(final["path"]) == Path(summary["models"]["simulpl"])
    again = main(args)
    assert again["heldout"] == summary["heldout"]


def test_the_ablation_scores_target_tokens_only(tiny_run):
    from apps.simulmt.config import MethodArgs
    from apps.simulmt.stream import Vocabulary
    from shared.models import load_policy
    from shared.models.loading import ModelSpec

    run, _, _ = tiny_run
    pairs = read_jsonl(run / "simulpl" / "round_000" / "pairs.jsonl", Pair)
    _, tok = load_policy(ModelSpec(source="hf", path=str(run / "sft" / "model")))
    v = Vocabulary(tok)
    with_reads = encode_for(pairs, v, MethodArgs(score_actions=True))[0]
    words_only = encode_for(pairs, v, MethodArgs(score_actions=False))[0]
    reads = [i for i, t in enumerate(with_reads.chosen) if t == v.read]
    sampled_mask = pairs[0].metadata["chosen_stream"][1]
    # SimulPL keeps the sampler's mask (the policy's own reads scored; forced ones, e.g. the first, not) ...
    assert reads and list(with_reads.chosen_scored) == sampled_mask
    # ... the ablation scores no read at all, and every target token either way
    assert not any(words_only.chosen_scored[i] for i in reads)
    assert [s for i, s in enumerate(words_only.chosen_scored) if i not in reads] == \
        [s for i, s in enumerate(with_reads.chosen_scored) if i not in reads]
    assert with_reads.margin == pairs[0].margin


def test_eval_writes_the_table_corpus_scores_and_curves(tiny_run, tmp_path):
    run, _, _ = tiny_run
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, "-m", "apps.simulmt.eval", "--run", str(run), "--sentences", "6",
                           "--wait-k", "1", "3", "--thresholds", "0.5", "--out", str(out), "--resamples", "200"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    table = (out / "table.md").read_text()
    for row in ("wait-1 (SFT)", "wait-3 (SFT)", "SFT tau=0.5", "DPO tau=0.5", "SimulPL tau=0.5"):
        assert row in table
    corpus = json.loads((out / "corpus.json").read_text())
    assert corpus["signatures"]["BLEU"].startswith("nrefs:2") and "BLEU signature" in done.stdout
    assert set(corpus["rows"]) >= {"wait-1 (SFT)", "SimulPL tau=0.5"}
    assert (out / "quality_latency.png").stat().st_size > 1000
    hyps = [json.loads(line) for line in (out / "hyps" / "wait-1_(SFT).run0.jsonl").read_text().splitlines()]
    assert len(hyps) == 6 and all(h["AL"] is not None for h in hyps)


def test_infer_streams_on_the_command_line(tiny_run):
    run, _, _ = tiny_run
    done = subprocess.run([sys.executable, "-m", "apps.simulmt.infer", "--model", str(run), "--setting", "wait-2",
                           "keze ga nuni wo lotigu"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("read ") == 5 and "translation:" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "apps.simulmt.infer", "--model", str(run), "--setting", "soon", "x"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "expected wait-K, tau=T or tau=T,lag=L" in bad.stderr


def _call(method: str, url: str, body=None, raw: bytes | None = None) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_session_server_keeps_state_by_id(tiny_run):
    from apps.simulmt.decode import Setting
    from apps.simulmt.infer import SessionStore, create_app, load_decoder
    from shared.serving import running_server

    run, _, _ = tiny_run
    store = SessionStore(load_decoder(str(run)), Setting("wait_k", 2), max_sessions=2)
    with running_server(create_app(store)) as url:
        sid = _call("POST", f"{url}/sessions", {"setting": "wait-2"})[1]["id"]
        status, first = _call("POST", f"{url}/sessions/{sid}/source", {"words": ["keze", "ga"]})
        assert status == 200 and first["read"] == 2 and first["waiting"] and not first["done"]
        last = _call("POST", f"{url}/sessions/{sid}/source", {"text": "nuni wo lotigu", "finished": True})[1]
        assert last["done"] and last["read"] == 5
        assert first["written"] + last["written"] == last["target"].split()
        state = _call("GET", f"{url}/sessions/{sid}")[1]
        assert state["source"] == ["keze", "ga", "nuni", "wo", "lotigu"] and state["actions"].count("R") == 5
        assert len(state["delays"]) == len(state["target"].split())
        assert _call("POST", f"{url}/sessions/{sid}/source", {"words": ["x"]})[0] == 409
        status, body = _call("POST", f"{url}/sessions/{sid}/source", {"words": "x y"})
        assert status == 422 and "words" in body["error"]["message"]
        assert _call("POST", f"{url}/sessions/{sid}/source", raw=b"{oops")[0] == 422
        assert _call("POST", f"{url}/sessions", {"setting": "tau=7"})[0] == 422
        assert _call("GET", f"{url}/sessions/nope")[0] == 404
        assert _call("DELETE", f"{url}/sessions/{sid}")[1]["deleted"]
        ids = [_call("POST", f"{url}/sessions", {})[1]["id"] for _ in range(3)]
        assert _call("GET", f"{url}/sessions/{ids[0]}")[0] == 404  # the oldest of three is dropped (max 2)
        assert _call("GET", f"{url}/health")[1]["sessions"] == 2


def test_bad_options_fail_in_one_line(tmp_path, capsys):
    for override, message in [("methods=[ppo]", "unknown name 'ppo'"), ("eval.thresholds=[1.5]", "lies in (0, 1]"),
                              ("data.train=missing.tsv", "missing.tsv: no such file")]:
        with pytest.raises(SystemExit) as exit_info:  # in-process: the same argument parsing and error path as the CLI
            main(["--config", "configs/simulmt/tiny.yaml", override, f"run_dir={tmp_path / 'r'}"])
        stderr = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in stderr and stderr.count("\n") == 1, stderr
        assert stderr.startswith(PROG)
