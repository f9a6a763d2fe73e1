"""Length-prefixed JSON messages between the host and a zygote over a stream socket."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

_HEADER = struct.Struct(">I")


class ProtocolError(RuntimeError):
    """The other side sent something that is not a message, or went away mid-message."""


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one JSON message."""
    data = json.dumps(message).encode("utf-8")
    sock.sendall(_HEADER.pack(len(data)) + data)


def recv(sock: socket.socket) -> dict[str, Any] | None:
    """Return the next message, or None when the other side closed the connection between messages."""
    header = _read(sock, _HEADER.size, allow_eof=True)
    if header is None:
        return None
    try:
        message = json.loads(_read(sock, _HEADER.unpack(header)[0]).decode("utf-8"))
    except ValueError as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"message is not an object: {type(message).__name__}")
    return message


def _read(sock: socket.socket, n: int, allow_eof: bool = False) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            if allow_eof and got == 0:
                return None
            raise ProtocolError("connection closed mid-message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
