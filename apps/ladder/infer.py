"""Write a ladder program for an instruction (text form, PLCopen XML and Structured Text), or serve the model.

    python -m apps.ladder.infer --model runs/ladder/raft_dpo \\
        --instruction "Start Pump1 with Start1 and keep it running until Stop1 is pressed." \\
        --inputs Start1 Stop1 --outputs Pump1 --out runs/ladder/answer
    python -m apps.ladder.infer serve --model runs/ladder/raft_dpo --port 8000
    curl -s localhost:8000/generate -H 'content-type: application/json' \\
         -d '{"prompts": ["{\\"instruction\\": \\"...\\", \\"variables\\": {\\"Start1\\": \\"input\\", \\"Pump1\\": \\"output\\"}}"]}'

A prompt is an instruction, or a JSON object (as a string) `{"instruction", "variables": [{"name",
"role"}] or {name: role}, "blocks": [[name, "TON"], ...]}` with its variable table (roles input,
output, memory). With a training run as --model, each prompt carries the run's raft.k most similar
training tasks (BM25), as in training. Each output is {"program": the text form, "parsed",
"reason" (why it does not parse, else ""), "plcopen": PLCopen TC6 XML (for Beremiz / OpenPLC) and
"st": IEC 61131-3 Structured Text, both null when the program does not parse}. With --out, the
CLI also writes program.txt, program.xml, program.st and rungs.png there.

The server also speaks OpenAI's API (/v1/models, /v1/chat/completions, /v1/completions, streaming
included) for the model itself: send the prompt of apps/ladder/prompts.py as the messages.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from apps.ladder.prompts import task_prompt
from apps.ladder.tasks import Task, Var
from shared.serving import HFTextGenerator
from shared.serving.cli import infer_parser, serve, serve_kwargs
from shared.serving.textmodel import Sampling

PROG = "python -m apps.ladder.infer"
ROLES = ("input", "output", "memory")


def parse_request(prompt: str) -> Task:
    """The task of a request prompt (an instruction, or a JSON object); ValueError naming the bad field."""
    text = prompt.strip()
    if not text:
        raise ValueError("prompt is empty")
    if not text.startswith("{"):
        return Task("request", " ".join(text.split()), (), (), "", ("request",))
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"prompt is not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ValueError("prompt must be a JSON object")
    instruction = obj.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise ValueError("prompt field 'instruction' must be a non-empty string")
    raw = obj.get("variables", [])
    rows = list(raw.items()) if isinstance(raw, dict) else raw
    if not isinstance(rows, list):
        raise ValueError("prompt field 'variables' must be a list of {name, role} or an object name -> role")
    table = []
    for i, row in enumerate(rows):
        name, role = (row if isinstance(row, tuple) else (row.get("name"), row.get("role", "input"))
                      if isinstance(row, dict) else (None, None))
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"prompt field 'variables[{i}].name' must be an identifier")
        if role not in ROLES:
            raise ValueError(f"prompt field 'variables[{i}].role' must be one of {', '.join(ROLES)}")
        table.append(Var(name, role, ""))
    blocks = obj.get("blocks", [])
    if not isinstance(blocks, list) or not all(isinstance(b, list) and len(b) == 2 and all(isinstance(x, str) for x in b)
                                               for b in blocks):
        raise ValueError("prompt field 'blocks' must be a list of [name, type] pairs")
    return Task("request", " ".join(instruction.split()), tuple(table), tuple(tuple(b) for b in blocks), "",
                ("request",))


def render_outputs(text: str) -> dict:
    """The answer's program text with its parse status, PLCopen XML and Structured Text."""
    from apps.ladder.plcopen import to_plcopen
    from apps.ladder.program import try_parse
    from apps.ladder.score import extract_program
    from apps.ladder.st import to_structured_text

    program_text = extract_program(text)
    program, reason = try_parse(program_text)
    if program is None:
        return {"program": program_text, "parsed": False, "reason": reason, "plcopen": None, "st": None}
    return {"program": program_text, "parsed": True, "reason": "",
            "plcopen": to_plcopen(program).decode("utf-8"), "st": to_structured_text(program)}


