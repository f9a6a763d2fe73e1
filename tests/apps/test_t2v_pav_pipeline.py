"""Prompt-A-Video at CI size: the video model's SFT, the booster's evolution, SFT and a DPO round through the
loop, the evaluation of every condition, resume, and serving (rewrites, videos and OpenAI's API).

The booster is the real SmolLM2-135M-Instruct with LoRA. The video model trained for 4 steps draws
noise, so the reward's videos come from a stand-in that draws a caption it reads exactly and
anything else as a blank clip: a rewrite then earns its reward only by saying the request in the
video model's own words, which is what the embedded run's trained model rewards too.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

import apps.t2v.pav_eval as pav_eval
from apps.t2v.booster import booster_spec
from apps.t2v.config import T2VConfig
import apps.t2v.train as t2v_train
from apps.t2v.eval import main as eval_main
from apps.t2v.infer import BoosterGenerator, VideoGenerator, main as infer_main
from shared.config import load_yaml
from shared.models import load_policy
from shared.records import Candidate, Pair, read_jsonl
from shared.scenes.image import BACKGROUND
from shared.scenes.video import parse_caption, render_video
from shared.serving import create_app, running_server
from shared.video_io import read_video


class RenderingVideoModel:
    frames = height = width = 32

    def generate(self, prompts, seeds, **_):
        blank = np.full((8, 32, 32, 3), BACKGROUND, dtype=np.uint8)
        return np.stack([render_video(parse_caption(p), 8, 32, s).frames if parse_caption(p) else blank
                         for p, s in zip(prompts, seeds)])


def _stand_in(*_, **__):
    return RenderingVideoModel()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pav") / "tiny"
    args = ["--config", "configs/t2v/prompt_a_video_tiny.yaml", f"run_dir={folder}"]
    patch = pytest.MonkeyPatch()
    patch.setattr(t2v_train, "load_saved", _stand_in)
    patch.setattr(pav_eval, "load_saved", _stand_in)
    try:
        results = t2v_train.main(args)
        again = t2v_train.main(args)  # every stage complete: the same result, nothing redone
    finally:
        patch.undo()
    return folder, results, again


@pytest.mark.slow
def test_pipeline_evolves_trains_and_evaluates_every_condition(run):
    folder, results, again = run
    assert again == results
    evolution = folder / "booster" / "evolution"
    original = [json.loads(x) for x in (evolution / "original.jsonl").read_text().splitlines()]
    assert len(original) == 5 and all(r["rewrite"] == r["request"] for r in original)
    rows = [json.loads(x) for x in (evolution / "iter_01.jsonl").read_text().splitlines()]
    assert len(rows) == 5 * 2 and all(set(r["scores"]) >= {"reward", "valid", "passed"} for r in rows)
    assert all((not r["videos"]) == (r["scores"]["valid"] == 0.0) for r in rows)
    assert (evolution / "sft_examples.jsonl").is_file() and (folder / "booster" / "sft" / "model").is_dir()
    round_dir = folder / "booster" / "dpo" / "round_000"
    scored = {c.output: c for c in read_jsonl(round_dir / "scored.jsonl", Candidate)}
    pairs = read_jsonl(round_dir / "pairs.jsonl", Pair)
    assert len(scored) <= 5 * 2 and pairs
    assert all(scored[p.chosen].scores["valid"] == 1.0 and p.chosen != p.rejected for p in pairs)
    assert all(scored[p.chosen].scores["reward"] >= scored[p.rejected].scores["reward"] for p in pairs)
    assert set(results["models"]) == {"original", "base", "sft", "dpo_r1", "caption"}
    caption, request = results["models"]["caption"]["metrics"], results["models"]["original"]["metrics"]
    assert caption["passed"]["value"] == 1.0 and caption["valid"]["value"] == 1.0  # the stand-in draws captions exactly
    assert caption["names_colours"]["value"] == 1.0
    assert request["passed"]["value"] < 1.0 and request["reward"]["value"] < caption["reward"]["value"]
    for name in ("base", "sft", "dpo_r1"):
        rewrites = [json.loads(x) for x in (folder / "eval" / name / "rewrites.jsonl").read_text().splitlines()]
        assert len(rewrites) == 5 and all(set(r) >= {"request", "rewrite", "usable"} for r in rewrites)
    table = (folder / "eval" / "table.md").read_text()
    assert "| caption |" in table and "| dpo_r1 |" in table and "usable rewrite" in table
    assert read_video(folder / "eval" / "grid.gif").shape[0] == 8
    assert "| request |" in (folder / "eval" / "examples.md").read_text()
    final = json.loads((folder / "final_model.json").read_text())
    assert final["method"] == "prompt_a_video" and final["path"] == final["models"]["dpo_r1"]
    # The eval CLI recognises the run and reuses every (condition, seed) already scored.
    before = (folder / "eval" / "sft" / "seed_0" / "results.jsonl").stat().st_mtime_ns
    assert eval_main(["--run", str(folder), "--seeds", "0"])["models"] == results["models"]
    assert (folder / "eval" / "sft" / "seed_0" / "results.jsonl").stat().st_mtime_ns == before


@pytest.mark.slow
def test_infer_rewrites_and_serves_the_booster_with_openai_routes(run, capsys):
    folder, _, _ = run
    infer_main(["--model", str(folder), "--prompt", "a big crimson ball drifting leftwards"])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["request"] == "a big crimson ball drifting leftwards" and set(record) >= {"rewrite", "usable", "reason"}
    final = json.loads((folder / "final_model.json").read_text())
    cfg = load_yaml(T2VConfig, folder / "config.yaml")
    model, tok = load_policy(booster_spec(cfg.booster, final["path"], cfg.seed))
    generator = BoosterGenerator(model, tok, VideoGenerator(RenderingVideoModel(), steps=1), cfg.rewrite)
    with running_server(create_app(generator)) as url:
        def post(route, body):
            request = urllib.request.Request(f"{url}{route}", method="POST", headers={"content-type": "application/json"},
                                             data=json.dumps(body).encode())
            with urllib.request.urlopen(request, timeout=120) as reply:
                return json.loads(reply.read())

        outputs = post("/generate", {"prompts": ["a tiny navy box vanishing"], "params": {"render": 1, "seed": 2}})["outputs"]
        chat = post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Request: a red ball"}],
                                             "max_tokens": 8})
    (out,) = outputs
    assert out["request"] == "a tiny navy box vanishing"
    assert ("video_mp4_base64" in out) == out["usable"]
    assert chat["choices"][0]["message"]["role"] == "assistant"


def _train_error(capsys, *overrides) -> str:
    with pytest.raises(SystemExit) as exit_info:
        t2v_train.main(["--config", "configs/t2v/prompt_a_video_tiny.yaml", *overrides])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_method_and_reward_settings_give_one_line(tmp_path, capsys):
    assert "method: 'pav' is not one of ipo, prompt_a_video" in _train_error(capsys, "method=pav", f"run_dir={tmp_path}/a")
    assert "reward.thresholds: unknown dimension 'beauty'" in _train_error(
        capsys, "reward.thresholds={beauty: 0.5}", f"run_dir={tmp_path}/b")
    (tmp_path / "requests.jsonl").write_text('{"prompt": "a crimson ball"}\n')
    assert f"{tmp_path / 'requests.jsonl'}:1: field 'scene'" in _train_error(
        capsys, f"data.train_prompts={tmp_path / 'requests.jsonl'}", f"run_dir={tmp_path}/c")
