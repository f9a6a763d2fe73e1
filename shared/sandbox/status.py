"""Turn how a sandboxed process ended into a (status, returncode) pair."""

from __future__ import annotations

import os
import signal

from shared.sandbox.types import KILLED, MEMORY, OK, TIMEOUT


def ended_by_memory_error(stderr: str) -> bool:
    """True when the last non-empty line of stderr is an uncaught MemoryError."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return bool(lines) and lines[-1].startswith("MemoryError")


def classify(
    wait_status: int, *, wall_timeout: bool, cpu_used_s: float, cpu_limit_s: int, stderr: str
) -> tuple[str, int]:
    """Return (status, returncode) from a waitpid status; returncode is -signal when a signal ended it.

    A program killed at the wall-clock deadline, by SIGXCPU, or by SIGKILL after using up its CPU
    time (RLIMIT_CPU's hard limit) timed out. A program that exited 1 with MemoryError as the last
    line of stderr hit the memory limit. Any other exit is "ok"; any other signal is "killed".
    """
    if os.WIFSIGNALED(wait_status):
        returncode = -os.WTERMSIG(wait_status)
    else:
        returncode = os.waitstatus_to_exitcode(wait_status)
    if wall_timeout:
        return TIMEOUT, returncode
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu_used_s >= cpu_limit_s):
        return TIMEOUT, returncode
    if returncode < 0:
        return KILLED, returncode
    if returncode == 1 and ended_by_memory_error(stderr):
        return MEMORY, returncode
    return OK, returncode
