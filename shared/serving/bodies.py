"""Read a request's JSON body: its declared content type, and its size against a limit."""

from __future__ import annotations

from fastapi import Request

from shared.serving.validation import RequestError


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
