"""The host side: start zygotes, hand each run to an idle one, and run many programs in parallel.

A zygote serves one run at a time, so the pool grows to as many zygotes as runs in flight and keeps
them for later calls. As root each zygote owns one uid from FIRST_UID on, claimed with a lock file
so that two host processes never share one (the zygote kills every process of its uid after each
run, and RLIMIT_NPROC counts per uid).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.sandbox import protocol
from shared.sandbox.types import Limits, Verdict

FIRST_UID, UID_SLOTS = 61000, 256
_START_TIMEOUT_S = 30.0
_GRACE_S = 15.0  # beyond the program's timeout: cleanup, draining pipes, a loaded machine
_ROOT = str(Path(__file__).resolve().parents[2])
# The project root travels in the environment, which programs cannot read, rather than in argv,
# which they can (/proc/1/cmdline of their PID namespace is the zygote's).
_BOOT = ("import os, sys; sys.path[0] = os.environ.pop('SANDBOX_ROOT'); from shared.sandbox.zygote import main; "
         "main(int(sys.argv[1]), int(sys.argv[2]))")
# The zygote's whole environment (-S -s skip site-packages; nothing else reaches it from the host).
_ZYGOTE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "SANDBOX_ROOT": _ROOT}


class SandboxError(RuntimeError):
    """The sandbox itself failed (a zygote would not start, died, or stopped answering)."""


def _claim_uid() -> tuple[int, int]:
    """Return (uid, fd of its lock file) for the first sandbox uid no other zygote holds."""
    folder = os.path.join(tempfile.gettempdir(), f"shared-sandbox-uids-{os.geteuid()}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SandboxError(f"{folder} must be a folder only this user can write")
    for uid in range(FIRST_UID, FIRST_UID + UID_SLOTS):
        fd = os.open(os.path.join(folder, str(uid)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return uid, fd
        except BlockingIOError:
            os.close(fd)
    raise SandboxError(f"all {UID_SLOTS} sandbox uids from {FIRST_UID} are in use")


class Zygote:
    """One zygote process and the socket to it; use from one thread at a time.

    read_only_paths are the host paths its programs see besides the interpreter (fixed for its life).
    """

    def __init__(self, read_only_paths: tuple[str, ...] = ()) -> None:
        uid, lock_fd = _claim_uid() if os.geteuid() == 0 else (-1, -1)
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-S", "-s", "-c", _BOOT, str(theirs.fileno()), str(uid)],
                pass_fds=[theirs.fileno()] + [lock_fd] * (lock_fd >= 0),  # the zygote holds the uid's lock
                env=_ZYGOTE_ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, cwd="/",
                start_new_session=True,
            )
        finally:
            theirs.close()
            if lock_fd >= 0:
                os.close(lock_fd)
        self.sock = ours
        self.sock.settimeout(_START_TIMEOUT_S)
        try:
            protocol.send(self.sock, {"read_only_paths": list(read_only_paths)})
        except OSError as exc:
            self.close()
            raise SandboxError(f"zygote is gone: {exc}") from None
        hello = self._recv()
        self.layers: dict[str, Any] = hello["layers"]
        if hello.get("error"):
            self.close()
            raise SandboxError(hello["error"])

    def run(self, source: str, stdin: str, limits: Limits) -> Verdict:
        """Run one program; raise SandboxError (and close this zygote) when the zygote fails."""
        request = {"source": source, "stdin": stdin, "limits": limits.to_dict(), "cpu_limit_s": limits.cpu_limit_s}
        try:
            protocol.send(self.sock, request)
        except OSError as exc:
            self.close()
            raise SandboxError(f"zygote is gone: {exc}") from None
        self.sock.settimeout(limits.timeout_s + _GRACE_S)
        return Verdict(**self._recv())

    def _recv(self) -> dict[str, Any]:
        try:
            message = protocol.recv(self.sock)
        except (OSError, protocol.ProtocolError) as exc:  # socket.timeout is an OSError
            self.close()
            raise SandboxError(f"zygote did not answer: {exc!r}") from None
        if message is None:
            self.close()
            raise SandboxError(f"zygote exited (code {self.proc.poll()})")
        return message

    @property
    def alive(self) -> bool:
        """True while the zygote can take another run."""
        return self.sock.fileno() >= 0 and self.proc.poll() is None

    def close(self) -> None:
        """Stop the zygote: closing the socket ends it; kill it if it does not go."""
        self.sock.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class _Pool:
    """Idle zygotes shared by all threads of this process, by the read-only paths of their view."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, ...], list[Zygote]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def zygote(self, read_only_paths: tuple[str, ...] = ()) -> Iterator[Zygote]:
        """Lend an idle zygote with that view, starting one if none is idle; take it back unless it broke."""
        with self._lock:
            idle = self._idle.get(read_only_paths)
            zygote = idle.pop() if idle else None
        if zygote is None:
            zygote = Zygote(read_only_paths)
        try:
            yield zygote
        finally:
            if zygote.alive:
                with self._lock:
                    self._idle.setdefault(read_only_paths, []).append(zygote)

    def close(self) -> None:
        """Stop every idle zygote."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for zygotes in idle.values():
            for zygote in zygotes:
                zygote.close()

    def forget(self) -> None:
        """In a forked child: drop the parent's zygotes without talking to them."""
        self._idle, self._lock = {}, threading.Lock()


_POOL = _Pool()
atexit.register(_POOL.close)
os.register_at_fork(after_in_child=_POOL.forget)


def run_program(source: str, limits: Limits = Limits(), stdin: str = "") -> Verdict:
    """Run untrusted Python source in the sandbox and return its Verdict; never raises for what it does."""
    try:
        with _POOL.zygote(limits.read_only_paths) as zygote:
            return zygote.run(source, stdin, limits)
    except (SandboxError, OSError) as exc:
        return Verdict.sandbox_error(f"sandbox: {exc}")


def run_programs(sources: Sequence[str], limits: Limits = Limits(), workers: int | None = None) -> list[Verdict]:
    """Run every source in the sandbox, `workers` at a time (default: CPU count); verdicts in input order."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(sources) or 1))
    if workers == 1:
        return [run_program(source, limits) for source in sources]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda source: run_program(source, limits), sources))


def active_layers(limits: Limits = Limits()) -> dict[str, Any]:
    """Return which isolation layers a zygote of this process got (uid, namespaces, the view's paths, ...)."""
    with _POOL.zygote(limits.read_only_paths) as zygote:
        return dict(zygote.layers)
