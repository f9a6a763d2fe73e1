"""End to end at CI size: SFT and the three PA-RAG stages on SmolLM2 with a small LoRA, then eval and infer.

The run is configs/rag/tiny.yaml made smaller still; its numbers mean little. It checks that each
stage samples, scores, builds pairs whose chosen answer beats the rejected one, trains from the
previous stage's model, that a rerun resumes without retraining, and that eval and infer read the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.rag.train import main
from shared.records import Pair, read_jsonl


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("rag") / "run"
    args = ["--config", "configs/rag/tiny.yaml", f"run_dir={run}"]
    return run, args, main(args)


@pytest.mark.slow
def test_pa_rag_stages_build_pairs_train_in_order_and_resume(tiny_run):
    run, args, summary = tiny_run
    assert summary["stages"] == ["informativeness", "robustness", "citation"]
    previous = run / "sft" / "model"
    for stage in summary["stages"]:
        pairs = read_jsonl(run / stage / "round_000" / "pairs.jsonl", Pair)
        assert pairs, f"{stage}: no pairs"
        for p in pairs:
            assert p.metadata["stage"] == stage and p.chosen != p.rejected
            c, r = p.metadata["chosen_scores"], p.metadata["rejected_scores"]
            if stage == "citation":
                assert c["citation_f1"] > r["citation_f1"]
            else:
                assert c["str_em"] > r["str_em"]
        assert (run / stage / "round_000" / "checkpoint" / "model" / "config.json").is_file()
        # each stage trained from the one before: the loop records its starting model
        state = json.loads((run / stage / "state.json").read_text())
        assert Path(state["fingerprint"]["initial_checkpoint"]).resolve() == previous.resolve()
        previous = run / stage / "round_000" / "checkpoint" / "model"
    final = json.loads((run / "final_model.json").read_text())
    assert Path(final["path"]) == previous.resolve()
    for name, metrics in summary["heldout"].items():
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), name
    again = main(args)  # every stage is complete: nothing retrains, the same numbers come back
    assert again["heldout"] == summary["heldout"]


@pytest.mark.slow
def test_eval_and_infer_read_the_run(tiny_run, tmp_path):
    run, _, _ = tiny_run
    out = tmp_path / "eval"
    done = subprocess.run([sys.executable, "-m", "apps.rag.eval", "--run", str(run), "--questions", "3",
                           "--settings", "golden", "mislead", "--out", str(out), "--resamples", "200"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    text = json.dumps(results)
    for name in ("base", "sft", "informativeness", "robustness", "citation"):
        assert name in text
    assert (out / "table.md").is_file() and (out / "citation" / "answers_mislead.jsonl").is_file()

    from apps.rag.infer import RagGenerator, embedded_retriever
    from shared.models import load_policy, resolve_model

    spec, _ = resolve_model(str(run))
    generator = RagGenerator(*load_policy(spec), retriever=embedded_retriever(), max_new_tokens=24)
    docs = [{"title": "Vorla Works", "text": "Vorla Works was founded in 1832."}]
    asked, given = generator.generate(["Who founded Bralba Foundry?",
                                       json.dumps({"question": "When was Vorla Works founded?", "docs": docs})])
    assert len(asked["docs"]) == 5 and any(d["title"] == "Bralba Foundry" for d in asked["docs"])
    assert given["docs"] == docs and isinstance(given["answer"], str)
    assert all(isinstance(s["citations"], list) for s in given["sentences"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "apps.rag.train", *args], capture_output=True, text=True, timeout=600)


def test_bad_key_bad_stage_and_malformed_document_file_are_one_line_errors(tmp_path):
    bad_key = _cli("informativeness.stepz=3", f"run_dir={tmp_path / 'a'}")
    assert bad_key.returncode == 2 and "stepz" in bad_key.stderr and "Traceback" not in bad_key.stderr
    bad_stage = _cli("stages=[informativeness,fluency]", f"run_dir={tmp_path / 'b'}")
    assert bad_stage.returncode == 2 and "fluency" in bad_stage.stderr and "Traceback" not in bad_stage.stderr
    data = tmp_path / "asqa.jsonl"
    data.write_text('{"question": "q", "answers": ["a"], "docs": [{"title": "t", "text": "x"}], "output": "a [1]."}\n'
                    '{"question": "q", "answers": ["a"], "docs": [{"title": "t", "text": 3}]}\n')
    bad_file = _cli(f"data.train={data}", f"run_dir={tmp_path / 'c'}")
    assert bad_file.returncode == 2 and "Traceback" not in bad_file.stderr
    assert f"{data}:2: field 'docs[0].text'" in bad_file.stderr and len(bad_file.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c" / "sft").exists()


def test_a_changed_config_for_a_started_stage_is_a_one_line_error(tiny_run, tmp_path):
    run, _, _ = tiny_run
    changed = _cli("--config", "configs/rag/tiny.yaml", f"run_dir={run}", "informativeness.lr=0.001")
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    last = changed.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m apps.rag.train: error:") and "informativeness" in last and "changed" in last
