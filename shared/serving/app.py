"""The HTTP app: GET /health and a batched POST /generate that serve any Generator."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from shared.serving.batching import Batcher, GeneratorError
from shared.serving.errors import error_response, install_error_handlers
from shared.serving.protocol import Generator, Param, accepted_params, generator_name
from shared.serving.validation import Limits, RequestError, parse_body, upper_bound

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
) -> FastAPI:
    """Return a FastAPI app serving generator: GET /health and POST /generate with request batching."""
    if not callable(getattr(generator, "generate", None)):
        raise TypeError(f"{type(generator).__name__} has no generate(prompts, **params) method")
    limits = Limits(
        max_prompts_per_request=max_prompts_per_request,
        max_prompt_chars=max_prompt_chars,
        max_new_tokens_limit=max_new_tokens_limit,
        max_body_bytes=max_body_bytes,
    )
    specs = accepted_params(generator)
    model_name = name or generator_name(generator)
    batcher = Batcher(lambda prompts, params: generator.generate(prompts, **params), max_batch_size, max_wait_ms)
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await batcher.close()

    app = FastAPI(title=f"{model_name} generator", lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Return the status, model name, uptime and how many prompts are queued or being generated."""
        return {
            "status": "ok",
            "model": model_name,
            "uptime_s": round(time.monotonic() - started, 3),
            "queue_depth": batcher.queue_depth,
            "in_flight": batcher.in_flight,
        }

    @app.post("/generate", openapi_extra=_openapi_body(specs, limits))
    async def generate(request: Request) -> Response:
        """Return one output per prompt and the request's latency in milliseconds."""
        start = time.perf_counter()
        check_content_type(request)
        prompts, params = parse_body(await read_body(request, limits.max_body_bytes), specs, limits)
        try:
            # a seeded request gets calls of its own, so its outputs do not depend on other traffic
            outputs = await batcher.submit(prompts, params, alone="seed" in params)
        except GeneratorError as exc:
            return error_response(500, f"generator failed: {exc}")
        latency_ms = round((time.perf_counter() - start) * 1000, 3)
        return json_response({"outputs": outputs, "latency_ms": latency_ms})

    return app


def check_content_type(request: Request) -> None:
    """Raise a 415 RequestError unless the request says its body is JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise RequestError(415, f"Content-Type must be application/json, got {media_type or 'none'}")


async def read_body(request: Request, limit: int) -> bytes:
    """Return the request body, or raise a 413 RequestError once it is (or declares to be) over limit bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # uvicorn itself refuses a malformed Content-Length
        raise RequestError(413, f"body is {int(declared)} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a chunked body has no Content-Length to check up front
            raise RequestError(413, f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
