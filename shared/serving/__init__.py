"""Serve any app's generator over HTTP: a Generator protocol, a batched FastAPI app, uvicorn and CLI helpers."""

from shared.serving.app import create_app
from shared.serving.background import running_server
from shared.serving.batching import Batcher, GeneratorError
from shared.serving.cli import add_serve_args, serve, serve_kwargs
from shared.serving.hf import HFTextGenerator
from shared.serving.protocol import TEXT_PARAMS, Generator, Param
from shared.serving.validation import Limits, RequestError, parse_body

__all__ = [
    "TEXT_PARAMS",
    "Batcher",
    "Generator",
    "GeneratorError",
    "HFTextGenerator",
    "Limits",
    "Param",
    "RequestError",
    "add_serve_args",
    "create_app",
    "parse_body",
    "running_server",
    "serve",
    "serve_kwargs",
]
