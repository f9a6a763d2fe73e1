"""End to end at CI size (configs/videollm/tiny.yaml: 30 pre-training steps, 3-4 clip stories; numbers mean little):
pre-training, TEMPLE's pairs, the DPO curriculum, SFT, both ablations, the held-out eval, infer and serving.

Checks that each stage saves and resumes, that the curriculum runs its stages easy to hard each from the last,
that eval and infer read the run, and that bad inputs end in one line.
"""

from __future__ import annotations

import base64
import json
import shutil
import urllib.error
import urllib.request

import pytest

from apps.videollm import train as videollm_train
from apps.videollm.eval import main as eval_main
from apps.videollm.infer import VideoLLMGenerator, main as infer_main
from apps.videollm.model import VideoLLMSpec, load_video_llm
from apps.videollm.stories import Story, clip_scene
from shared.models import LoraSpec
from shared.records import Pair, read_jsonl
from shared.serving import create_app, running_server
from shared.video_io import mp4_bytes, write_mp4

MODELS = ("base", "sft", "temple", "sft_then_dpo", "dpo_no_curriculum")
CLIP = Story((clip_scene("appears", "red", "circle"), clip_scene("moves", "blue", "square", "large", "up")), seed=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videollm") / "run"
    args = ["--config", "configs/videollm/tiny.yaml", f"run_dir={folder}"]
    return folder, args, videollm_train.main(args)


@pytest.mark.slow
def test_stages_curriculum_and_eval(run):
    folder, _, summary = run
    seed = folder / "seed_0"
    for stage in ("pretrain", "seed_0/sft", "seed_0/temple_m4", "seed_0/temple_m2", "seed_0/temple", "seed_0/sft_dpo_m4",
                  "seed_0/sft_dpo_m2", "seed_0/flat_dpo", "seed_0/flat"):
        assert (folder / stage / "model" / "DONE").is_file() and (folder / stage / "model" / "preprocessor_config.json").is_file()
    written = read_jsonl(folder / "pairs" / "written.jsonl")
    pairs = read_jsonl(folder / "pairs" / "pairs.jsonl", Pair)
    assert len(written) == 32 and len(pairs) == sum(r["dropped"] is None for r in written) > 0
    assert {r["dropped"] for r in written} <= {None, "drop_not_shorter", "chosen_in_rejected", "length_ratio", "equal"}
    # the curriculum: m = 4 first (easy), then m = 2 from its model; the ablations start elsewhere
    easy, hard = (read_jsonl(seed / f"temple_m{m}" / "pairs.jsonl", Pair) for m in (4, 2))
    assert {p.metadata["magnitude"] for p in easy} == {4} and {p.metadata["magnitude"] for p in hard} == {2}
    assert len(easy) + len(hard) == len(pairs)
    assert json.loads((seed / "temple_m4" / "start.json").read_text())["from"] == str(folder / "pretrain" / "model")
    assert json.loads((seed / "temple_m2" / "start.json").read_text())["from"] == str(seed / "temple_m4" / "model")
    assert json.loads((seed / "sft_dpo_m4" / "start.json").read_text())["from"] == str(seed / "sft" / "model")
    flat = read_jsonl(seed / "flat_dpo" / "pairs.jsonl", Pair)
    assert {p.metadata["magnitude"] for p in flat} == {2, 4} and len(flat) == len(pairs)
    results = json.loads((folder / "eval" / "results.json").read_text())
    assert set(results["models"]) == set(MODELS)
    for name in MODELS:
        metrics = results["models"][name]["metrics"]
        assert metrics["qa"]["n"] > 6 * 5 and metrics["order"]["n"] == 6
        assert 0 <= metrics["qa"]["value"] <= 1
    assert (folder / "eval" / "grid.gif").stat().st_size > 0 and (folder / "eval" / "examples.md").is_file()
    assert summary["eval"]["temple"]["qa"] == results["models"]["temple"]["metrics"]["qa"]["value"]


@pytest.mark.slow
def test_rerun_resumes_and_eval_reuses_answers(run):
    folder, args, summary = run
    weights = folder / "seed_0" / "temple" / "model" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    answers = folder / "eval" / "temple" / "seed_0" / "answers.jsonl"
    answered = answers.stat().st_mtime_ns
    assert videollm_train.main(args)["eval"] == summary["eval"]
    assert weights.stat().st_mtime_ns == before
    table = eval_main(["--run", str(folder), "--seeds", "0"])
    assert table.models["temple"].estimates["qa"].value == summary["eval"]["temple"]["qa"]
    assert answers.stat().st_mtime_ns == answered


@pytest.mark.slow
def test_infer_and_serving(run, tmp_path, capsys):
    folder, _, _ = run
    video = write_mp4(tmp_path / "clip.mp4", CLIP.render())
    infer_main(["--model", str(folder), "--video", str(video), "--question", "What happens first?"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["question"] == "What happens first?" and out["frames"] == 8 and isinstance(out["answer"], str)
    for name, content in (("empty.mp4", b""), ("corrupt.mp4", b"\x00junk" * 40)):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(SystemExit):
            infer_main(["--model", str(folder), "--video", str(tmp_path / name)])
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith(f"python -m apps.videollm.infer: error: {tmp_path / name}: ")
    model, processor = load_video_llm(VideoLLMSpec(source="hf", path=str(folder / "seed_0" / "temple" / "model"),
                                                   lora=LoraSpec(r=0)))
    generator = VideoLLMGenerator(model, processor, max_new_tokens=8)
    good = json.dumps({"video_mp4_base64": base64.b64encode(mp4_bytes(CLIP.render())).decode(), "question": "What happens last?"})
    with running_server(create_app(generator)) as url:
        def post(prompts):
            request = urllib.request.Request(f"{url}/generate", method="POST", headers={"content-type": "application/json"},
                                             data=json.dumps({"prompts": prompts}).encode())
            with urllib.request.urlopen(request, timeout=60) as reply:
                return json.loads(reply.read())["outputs"]

        (served,) = post([good])
        assert served == generator.generate([good])[0] and served["frames"] == 8
        for bad, reason in ((json.dumps({"video_mp4_base64": base64.b64encode(b"junk" * 50).decode()}), "not a readable video"),
                            (json.dumps({"video_mp4_base64": "%%%"}), "not base64"), ("plain text", "JSON object")):
            with pytest.raises(urllib.error.HTTPError) as err:
                post([bad])
            assert err.value.code == 422 and reason in err.value.read().decode()


def _train_error(capsys, *overrides) -> str:
    with pytest.raises(SystemExit) as exit_info:
        videollm_train.main(["--config", "configs/videollm/tiny.yaml", *overrides])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_config_and_bad_videos_give_one_line(tmp_path, capsys):
    assert "stepz" in _train_error(capsys, "temple.stepz=3", f"run_dir={tmp_path / 'a'}")
    assert "temple.operations" in _train_error(capsys, "temple.operations=[drop, spin]", f"run_dir={tmp_path / 'a'}")
    assert "sft.init_from: not used here" in _train_error(capsys, "sft.init_from=x", f"run_dir={tmp_path / 'a'}")
    write_mp4(tmp_path / "ok.mp4", CLIP.render())
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x01" * 300)
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"video": "ok.mp4", "caption": "a red circle appears"}) + "\n"
                    + json.dumps({"video": "broken.mp4", "caption": "x"}) + "\n")
    err = _train_error(capsys, f"data.train_file={data}", f"run_dir={tmp_path / 'b'}")
    assert err.startswith("python -m apps.videollm.train: error: ") and f"{data}:2: video: " in err
    assert "not a readable video" in err
    assert not (tmp_path / "b").exists()  # nothing written before the inputs are checked


def test_changed_pair_settings_and_no_pairs_end_in_one_line(run, tmp_path, capsys):
    folder, _, _ = run
    shutil.copytree(folder / "pairs", tmp_path / "b" / "pairs")
    shutil.copytree(folder / "pretrain", tmp_path / "b" / "pretrain")
    err = _train_error(capsys, f"run_dir={tmp_path / 'b'}", "temple.magnitudes=[8, 2]")
    assert "pairs were written under other settings" in err
    # a model that writes the same caption for every list leaves no pair: said so, not trained on nothing
    err = _train_error(capsys, f"run_dir={tmp_path / 'c'}", "temple.writer=model", "pretrain.steps=2")
    assert "no TEMPLE pair survived the filters" in err
