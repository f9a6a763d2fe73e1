"""The sandbox's inputs and outputs: Limits for one run, the Verdict it ends with, and the status values."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any

OK, TIMEOUT, MEMORY, KILLED, SANDBOX_ERROR = "ok", "timeout", "memory", "killed", "sandbox_error"
# ok: the program ran to its own exit (any return code); timeout: wall clock or CPU time ran out;
# memory: it died of the memory limit (MemoryError was the last thing it printed); killed: a signal
# ended it for another reason; sandbox_error: the sandbox itself failed, the program's fate is unknown.
STATUSES = (OK, TIMEOUT, MEMORY, KILLED, SANDBOX_ERROR)
_VIEW_FOLDERS = ("/", "//", "/tmp", "/dev", "/dev/shm")  # made by the sandbox's view, not shown from the host


@dataclass(frozen=True)
class Limits:
    """What one program may use. cpu_s defaults to timeout_s; max_processes counts threads too.

    read_only_paths: host files or folders the program may read (as root they are the only host
    paths it sees besides the interpreter and its libraries); absolute, and neither a folder the
    view makes itself (/, /tmp, /dev, /dev/shm) nor under /proc.
    """

    timeout_s: float = 5.0
    cpu_s: float | None = None
    memory_mb: int = 512
    max_processes: int = 8
    max_output_bytes: int = 65536
    max_file_mb: int = 16
    max_open_files: int = 64
    read_only_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.read_only_paths, str) or not all(isinstance(p, str) for p in self.read_only_paths):
            raise ValueError(f"Limits.read_only_paths must be a sequence of paths, got {self.read_only_paths!r}")
        paths = tuple(dict.fromkeys(os.path.normpath(p) for p in self.read_only_paths))
        for path in paths:
            if not os.path.isabs(path) or path in _VIEW_FOLDERS or path == "/proc" or path.startswith("/proc/"):
                raise ValueError(f"Limits.read_only_paths: {path!r} must be absolute, not one of "
                                 f"{', '.join(_VIEW_FOLDERS)} and not under /proc")
        object.__setattr__(self, "read_only_paths", paths)
        for name in ("timeout_s", "memory_mb", "max_processes", "max_file_mb", "max_open_files"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")
        if self.cpu_s is not None and not self.cpu_s > 0:
            raise ValueError(f"Limits.cpu_s must be positive or None, got {self.cpu_s!r}")
        if not math.isfinite(self.timeout_s):
            raise ValueError(f"Limits.timeout_s must be finite, got {self.timeout_s!r}")
        if self.max_output_bytes < 0:
            raise ValueError(f"Limits.max_output_bytes must be >= 0, got {self.max_output_bytes!r}")

    @property
    def cpu_limit_s(self) -> int:
        """Return the CPU-time limit in whole seconds (RLIMIT_CPU's unit), rounded up."""
        return max(1, math.ceil(self.timeout_s if self.cpu_s is None else self.cpu_s))

    def to_dict(self) -> dict[str, Any]:
        """Return the limits as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """How one program ended: status (one of STATUSES), its exit code, its capped output and wall time.

    returncode is the exit code for "ok" (and for "memory" seen as a MemoryError), minus the signal
    number when a signal ended the program, and None for "sandbox_error". A truncated stream keeps
    its head and tail around a "...[N bytes truncated]..." line.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    duration_s: float

    @classmethod
    def sandbox_error(cls, message: str, duration_s: float = 0.0) -> Verdict:
        """Return the verdict for a run the sandbox could not carry out; message goes to stderr."""
        return cls(SANDBOX_ERROR, None, "", message, False, False, duration_s)

    def to_dict(self) -> dict[str, Any]:
        """Return the verdict as a JSON-ready dict."""
        return asdict(self)
