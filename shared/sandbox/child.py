"""Runs in the process the zygote forks for one program: lock it down, then run the program in it.

The child never returns into the zygote's code: every path ends in os._exit. Until it closes the
`ready` pipe it reports setup failures on that pipe, so the zygote can tell a broken sandbox from
a program that failed.
"""

from __future__ import annotations

import atexit
import builtins
import os
import socket
import sys
import types
from dataclasses import dataclass
from typing import NoReturn

from shared.sandbox import isolation

SETUP_FAILED = 125  # exit code of a child whose lock-down failed; the message is on the ready pipe


@dataclass(frozen=True)
class ChildSpec:
    """What a forked child needs: the program, its folder, its descriptors and the limits to apply."""

    source: str
    path: str
    workdir: str
    uid: int | None
    env: dict[str, str]
    rlimits: dict[str, int]
    stdin_fd: int
    stdout_fd: int
    stderr_fd: int
    ready_fd: int


def run_child(spec: ChildSpec) -> NoReturn:
    """Apply every limit, drop privileges and run the program; exit with the program's exit code."""
    code = SETUP_FAILED
    try:
        try:
            _lock_down(spec)
        except BaseException as exc:  # the message is all the zygote gets
            os.write(spec.ready_fd, f"sandbox setup failed: {exc!r}".encode())
            os._exit(SETUP_FAILED)
        os.close(spec.ready_fd)
        code = _run_program(spec)
    finally:
        os._exit(code)


def _lock_down(spec: ChildSpec) -> None:
    os.setpgid(0, 0)  # the zygote does the same from its side; whichever runs first wins the race
    os.dup2(spec.stdin_fd, 0)
    os.dup2(spec.stdout_fd, 1)
    os.dup2(spec.stderr_fd, 2)
    os.closerange(3, spec.ready_fd)
    os.closerange(spec.ready_fd + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir(spec.workdir)
    isolation.apply_rlimits(**spec.rlimits)
    if spec.uid is not None:
        isolation.drop_privileges(spec.uid)
    isolation.no_new_privileges()
    isolation.die_with_parent()  # after setuid, which clears it
    for name in set(os.environ) - set(spec.env):
        del os.environ[name]
    for name, value in spec.env.items():  # only what differs: each change is a putenv call
        if os.environ.get(name) != value:
            os.environ[name] = value


def _deny_network(event: str, args: tuple) -> None:
    """Audit hook: refuse non-Unix sockets and network addresses (bypassable through ctypes)."""
    if not event.startswith("socket."):
        return
    if event == "socket.__new__" and args[1] != socket.AF_UNIX:
        raise PermissionError("network access is disabled in the sandbox")
    if event in ("socket.connect", "socket.bind", "socket.sendto") and isinstance(args[1], tuple):
        raise PermissionError("network access is disabled in the sandbox")


def _run_program(spec: ChildSpec) -> int:
    """Run the program as `python main.py` would and return its exit code."""
    sys.argv = [spec.path]
    sys.path[0] = spec.workdir  # the zygote had the project root here
    for name in [n for n in sys.modules if n == "shared" or n.startswith("shared.")]:
        del sys.modules[name]
    atexit._clear()
    sys.addaudithook(_deny_network)
    main = types.ModuleType("__main__")
    main.__file__, main.__builtins__ = spec.path, builtins
    sys.modules["__main__"] = main
    try:
        exec(compile(spec.source, spec.path, "exec"), main.__dict__)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException as exc:
        exc.__traceback__ = exc.__traceback__.tb_next if exc.__traceback__ else None  # hide this frame
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code = 1
    return _finalize(code)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    print(exc.code, file=sys.stderr)
    return 1


def _finalize(code: int) -> int:
    """Do what the interpreter does at exit: join threads, run atexit, flush (120 if stdout fails)."""
    try:
        if "threading" in sys.modules:
            sys.modules["threading"]._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = _exit_code(exc)
    except BaseException:
        pass
    try:
        sys.stdout.flush()
    except BaseException:
        code = 120
    try:
        sys.stderr.flush()
    except BaseException:
        pass
    return code
