"""Capture a stream in bounded memory, keeping its head and its tail."""

from __future__ import annotations


class HeadTail:
    """Keeps the first cap // 2 and the last cap - cap // 2 bytes fed to it, and counts the rest.

    The tail matters as much as the head: a harness prints its success marker last.
    """

    def __init__(self, cap: int) -> None:
        self.head_cap, self.tail_cap = cap // 2, cap - cap // 2
        self.head, self.tail = bytearray(), bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Append data, dropping whatever falls between the head and the tail."""
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if len(data) >= self.tail_cap:
            self.tail = bytearray(data[len(data) - self.tail_cap :]) if self.tail_cap else bytearray()
        elif data:
            self.tail += data
            del self.tail[: max(0, len(self.tail) - self.tail_cap)]

    @property
    def truncated(self) -> bool:
        """True when bytes were dropped."""
        return self.total > len(self.head) + len(self.tail)

    def text(self) -> str:
        """Return the kept bytes as UTF-8 (errors replaced), with a marker line where bytes were dropped."""
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        dropped = self.total - len(self.head) - len(self.tail)
        newline = "" if not head or head.endswith("\n") else "\n"
        return f"{head}{newline}...[{dropped} bytes truncated]...\n{tail}"
