"""The text-to-image app at CI size: SFT, OSPO's pool and pairs, every method's fit, eval, grids, serving, errors.

The tiny model cannot draw a passing image after 30 SFT steps, so the OSPO pool in the end-to-end
test is drawn by a stand-in generator: the renderer's exact image of the prompt for even seeds (it
passes every object question of its own prompt) and a blank canvas for odd ones (it fails). That
gives the pair builders both sides; everything else (SFT, fits, evaluation) runs the real model.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

import apps.t2i.train as t2i_train
from apps.t2i.eval import main as eval_main
from apps.t2i.infer import ImageGenerator, resolve_pipeline
from apps.t2i.model import load_saved
from apps.t2i.preference import draw_and_check
from shared.scenes.image import BACKGROUND, parse_prompt, render
from shared.records import Candidate, Pair, read_jsonl
from shared.serving import create_app, running_server


class RenderingStandIn:
    """Draws the prompt's exact scene for even seeds and a blank canvas for odd seeds."""

    resolution = 32

    def generate(self, prompts, seeds, **_):
        blank = np.full((32, 32, 3), BACKGROUND, dtype=np.uint8)
        return np.stack([render(parse_prompt(p), 32, s).image if s % 2 == 0 else blank for p, s in zip(prompts, seeds)])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("t2i") / "tiny"
    args = ["--config", "configs/t2i/tiny.yaml", f"run_dir={folder}"]
    patch = pytest.MonkeyPatch()
    patch.setattr(t2i_train, "draw_and_check", lambda model, *a, **k: draw_and_check(RenderingStandIn(), *a, **k))
    try:
        results = t2i_train.main(args)
    finally:
        patch.undo()
    return folder, args, results


@pytest.mark.slow
def test_pipeline_builds_pairs_trains_every_method_and_evaluates(run):
    folder, _, results = run
    samples = read_jsonl(folder / "pool" / "samples.jsonl", Candidate)
    assert {c.metadata["source"] for c in samples} == {"base", "negative"}
    ospo = read_jsonl(folder / "pool" / "pairs_ospo.jsonl", Pair)
    dpo = read_jsonl(folder / "pool" / "pairs_diffusion_dpo.jsonl", Pair)
    assert ospo and dpo
    by_image = {c.output: c for c in samples}
    for p in ospo:  # chosen: base prompt, passes; rejected: a hard negative's image that fails the base questions
        chosen, rejected = by_image[p.chosen], by_image[p.rejected]
        assert chosen.metadata["source"] == "base" and chosen.scores["passed"] == 1.0
        assert rejected.metadata["source"] == "negative" and rejected.scores["passed"] == 0.0
        assert p.metadata["negative_prompt"] == rejected.prompt != p.prompt
    for p in dpo:  # no hard negatives: both sides drawn from the base prompt
        assert by_image[p.chosen].prompt == by_image[p.rejected].prompt == p.prompt
    assert set(results["models"]) == {"sft", "ospo", "ospo_mask", "diffusion_dpo", "diffusion_kto"}
    for name, r in results["models"].items():
        assert (folder / name / "model" / "model_index.json").is_file() if name != "sft" else True
        overall = r["metrics"]["overall"]
        assert 0.0 <= overall["low"] <= overall["value"] <= overall["high"] <= 1.0 and overall["n"] == 6 * 2 * 2
        assert set(r["per_seed"]) == {"0", "1"}
    table = (folder / "eval" / "table.md").read_text()
    assert "| ospo |" in table and "| diffusion_kto |" in table and "overall per seed" in table
    assert (folder / "eval" / "metric_overall.png").is_file() and (folder / "eval" / "results.csv").is_file()
    with Image.open(folder / "eval" / "before_after_ospo.png") as grid:
        assert grid.size[1] == 6 * (32 * 3 + 2)  # one row per category
    # A rerun finds every stage complete and returns the same result.
    assert t2i_train.main(run[1]) == results


