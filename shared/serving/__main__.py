"""Serve a saved causal LM over HTTP: python -m shared.serving --model runs/demo/seed0/model [--port 8000].

`--model` is a save_pretrained folder (what save_policy writes for a fully fine-tuned model, or
any Hugging Face model folder), or a peft adapter folder whose base model its
adapter_config.json names by a loadable path. Besides /health and /generate the server speaks
OpenAI's API under /v1 (docs/serving.md), as the model named by the folder (--served-model-name).
Apps serve their own generators through `python -m apps.<domain>.infer serve`; this command is
for any text policy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.serving.cli import add_serve_args, serve, serve_kwargs
from shared.serving.hf import HFTextGenerator


def load_text_generator(model_dir: str, *, max_new_tokens: int, chat: bool) -> HFTextGenerator:
    """Return an HFTextGenerator for a model or adapter folder; a clear error when it cannot be loaded."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(model_dir)
    if not folder.is_dir():
        raise SystemExit(f"--model {model_dir}: not a folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if (folder / "adapter_config.json").is_file():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(folder)
        else:
            model = AutoModelForCausalLM.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--model {model_dir}: {str(exc).splitlines()[0]}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return HFTextGenerator(model.eval(), tokenizer, max_new_tokens=max_new_tokens, chat=chat, name=folder.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.serving", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="save_pretrained model folder or peft adapter folder")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="default completion length (default: 128)")
    parser.add_argument("--chat", action="store_true", help="wrap prompts in the tokenizer's chat template")
    add_serve_args(parser)
    args = parser.parse_args(argv)
    generator = load_text_generator(args.model, max_new_tokens=args.max_new_tokens, chat=args.chat)
    serve(generator, **serve_kwargs(args))


if __name__ == "__main__":
    sys.exit(main())
