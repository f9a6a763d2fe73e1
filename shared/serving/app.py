"""The HTTP app: GET /health and a batched POST /generate that serve any Generator, plus OpenAI's /v1 for text models."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from shared.serving.batching import Batcher, GeneratorError
from shared.serving.bodies import check_content_type, read_body
from shared.serving.errors import error_response, install_error_handlers
from shared.serving.openai_routes import OpenAIRoutes
from shared.serving.protocol import Generator, Param, accepted_params, generator_name
from shared.serving.textmodel import TextModel, find_text_model
from shared.serving.validation import Limits, parse_body, upper_bound
from shared.serving.worker import Worker

_SCHEMA_TYPE = {int: "integer", float: "number", bool: "boolean", str: "string"}


def create_app(
    generator: Generator,
    *,
    max_batch_size: int = 8,
    max_wait_ms: float = 10.0,
    max_prompt_chars: int = 16_384,
    max_prompts_per_request: int = 64,
    max_new_tokens_limit: int = 1024,
    max_body_bytes: int = 1_000_000,
    name: str | None = None,
    text_model: TextModel | None = None,
) -> FastAPI:
    """Return a FastAPI app serving generator: GET /health and POST /generate with request batching.

    When the generator has a text model (`text_model`, else the generator's `text_model` attribute,
    else the generator itself when it is a TextModel), the app also serves it through OpenAI's API
    under /v1, as the model `name` (default: the generator's name). All model calls share one
    worker thread.
    """
    if not callable(getattr(generator, "generate", None)):
        raise TypeError(f"{type(generator).__name__} has no generate(prompts, **params) method")
    limits = Limits(
        max_prompts_per_request=max_prompts_per_request,
        max_prompt_chars=max_prompt_chars,
        max_new_tokens_limit=max_new_tokens_limit,
        max_body_bytes=max_body_bytes,
    )
    specs = accepted_params(generator)
    check_prompt = getattr(generator, "check_prompt", None)
    model_name = name or generator_name(generator)
    worker = Worker()
    batcher = Batcher(lambda prompts, params: generator.generate(prompts, **params), max_batch_size, max_wait_ms,
                      worker=worker)
    text_model = find_text_model(generator) if text_model is None else text_model
    openai = None if text_model is None else OpenAIRoutes(
        text_model, model_name, worker, limits, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()
        if openai is not None:
            await openai.close()
        worker.close()

    app = FastAPI(title=f"{model_name} generator", lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Return the status, model name, uptime and how many prompts are queued or being generated."""
        return {
            "status": "ok",
            "model": model_name,
            "uptime_s": round(time.monotonic() - started, 3),
            "queue_depth": batcher.queue_depth + (openai.queue_depth if openai else 0),
            "in_flight": batcher.in_flight + (openai.in_flight if openai else 0),
        }

    @app.post("/generate", openapi_extra=_openapi_body(specs, limits))
    async def generate(request: Request) -> Response:
        """Return one output per prompt and the request's latency in milliseconds."""
        start = time.perf_counter()
        check_content_type(request)
        prompts, params = parse_body(await read_body(request, limits.max_body_bytes), specs, limits)
        if check_prompt is not None:  # before batching: a bad prompt fails its own request, not a shared batch
            for i, prompt in enumerate(prompts):
                try:
                    check_prompt(prompt)
                except ValueError as exc:
                    return error_response(422, f"prompts[{i}]: {exc}")
        try:
            # a seeded request gets calls of its own, so its outputs do not depend on other traffic
            outputs = await batcher.submit(prompts, params, alone="seed" in params)
        except GeneratorError as exc:
            return error_response(500, f"generator failed: {exc}")
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        return json_response({"outputs": outputs, "latency_ms": latency_ms})

    if openai is not None:
        openai.mount(app)
    return app


def json_response(content: dict[str, Any]) -> Response:
    """Return content as a JSON response, or a 500 error when the generator's outputs are not JSON-serialisable."""
    try:
        body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        return error_response(500, f"generator output is not JSON-serialisable: {exc}")
    return Response(body, media_type="application/json")


def _openapi_body(specs: Mapping[str, Param], limits: Limits) -> dict[str, Any]:
    params = {}
    for name, spec in specs.items():
        params[name] = {"type": _SCHEMA_TYPE[spec.kind]}
        if spec.kind in (int, float):
            high = upper_bound(name, spec, limits)
            params[name].update({"minimum": spec.low} if spec.low is not None else {})
            params[name].update({"maximum": high} if high is not None else {})
    schema = {
        "type": "object",
        "properties": {
            "prompts": {
                "type": "array",
                "items": {"type": "string", "maxLength": limits.max_prompt_chars},
                "minItems": 1,
                "maxItems": limits.max_prompts_per_request,
            },
            "prompt": {"type": "string", "maxLength": limits.max_prompt_chars},
            "params": {"type": "object", "properties": params, "additionalProperties": False},
        },
        "additionalProperties": False,
    }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