@pytest.mark.slow
def test_saved_pipeline_loads_and_reproduces_images(run):
    folder, _, _ = run
    model = load_saved(resolve_pipeline(str(folder)))
    a = model.generate(["a photo of a red circle"] * 2, [5, 6], steps=3)
    b = load_saved(resolve_pipeline(str(folder), "ospo")).generate(["a photo of a red circle"] * 2, [5, 6], steps=3)
    assert a.shape == (2, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    with pytest.raises(ValueError, match="no model 'nope'"):
        resolve_pipeline(str(folder), "nope")


@pytest.mark.slow
def test_eval_cli_reuses_results_and_takes_seeds(run):
    folder, _, _ = run
    before = (folder / "eval" / "sft" / "seed_0" / "results.jsonl").stat().st_mtime_ns
    results = eval_main(["--run", str(folder), "--seeds", "0"])
    assert results["models"]["sft"]["metrics"]["overall"]["n"] == 6 * 2
    assert set(results["models"]) == {"sft", "ospo", "ospo_mask", "diffusion_dpo", "diffusion_kto"}
    assert (folder / "eval" / "sft" / "seed_0" / "results.jsonl").stat().st_mtime_ns == before  # reused, not redrawn
    assert "seeds [0]" in (folder / "eval" / "table.md").read_text()


@pytest.mark.slow
def test_serving_returns_png_and_checks_scene_prompts(run):
    folder, _, _ = run
    generator = ImageGenerator(load_saved(resolve_pipeline(str(folder))), steps=3)
    with running_server(create_app(generator)) as url:
        body = {"prompts": ["a photo of two blue squares", "something else"], "params": {"seed": 3, "guidance": 2.0}}
        request = urllib.request.Request(f"{url}/generate", method="POST", headers={"content-type": "application/json"},
                                         data=json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=60) as reply:
            outputs = json.loads(reply.read())["outputs"]
    assert [o["seed"] for o in outputs] == [3, 4]
    with Image.open(io.BytesIO(base64.b64decode(outputs[0]["image_png_base64"]))) as image:
        assert image.size == (32, 32)
    assert outputs[0]["check"]["answers"][0]["question"] and outputs[1]["check"] is None


def _train_error(capsys, *overrides) -> str:
    """Run train in-process with the tiny config; return its one-line error (it must exit 2)."""
    with pytest.raises(SystemExit) as exit_info:
        t2i_train.main(["--config", "configs/t2i/tiny.yaml", *overrides])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_config_key_and_malformed_prompt_file_give_one_line(tmp_path, capsys):
    assert "stepz" in _train_error(capsys, "pref.stepz=3", f"run_dir={tmp_path / 'a'}")
    bad = tmp_path / "prompts.jsonl"
    bad.write_text('{"scene": {"category": "single_object", "objects": [{"colour": "red", "shape": "circle"}]}}\n'
                   '{"scene": {"category": "single_object", "objects": [{"colour": "pink", "shape": "circle"}]}}\n')
    err = _train_error(capsys, f"data.train_prompts={bad}", f"run_dir={tmp_path / 'b'}")
    assert f"{bad}:2" in err and "pink" in err
    assert "unknown method 'dpoo'" in _train_error(capsys, "pref.methods=[ospo, dpoo]", f"run_dir={tmp_path / 'c'}")


def test_diffusion_sft_step_trains_unet_and_text_encoder():
    from apps.t2i.model import ModelArgs, load_model, tokenize
    from shared.modules.diffusion_sft import DiffusionSFTModule

    model = load_model(ModelArgs(channels=[16, 32], text_width=32, text_layers=1))
    module = DiffusionSFTModule(model.unet, model.noise_scheduler, text_encoder=model.text_encoder,
                                empty_ids=tokenize(model.tokenizer, [""])[0], train_text_encoder=True, condition_dropout=0.5)
    batch = {"samples": torch.randn(4, 3, 32, 32), "input_ids": tokenize(model.tokenizer, ["a photo of a red circle"] * 4)}
    loss = module._step(batch, "train", 0)
    loss.backward()
    assert loss.isfinite()
    assert model.text_encoder.get_input_embeddings().weight.grad is not None
    assert next(model.unet.parameters()).grad is not None


def test_stable_diffusion_layout_with_lora_trains_generates_and_saves(tmp_path):
    """The paper-scale path on a tiny Stable Diffusion pipeline built from config: VAE latents, LoRA, OSPO step."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from apps.t2i.model import ModelArgs, load_model, scene_vocabulary, unet_lora, word_tokenizer
    from apps.t2i.preference import png_bytes
    from apps.t2i.train import PreferenceBatches
    from shared.kit.diffusion import stack_batch
    from shared.modules.diffusion import DiffusionPreferenceModule
    from shared.records import Pair

    torch.manual_seed(0)
    tok = word_tokenizer(scene_vocabulary(), 16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                        num_attention_heads=1, max_position_embeddings=16, pad_token_id=0, bos_token_id=2,
                                        eos_token_id=3))
    vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        block_out_channels=(8, 16), latent_channels=4, norm_num_groups=8, sample_size=32)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=DDIMScheduler(),
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(tmp_path / "sd")
    model = load_model(ModelArgs(source="pipeline", path=str(tmp_path / "sd"), resolution=32, lora=unet_lora(r=4, alpha=4)))
    assert model.latent and model.resolution == 32
    images = model.generate(["a photo of a red circle", "a photo of a blue square"], [0, 1], steps=2)
    assert images.shape == (2, 32, 32, 3)
    for i, image in enumerate([render(parse_prompt("a photo of a red circle"), 32, 0).image, images[1]]):
        (tmp_path / "pool" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "pool" / "images" / f"{i}.png").write_bytes(png_bytes(image))
    pair = Pair(prompt="a photo of a red circle", chosen="images/0.png", rejected="images/1.png",
                metadata={"negative_prompt": "a photo of a red square"})
    items = PreferenceBatches(model, tmp_path / "pool", "ospo_mask", 2.0).items([pair, pair])
    assert items[0]["chosen"].shape == (4, 16, 16) and items[0]["chosen_weights"].shape == (1, 16, 16)
    module = DiffusionPreferenceModule(model.unet, model.noise_scheduler, loss="diffusion_ospo")
    assert module.reference_kind == "adapter_disabled"
    module.training_step(stack_batch(items), 0).backward()
    trained = [n for n, p in model.unet.named_parameters() if p.grad is not None]
    assert trained and all("lora" in n for n in trained)
    model.save(tmp_path / "out")
    assert (tmp_path / "out" / "vae").is_dir() and load_saved(tmp_path / "out", 32).generate(["a photo of a red circle"], [0], steps=2).shape == (1, 32, 32, 3)
