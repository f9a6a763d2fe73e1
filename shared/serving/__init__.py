"""Serve any app's generator over HTTP: a Generator protocol, a batched FastAPI app, OpenAI's API for text models,
uvicorn and CLI helpers."""

from shared.serving.app import create_app
from shared.serving.background import running_server
from shared.serving.batching import Batcher, GeneratorError
from shared.serving.cli import add_serve_args, infer_parser, serve, serve_kwargs
from shared.serving.hf import HFTextGenerator
from shared.serving.protocol import TEXT_PARAMS, Generator, Param
from shared.serving.textmodel import Completion, Sampling, TextModel
from shared.serving.validation import Limits, RequestError, parse_body
from shared.serving.worker import Worker

__all__ = [
    "TEXT_PARAMS",
    "Batcher",
    "Completion",
    "Generator",
    "GeneratorError",
    "HFTextGenerator",
    "Limits",
    "Param",
    "RequestError",
    "Sampling",
    "TextModel",
    "Worker",
    "add_serve_args",
    "create_app",
    "infer_parser",
    "parse_body",
    "running_server",
    "serve",
    "serve_kwargs",
]
