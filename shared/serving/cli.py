"""Run the app with uvicorn, and the command-line options every app's `infer serve` exposes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import uvicorn

from shared.serving.app import create_app
from shared.serving.protocol import Generator


def serve(
    generator: Generator, host: str = "127.0.0.1", port: int = 8000, *, log_level: str = "info", **app_kwargs: Any
) -> None:
    """Serve generator over HTTP until interrupted; app_kwargs go to create_app (limits, batching, name)."""
    # one process: the model lives in it, and one worker thread is what shares it between requests
    uvicorn.run(create_app(generator, **app_kwargs), host=host, port=port, log_level=log_level)


def infer_parser(prog: str, description: str, argv: list[str], *,
                 text: bool = True) -> tuple[argparse.ArgumentParser, list[str], bool]:
    """Return (parser, the arguments left to parse, serving) for an app's `infer [serve] ...` command.

    With `text` (a language-model app) the parser has --model (smollm2, a run folder or a
    save_pretrained folder; default smollm2) and --max-new-tokens; otherwise a required --model (a
    run folder or the app's model folder). With a leading `serve`, also the options of add_serve_args.
    """
    serving = bool(argv) and argv[0] == "serve"
    parser = argparse.ArgumentParser(prog=prog + (" serve" if serving else ""), description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if text:
        parser.add_argument("--model", default="smollm2", help="smollm2, a training run folder or a save_pretrained folder")
        parser.add_argument("--max-new-tokens", type=int, default=256)
    else:
        parser.add_argument("--model", required=True, help="a training run folder or a model folder")
    if serving:
        add_serve_args(parser)
    return parser, argv[1:] if serving else argv, serving


def add_serve_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --host, --port, --served-model-name and the batching and length options of `serve` to parser; return it."""
    group = parser.add_argument_group("serving")
    group.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    group.add_argument("--port", type=int, default=8000, help="port to listen on")
    group.add_argument("--served-model-name",
                       help="the model name of /health and the OpenAI API (default: the --model folder's name)")
    group.add_argument("--max-batch-size", type=int, default=8, help="most prompts in one generator call")
    group.add_argument("--max-wait-ms", type=float, default=10.0, help="longest a prompt waits for a batch to fill")
    group.add_argument(
        "--max-new-tokens-limit", type=int, default=1024, help="largest max_new_tokens a request may ask for"
    )
    return parser


def served_name(args: argparse.Namespace) -> str | None:
    """Return --served-model-name, else the name of the --model folder (a run's name, or smollm2), else None."""
    if args.served_model_name:
        return args.served_model_name
    model = getattr(args, "model", None)
    return Path(model).name or None if model else None


def serve_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Return the keyword arguments of serve() from options parsed with add_serve_args."""
    return {
        "host": args.host,
        "port": args.port,
        "name": served_name(args),
        "max_batch_size": args.max_batch_size,
        "max_wait_ms": args.max_wait_ms,
        "max_new_tokens_limit": args.max_new_tokens_limit,
    }