class LadderGenerator:
    """Prompts with the task (and retrieved examples), generates the program, and exports it."""

    def __init__(self, model, tokenizer, *, retriever=None, k: int = 0, max_new_tokens: int = 160):
        self.text_model = HFTextGenerator(model, tokenizer, max_new_tokens=max_new_tokens, chat=True, name="ladder")
        self.accepted_params = self.text_model.accepted_params
        self.retriever, self.k, self.name = retriever, k, "ladder"

    def check_prompt(self, prompt: str) -> None:
        """Raise ValueError naming the bad field of a malformed prompt (the server answers 422 before batching)."""
        parse_request(prompt)

    def generate(self, prompts: list[str], **params: Any) -> list[dict]:
        tasks = [parse_request(p) for p in prompts]
        sampling = Sampling(max_tokens=params.get("max_new_tokens"), temperature=params.get("temperature"),
                            top_p=params.get("top_p"), seed=params.get("seed"))
        rows = [task_prompt(t, self.retriever.examples(t, self.k) if self.retriever and self.k else ()) for t in tasks]
        return [render_outputs(c.text) for c in self.text_model.complete(rows, sampling)]


def run_context(model: str):
    """(retriever, k) of a training run folder (its training tasks and raft.k), else (None, 0)."""
    config = Path(model) / "config.yaml"
    if not config.is_file():
        return None, 0
    from apps.ladder.config import LadderConfig
    from apps.ladder.data import load_split
    from apps.ladder.retrieval import ExampleRetriever
    from shared.config import load_yaml

    cfg = load_yaml(LadderConfig, config)
    return (ExampleRetriever(load_split(cfg.data, "train")), cfg.raft.k) if cfg.raft.k else (None, 0)


def main(argv: list[str] | None = None) -> None:
    from shared.config import ConfigError
    from shared.models import load_policy, resolve_model

    parser, rest, serving = infer_parser(PROG, __doc__, list(sys.argv[1:] if argv is None else argv))
    if not serving:
        parser.add_argument("--instruction", required=True)
        parser.add_argument("--inputs", nargs="*", default=[], help="input variable names")
        parser.add_argument("--outputs", nargs="*", default=[], help="output variable names")
        parser.add_argument("--memory", nargs="*", default=[], help="internal BOOL variable names")
        parser.add_argument("--blocks", nargs="*", default=[], help="block instances as NAME:TYPE (T1:TON)")
        parser.add_argument("--out", type=Path, help="write program.txt, program.xml, program.st and rungs.png here")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--seed", type=int)
    args = parser.parse_args(rest)
    try:
        spec, _ = resolve_model(args.model)
        retriever, k = run_context(args.model)
        prompt = None
        if not serving:
            blocks = [b.split(":", 1) for b in args.blocks]
            if any(len(b) != 2 for b in blocks):
                raise ValueError("--blocks: expected NAME:TYPE such as T1:TON")
            prompt = json.dumps({"instruction": args.instruction, "blocks": blocks,
                                 "variables": [{"name": n, "role": r} for r, names in
                                               (("input", args.inputs), ("output", args.outputs), ("memory", args.memory))
                                               for n in names]})
            parse_request(prompt)
    except (ValueError, OSError, ConfigError) as exc:
        parser.error(str(exc))
    model, tok = load_policy(spec)
    generator = LadderGenerator(model, tok, retriever=retriever, k=k, max_new_tokens=args.max_new_tokens)
    if serving:
        serve(generator, **serve_kwargs(args))
        return
    out = generator.generate([prompt], temperature=args.temperature, seed=args.seed)[0]
    if args.out:
        from shared.atomic import write_text

        args.out.mkdir(parents=True, exist_ok=True)
        write_text(args.out / "program.txt", out["program"] + "\n")
        if out["parsed"]:
            from apps.ladder.program import parse_program
            from apps.ladder.render import render_rungs

            write_text(args.out / "program.xml", out["plcopen"])
            write_text(args.out / "program.st", out["st"])
            render_rungs(parse_program(out["program"]), args.out / "rungs.png")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
