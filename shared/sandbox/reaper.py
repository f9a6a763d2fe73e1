"""PID 1 of a zygote's PID namespace: mounts the namespace's /proc, then reaps orphans until the zygote dies.

The zygote calls start() once, as root, after it has pivoted into its view. From then on every
process it forks (each program, and whatever a program starts) lives in the new namespace: it sees
only that namespace's processes in /proc and cannot name, let alone signal, anything outside it.
Orphans of a run are re-parented to this PID 1, which stays root, so programs cannot signal it.
When the zygote dies, the parent-death signal kills PID 1, and the kernel then kills every
process left in the namespace.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

from shared.sandbox import isolation

_PROC_FLAGS = isolation.MS_NOSUID | isolation.MS_NODEV | isolation.MS_NOEXEC


def start() -> int:
    """Move this process's future children into a new PID namespace; return its PID 1's pid (ours)."""
    isolation.unshare(isolation.CLONE_NEWPID)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        _init(ready_w)
    os.close(ready_w)
    try:
        answer = os.read(ready_r, 4096)
    finally:
        os.close(ready_r)
    if answer != b"ok":
        os.waitpid(pid, 0)
        raise OSError(f"PID 1 of the sandbox's PID namespace failed: {answer.decode(errors='replace') or 'it died'}")
    return pid


def _init(ready: int) -> NoReturn:
    try:
        isolation.die_with_parent()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, ready)
        os.closerange(ready + 1, os.sysconf("SC_OPEN_MAX"))
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        isolation.mount("proc", "/proc", "proc", _PROC_FLAGS)
        os.write(ready, b"ok")
        os.close(ready)
    except BaseException as exc:
        os.write(ready, repr(exc).encode())
        os._exit(1)
    try:
        while True:
            signal.sigwait({signal.SIGCHLD})
            _reap()
    finally:
        os._exit(1)


def _reap() -> None:
    """Reap every child that has exited."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
