"""Generate code with a trained (or the base) model, or serve it over HTTP.

    python -m apps.codegen.infer --model runs/codegen/dstc --prompt $'def add(a, b):\\n    "Return a + b."'
    python -m apps.codegen.infer serve --model runs/codegen/dstc --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["def is_even(n):\\n    \\"Return True when n is even.\\""]}'

A prompt is a function stub (signature and docstring) or a plain request; it is wrapped in the
instruction the model was trained with (`--mode code` or `reasoning`; a run folder knows its own).
Each output is {"completion": raw text, "code": the extracted function or null}.

The server also speaks OpenAI's API (/v1/models, /v1/chat/completions, /v1/completions, streaming
included) for the model itself: chat messages go through its chat template as they are, without
the codegen instruction. The model name is the --model folder's name (--served-model-name):

    curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
         -d '{"model": "dstc", "messages": [{"role": "user", "content": "Write is_even(n) in Python."}]}'
"""

from __future__ import annotations

import json
import re
import sys
from types import SimpleNamespace
from typing import Any

from shared.models import resolve_model
from apps.codegen.prompts import code_prompt, reasoning_prompt
from apps.codegen.reward import split_completion
from shared.models import load_policy
from shared.serving import HFTextGenerator
from shared.serving.cli import infer_parser, serve, serve_kwargs

PROG = "python -m apps.codegen.infer"
_DEF = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.M)


class CodegenGenerator:
    """Wraps each prompt in the codegen instruction, generates, and returns the completion and its function.

    `text_model` (the model itself, with its chat template) is what the server's OpenAI routes serve.
    """

    def __init__(self, model, tokenizer, *, mode: str = "code", max_new_tokens: int = 256):
        self.text_model = HFTextGenerator(model, tokenizer, max_new_tokens=max_new_tokens, chat=True, name="codegen")
        self.accepted_params = self.text_model.accepted_params
        self.mode, self.name = mode, "codegen"

    def instruction(self, prompt: str) -> str:
        """Return the user message for a stub (or a plain request) in this generator's mode."""
        wrap = reasoning_prompt if self.mode == "reasoning" else code_prompt
        return wrap(SimpleNamespace(prompt=prompt, entry_point=""))[0]["content"]

    def generate(self, prompts: list[str], **params: Any) -> list[dict]:
        """Return {"completion", "code"} per prompt: the model's text and the function it defines (or None)."""
        texts = self.text_model.generate([self.instruction(p) for p in prompts], **params)
        out = []
        for prompt, text in zip(prompts, texts):
            match = _DEF.search(prompt)
            code = split_completion(text, match.group(1), self.mode == "reasoning")[1] if match else None
            out.append({"completion": text, "code": code})
        return out


def main(argv: list[str] | None = None) -> None:
    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv))
    parser.add_argument("--mode", choices=["code", "reasoning"], help="instruction format (default: the run's)")
    if not serving:
        parser.add_argument("--prompt", required=True, help="a function stub or a request")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--seed", type=int)
    args = parser.parse_args(rest)
    try:
        spec, final = resolve_model(args.model)
    except ValueError as exc:
        parser.error(str(exc))
    model, tok = load_policy(spec)
    generator = CodegenGenerator(model, tok, mode=args.mode or final.get("mode") or "code", max_new_tokens=args.max_new_tokens)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    print(json.dumps(generator.generate([args.prompt], temperature=args.temperature, seed=args.seed)[0], indent=2))


if __name__ == "__main__":
    main()
