"""The text-to-video app at CI size: SFT, IPO rounds (DPO and KTO labelling) through the loop, eval, grids, serving.

The tiny model cannot draw a passing video after 20 SFT steps, so IPO's samples in the end-to-end
test come from a stand-in generator: the renderer's exact clip of the prompt for even seeds (the
critic passes it) and a blank clip for odd ones (it fails). That gives the labelling both sides;
everything else (SFT, fits, per-round evaluation, eval) runs the real model.
"""

from __future__ import annotations

import base64
import json
import urllib.request

import numpy as np
import pytest
import torch

import apps.t2v.train as t2v_train
from apps.t2v.eval import main as eval_main
from apps.t2v.infer import VideoGenerator
from apps.t2v.ipo import sample_videos
from apps.t2v.model import load_saved
from shared.kit.diffusion import resolve_pipeline
from shared.loop import LoopError
from shared.records import Candidate, Pair, RankedList, read_jsonl
from shared.scenes.image import BACKGROUND
from shared.scenes.video import parse_caption, render_video
from shared.serving import create_app, running_server
from shared.video_io import read_video


class RenderingStandIn:
    """Draws the prompt's exact clip for even seeds and a blank clip for odd seeds."""

    frames, height = 8, 32

    def generate(self, prompts, seeds, **_):
        blank = np.full((8, 32, 32, 3), BACKGROUND, dtype=np.uint8)
        return np.stack([render_video(parse_caption(p), 8, 32, s).frames if s % 2 == 0 else blank
                         for p, s in zip(prompts, seeds)])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t2v") / "tiny"
    args = ["--config", "configs/t2v/tiny.yaml", f"run_dir={folder}"]
    patch = pytest.MonkeyPatch()
    patch.setattr(t2v_train, "sample_videos", lambda model, *a, **k: sample_videos(RenderingStandIn(), *a, **k))
    try:
        results = t2v_train.main(args)
    finally:
        patch.undo()
    return folder, args, results


@pytest.mark.slow
def test_pipeline_runs_ipo_rounds_for_both_labellings_and_evaluates(run):
    folder, _, results = run
    round_dir = folder / "ipo_dpo" / "round_000"
    scored = read_jsonl(round_dir / "scored.jsonl", Candidate)
    assert len(scored) == 5 * 3 and {c.scores["passed"] for c in scored} == {0.0, 1.0}
    assert all(read_video(round_dir / c.output).shape == (8, 32, 32, 3) for c in scored)
    by_video = {c.output: c for c in scored}
    pairs = read_jsonl(round_dir / "pairs.jsonl", Pair)
    assert pairs and all(by_video[p.chosen].scores["overall"] > by_video[p.rejected].scores["overall"] for p in pairs)
    assert all(by_video[p.chosen].prompt == by_video[p.rejected].prompt == p.prompt for p in pairs)
    lists = read_jsonl(folder / "ipo_kto" / "round_000" / "pairs.jsonl", RankedList)
    assert len(lists) == 5 and all(lst.scores == sorted(lst.scores, reverse=True) for lst in lists)
    for labelling in ("dpo", "kto"):
        metrics = json.loads((folder / f"ipo_{labelling}" / "round_000" / "metrics.json").read_text())
        assert 0.0 <= metrics["passed"] <= 1.0
        log = (folder / f"ipo_{labelling}" / "round_000" / "fit" / "logs" / "version_0" / "metrics.csv").read_text()
        assert "real_error" in log  # the real-video regulariser was in the loss
    assert set(results["models"]) == {"sft", "dpo_r1", "kto_r1"}
    for r in results["models"].values():
        passed = r["metrics"]["passed"]
        assert 0.0 <= passed["low"] <= passed["value"] <= passed["high"] <= 1.0
        assert r["metrics"]["flickering"]["n"] == 5 * 1 * 2 and set(r["per_seed"]) == {"0", "1"}
    table = (folder / "eval" / "table.md").read_text()
    assert "| dpo_r1 |" in table and "| kto_r1 |" in table and "temporal flickering (VBench)" in table
    grid = read_video(folder / "eval" / "grid.gif")
    assert grid.shape[0] == 8 and (folder / "eval" / "grid.mp4").stat().st_size > 0
    # A rerun finds every stage complete and returns the same result.
    assert t2v_train.main(run[1]) == results


