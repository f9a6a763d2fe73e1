"""The OpenAI-compatible routes of a text model: GET /v1/models, POST /v1/chat/completions and /v1/completions.

Non-streamed requests are batched with other requests of equal sampling settings; a seeded
request runs alone, all its choices in one call. A streamed request (`stream: true`) runs as one
call whose pieces are sent as Server-Sent Events as they are generated. Every call runs in the
app's one worker thread, so the event loop keeps answering meanwhile.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from shared.rewards import describe_error
from shared.serving.batching import Batcher, GeneratorError
from shared.serving.bodies import check_content_type, read_body
from shared.serving.errors import OpenAIError, openai_error, openai_error_response
from shared.serving.openai_request import OpenAIRequest, parse_chat, parse_completion, requested_model
from shared.serving.openai_response import DONE_EVENT, Reply, sse
from shared.serving.textmodel import Completion, Sampling, TextModel
from shared.serving.validation import Limits, json_object
from shared.serving.worker import Worker

_log = logging.getLogger(__name__)


class OpenAIRoutes:
    """Serves one TextModel under the name `name` through OpenAI's API, on the app's worker thread."""

    def __init__(self, model: TextModel, name: str, worker: Worker, limits: Limits, *,
                 max_batch_size: int, max_wait_ms: float) -> None:
        self.model, self.name, self.worker, self.limits = model, name, worker, limits
        self.batcher = Batcher(self._complete, max_batch_size, max_wait_ms, worker=worker)
        self.created = int(time.time())
        self.running = 0  # rows of seeded and streamed requests, which bypass the batcher

    @property
    def queue_depth(self) -> int:
        """Return the number of rows waiting for a batched call."""
        return self.batcher.queue_depth

    @property
    def in_flight(self) -> int:
        """Return the number of rows being generated or waiting for the worker outside the batcher's queue."""
        return self.batcher.in_flight + self.running

    async def close(self) -> None:
        """Cancel the queued rows and stop batching."""
        await self.batcher.close()

    def mount(self, app: FastAPI) -> None:
        """Add the /v1 routes to app."""

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            """Return OpenAI's model list: the one model this server serves."""
            return {"object": "list", "data": [self._model_card()]}

        @app.get("/v1/models/{model:path}")
        async def model(model: str) -> dict[str, Any]:
            """Return the served model's card, or 404 for another name."""
            self._check_model(model)
            return self._model_card()

        @app.post("/v1/chat/completions")
        async def chat_completions(request: Request) -> Response:
            """Return a chat.completion, or its chunks as Server-Sent Events when the request streams."""
            return await self._answer(request, parse_chat, chat=True)

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            """Return a text_completion, or its chunks as Server-Sent Events when the request streams."""
            return await self._answer(request, parse_completion, chat=False)

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "aligned-generators"}

    def _check_model(self, model: str | None) -> None:
        if model is not None and model != self.name:
            raise OpenAIError(404, f"The model `{model}` does not exist; this server serves `{self.name}`",
                              "model", "model_not_found")

    async def _answer(self, request: Request, parse: Callable[[dict, Limits], OpenAIRequest], *, chat: bool) -> Response:
        check_content_type(request)
        data = json_object(await read_body(request, self.limits.max_body_bytes), not_an_object=400)
        self._check_model(requested_model(data))
        req = parse(data, self.limits)
        self._check_prompts(req, "messages" if chat else "prompt")
        reply = Reply(self.name, chat=chat)
        if req.stream:
            return StreamingResponse(self._events(reply, req), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        try:
            completions = await self._run(req)
        except GeneratorError as exc:
            return openai_error_response(500, f"generator failed: {exc}")
        return JSONResponse(reply.full(completions, req.n))

    def _check_prompts(self, req: OpenAIRequest, param: str) -> None:
        # checked here, so a prompt the model cannot take fails its own request and not a whole batch
        for i, prompt in enumerate(req.prompts):
            try:
                tokens = self.model.count_tokens(prompt)
            except ValueError as exc:
                raise OpenAIError(400, str(exc), param) from None
            if tokens == 0:
                raise OpenAIError(400, f"prompt {i} encodes to no tokens; give it text", param)

    async def _run(self, req: OpenAIRequest) -> list[Completion]:
        if req.sampling.seed is None:
            return await self.batcher.submit(req.rows, dataclasses.asdict(req.sampling))
        # a seeded request gets one call of its own: its outputs do not depend on other traffic, and its
        # n choices are n different draws, not one draw repeated in several calls
        self.running += len(req.rows)
        try:
            return await self.worker.run(self.model.complete, req.rows, req.sampling)
        except Exception as exc:
            _log.error("text model call on %d rows failed", len(req.rows), exc_info=exc)
            raise GeneratorError(describe_error(exc)) from None
        finally:
            self.running -= len(req.rows)

    def _complete(self, rows: list[Any], params: dict[str, Any]) -> list[Completion]:
        return self.model.complete(rows, Sampling(**params))

    async def _events(self, reply: Reply, req: OpenAIRequest) -> AsyncIterator[str]:
        rows = req.rows
        finals: list[Completion] = [Completion("")] * len(rows)
        for chunk in reply.opening(len(rows), include_usage=req.include_usage):
            yield sse(chunk)

        def generate(emit: Callable[[Any], bool]) -> list[Completion]:
            return self.model.complete(rows, req.sampling, lambda row, piece: emit((row, piece)))

        self.running += len(rows)
        try:
            async with aclosing(self.worker.stream(generate)) as pieces:
                async for row, piece in pieces:
                    if piece.finish_reason is not None:
                        finals[row] = piece
                    for chunk in reply.pieces(row, piece, include_usage=req.include_usage):
                        yield sse(chunk)
        except Exception as exc:
            _log.error("streamed text model call on %d rows failed", len(rows), exc_info=exc)
            yield sse(openai_error(500, f"generator failed: {describe_error(exc)}"))
            return
        finally:
            self.running -= len(rows)
        if req.include_usage:
            yield sse(reply.usage_chunk(finals, req.n))
        yield DONE_EVENT