@pytest.mark.slow
def test_saved_pipeline_reproduces_videos_and_eval_reuses_results(run):
    folder, _, _ = run
    a = load_saved(resolve_pipeline(str(folder))).generate(["a red circle moving left"] * 2, [5, 6], steps=2)
    b = load_saved(resolve_pipeline(str(folder), "dpo_r1")).generate(["a red circle moving left"] * 2, [5, 6], steps=2)
    assert a.shape == (2, 8, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    before = (folder / "eval" / "sft" / "seed_0" / "results.jsonl").stat().st_mtime_ns
    results = eval_main(["--run", str(folder), "--seeds", "0"])
    assert results["models"]["sft"]["metrics"]["passed"]["n"] == 5
    assert (folder / "eval" / "sft" / "seed_0" / "results.jsonl").stat().st_mtime_ns == before


@pytest.mark.slow
def test_serving_returns_mp4_and_the_critics_verdict(run):
    folder, _, _ = run
    generator = VideoGenerator(load_saved(resolve_pipeline(str(folder))), steps=2)
    with running_server(create_app(generator)) as url:
        body = {"prompts": ["a blue square moving up", "a dog on a beach"], "params": {"seed": 3, "guidance": 2.0}}
        request = urllib.request.Request(f"{url}/generate", method="POST", headers={"content-type": "application/json"},
                                         data=json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=60) as reply:
            outputs = json.loads(reply.read())["outputs"]
    assert [o["seed"] for o in outputs] == [3, 4]
    path = folder / "served.mp4"
    path.write_bytes(base64.b64decode(outputs[0]["video_mp4_base64"]))
    assert read_video(path).shape == (8, 128, 128, 3)  # 4x upscaled for viewing
    assert set(outputs[0]["critic"]) >= {"object", "colour", "motion", "consistency", "smoothness", "passed"}
    assert outputs[1]["critic"] is None


def test_build_with_no_score_gap_stops_with_one_line(tmp_path):
    from apps.t2v.ipo import IPOArgs, build_labels

    same = [Candidate("0", "a red circle moving left", f"videos/{k}.npy", scores={"overall": 0.4}) for k in range(3)]
    with pytest.raises(LoopError, match="score alike"):
        build_labels("dpo", same, IPOArgs(), 0)
    assert len(build_labels("kto", same, IPOArgs(), 0)) == 1


def _train_error(capsys, *overrides) -> str:
    """Run train in-process with the tiny config; return its one-line error (it must exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        t2v_train.main(["--config", "configs/t2v/tiny.yaml", *overrides])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_config_and_malformed_prompt_file_give_one_line(tmp_path, capsys):
    assert "stepz" in _train_error(capsys, "ipo.stepz=3", f"run_dir={tmp_path / 'a'}")
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"prompt": "a red circle moving right"}\n'
                   '{"scene": {"category": "moving", "objects": [{"colour": "pink", "shape": "circle", "motion": "up"}]}}\n')
    err = _train_error(capsys, f"data.train_prompts={bad}", f"run_dir={tmp_path / 'b'}")
    assert f"{bad}:2" in err and "scene.objects[0].colour" in err
    bad.write_text('{"prompt": "a dog running on a beach"}\n')
    err = _train_error(capsys, f"data.train_prompts={bad}", f"run_dir={tmp_path / 'c'}")
    assert f"{bad}:1" in err and "not a caption the critic reads" in err
    assert "unknown labelling 'ipoo'" in _train_error(capsys, "ipo.labellings=[dpo, ipoo]", f"run_dir={tmp_path / 'd'}")
    err = _train_error(capsys, "critic.kind=learned", f"critic.path={tmp_path}", f"run_dir={tmp_path / 'e'}")
    assert "not a learned-critic folder" in err
    assert not (tmp_path / "b").exists()  # nothing written before the inputs are checked


def test_cogvideox_layout_with_lora_trains_generates_and_saves(tmp_path):
    """The paper-scale path on a tiny CogVideoX pipeline built from config: VAE latents, T5, LoRA, a DPO step."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    from apps.t2v.ipo import TrainingItems
    from apps.t2v.model import ModelArgs, caption_vocabulary, load_model, transformer_lora
    from shared.kit.diffusion import stack_batch
    from shared.models.tokenizer import prompt_word_tokenizer
    from shared.modules.diffusion import DiffusionPreferenceModule
    from shared.video_io import write_npy

    torch.manual_seed(0)
    tok = prompt_word_tokenizer(caption_vocabulary(), 16)
    text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=37, num_layers=1, num_heads=4,
                                   dropout_rate=0.0))
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    transformer = CogVideoXTransformer3DModel(num_attention_heads=4, attention_head_dim=8, in_channels=4, out_channels=4,
                                              time_embed_dim=2, text_embed_dim=32, num_layers=1, sample_width=2,
                                              sample_height=2, sample_frames=9, patch_size=2, temporal_compression_ratio=4,
                                              max_text_seq_length=16)
    CogVideoXPipeline(tokenizer=tok, text_encoder=text, vae=vae, transformer=transformer,
                      scheduler=CogVideoXDDIMScheduler(prediction_type="v_prediction")).save_pretrained(tmp_path / "cog")
    model = load_model(ModelArgs(source="pipeline", path=str(tmp_path / "cog"), resolution=16, frames=9,
                                 lora=transformer_lora(r=4, alpha=4)))
    assert model.latent and (model.height, model.width, model.frames) == (16, 16, 9)
    videos = model.generate(["a red circle moving left", "a blue square moving up"], [0, 1], steps=2)
    assert videos.shape[0] == 2 and videos.shape[2:] == (16, 16, 3) and videos.dtype == np.uint8
    clip = render_video(parse_caption("a red circle moving left"), 9, 32, 0).frames[:, ::2, ::2]
    write_npy(tmp_path / "round" / "a.npy", clip)
    write_npy(tmp_path / "round" / "b.npy", np.full_like(clip, 255))
    pair = Pair(prompt="a red circle moving left", chosen="a.npy", rejected="b.npy")
    scenes = {pair.prompt: parse_caption(pair.prompt)}
    items = TrainingItems(model, tmp_path / "round", scenes, 0).items([pair, pair], 0.95)
    assert items[0]["chosen"].shape == (3, 4, 2, 2) and items[0]["real"].shape == (3, 4, 2, 2)  # (F', C, h, w) latents
    module = DiffusionPreferenceModule(model.unet, model.noise_scheduler, loss="diffusion_dpo", real_weight=0.5)
    assert module.reference_kind == "adapter_disabled"
    module.training_step(stack_batch(items), 0).backward()
    trained = [n for n, p in model.unet.named_parameters() if p.grad is not None]
    assert trained and all("lora" in n for n in trained)
    model.save(tmp_path / "out")
    again = load_saved(tmp_path / "out", ModelArgs(resolution=16, frames=9))
    assert (tmp_path / "out" / "vae").is_dir() and again.generate(["a red circle moving left"], [0], steps=2).shape[0] == 1
