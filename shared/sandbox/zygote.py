"""The zygote: a small, pre-warmed interpreter that forks one locked-down child per program.

The host starts one zygote per worker (`python -S -s -c ...`, see host.py) and talks to it over a
socket (protocol.py): first the extra read-only paths of its view, then a hello carrying the
active isolation layers, then one reply per request. As root the zygote sets up once what every
child inherits: a new network namespace, a new mount namespace whose root is the minimal view of
view.py, and a new PID namespace whose PID 1 (reaper.py) reaps orphans. Per run it writes the
program into a fresh folder, forks, watches the wall clock and the output pipes, then kills and
reaps everything the program left behind before replying.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from shared.sandbox import isolation, protocol, reaper, view
from shared.sandbox.child import ChildSpec, run_child
from shared.sandbox.output import HeadTail
from shared.sandbox.status import classify
from shared.sandbox.types import SANDBOX_ERROR

# Imported once here so that programs start without paying for them (`typing` alone costs ~7 ms).
PRELOAD = (
    "typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
    "random", "hashlib", "json", "copy", "operator", "fractions", "decimal", "statistics", "datetime",
    "dataclasses", "enum", "abc", "traceback", "threading",
)
SCRATCH = ("/tmp", "/dev/shm")  # private tmpfs mounts in the zygote's mount namespace
WIPED = (*SCRATCH, "/var/tmp")  # world-writable folders cleaned after each run
SCRATCH_FACTOR = 4  # each scratch tmpfs holds SCRATCH_FACTOR * max_file_mb
_DRAIN_S = 1.0  # how long to wait for output pipes once every process of the run is dead
_EMPTY_NAMESPACE_S = 5.0  # how long PID 1 may take to reap a run's killed processes
_READ = 1 << 16


class HostGone(Exception):
    """The host closed the control socket while a program was running."""


class Zygote:
    """Serves run requests on ctrl; as root, runs programs as uid (which it owns through a lock)."""

    def __init__(self, ctrl: socket.socket, uid: int | None, read_only_paths: Sequence[str] = ()) -> None:
        self.ctrl, self.uid, self.read_only_paths = ctrl, uid, tuple(read_only_paths)
        self.layers: dict[str, Any] = {"uid": uid, "rlimits": True, "audit_hook": True}
        self.error: str | None = None
        self.scratch_mb: int | None = None
        self.scratch_devices: dict[str, int] = {}  # our private tmpfs mounts, by st_dev
        self.keep: dict[str, set[str]] = {}  # entries of those mounts that belong to the view, not to a run
        self.wiped = WIPED
        # The host's /proc, for our own children: once our PID namespace's /proc is mounted, /proc
        # lists only that namespace, in which the zygote itself has no pid.
        self.host_proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.init_pid: int | None = None  # PID 1 of our PID namespace: a child of ours that lives as long as we do

    def setup(self) -> None:
        """Enter namespaces, build the view and the PID namespace; record what worked in self.layers."""
        isolation.become_subreaper()
        self.layers.update(subreaper=True, no_new_privs=True)
        for layer in ("net_namespace", "mount_namespace", "minimal_root", "readonly_root", "private_tmp",
                      "pid_namespace"):
            self.layers[layer] = False
        if self.uid is None:
            return
        self._kill_uid()  # leftovers of an earlier holder of this uid, before a PID namespace hides them
        try:
            isolation.unshare(isolation.CLONE_NEWNET)
            self.layers["net_namespace"] = True
        except OSError:
            pass
        try:
            isolation.unshare(isolation.CLONE_NEWNS)
            isolation.mount(None, "/", None, isolation.MS_REC | isolation.MS_PRIVATE)
            self.layers["mount_namespace"] = True
        except OSError as exc:
            self.layers["mount_error"] = str(exc)
            missing = isolation.unreachable([sys.executable, *(p for p in sys.path[1:] if p)])
            if missing:
                self.error = (f"the sandbox uid cannot read the interpreter ({missing[0]}) "
                              "and no mount namespace fixes it")
            return
        executable = os.path.realpath(sys.executable)  # a venv's bin/python is a link into the base install
        try:
            paths, covered = view.interpreter_paths()
            self.layers["visible"] = view.build_root([*paths, *self.read_only_paths], covered, SCRATCH, 64)
        except (OSError, ValueError) as exc:
            self.error = f"cannot build the sandbox's file system view: {exc}"
            return
        sys.executable = sys._base_executable = executable  # the venv is not in the view
        self.wiped = SCRATCH
        for directory in SCRATCH:
            self.scratch_devices[directory] = os.stat(directory).st_dev
            self.keep[directory] = set(os.listdir(directory))  # read-only paths shown under /tmp
        self.scratch_mb = 64
        self.layers.update(minimal_root=True, readonly_root=True, private_tmp=True)
        try:
            self.init_pid = reaper.start()
            self.layers["pid_namespace"] = True
        except OSError as exc:
            self.layers["pid_error"] = str(exc)

    def serve(self) -> None:
        """Answer requests until the host closes the socket."""
        protocol.send(self.ctrl, {"pid": os.getpid(), "layers": self.layers, "error": self.error})
        while (request := protocol.recv(self.ctrl)) is not None:
            try:
                reply = self.run(request)
            except HostGone:
                return
            except Exception as exc:  # a zygote bug must not take the worker down with it
                reply = {"status": SANDBOX_ERROR, "returncode": None, "stdout": "", "stderr": f"zygote: {exc!r}",
                         "stdout_truncated": False, "stderr_truncated": False, "duration_s": 0.0}
            protocol.send(self.ctrl, reply)

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one program and return its verdict as a dict."""
        limits = request["limits"]
        if self.layers["private_tmp"] and self.scratch_mb != SCRATCH_FACTOR * limits["max_file_mb"]:
            self.scratch_mb = SCRATCH_FACTOR * limits["max_file_mb"]
            for directory in SCRATCH:
                isolation.resize_scratch(directory, self.scratch_mb)
        workdir = tempfile.mkdtemp(prefix="sandbox-", dir="/tmp")
        try:
            path = os.path.join(workdir, "main.py")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(request["source"])
            if self.uid is not None:
                os.chown(workdir, self.uid, self.uid)
                os.chown(path, self.uid, self.uid)
            return self._supervise(request, workdir, path)
        finally:
            self._wipe(workdir)

    def _supervise(self, request: dict[str, Any], workdir: str, path: str) -> dict[str, Any]:
        limits = request["limits"]
        nproc = limits["max_processes"]
        if self.uid is None:  # RLIMIT_NPROC counts every task of the user, not just this run's
            nproc += isolation.count_tasks(os.getuid())
        spec_fds = {}
        out_r, spec_fds["stdout_fd"] = os.pipe()
        err_r, spec_fds["stderr_fd"] = os.pipe()
        ready_r, spec_fds["ready_fd"] = os.pipe()
        spec_fds["stdin_fd"] = _stdin_fd(request["stdin"])
        spec = ChildSpec(
            source=request["source"], path=path, workdir=workdir, uid=self.uid, env=_program_env(workdir),
            rlimits=dict(memory_mb=limits["memory_mb"], cpu_s=request["cpu_limit_s"], max_processes=nproc,
                         max_file_mb=limits["max_file_mb"], max_open_files=limits["max_open_files"]),
            **spec_fds,
        )
        start = time.monotonic()
        pid = os.fork()
        if pid == 0:
            run_child(spec)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass  # the child got there first, or is already gone
        for fd in spec_fds.values():
            os.close(fd)
        cap = limits["max_output_bytes"]
        pipes = _Pipes({out_r: HeadTail(cap), err_r: HeadTail(cap), ready_r: HeadTail(4096)})
        try:
            try:
                status, rusage, wall_timeout = self._watch(pid, pipes, start + limits["timeout_s"])
                duration = time.monotonic() - start
            finally:
                self._kill_all(pid)  # also when the program exited by itself: its children may live on
            pipes.drain(time.monotonic() + _DRAIN_S)
        finally:
            pipes.close()
        setup = pipes.streams[ready_r].text()
        stdout, stderr = pipes.streams[out_r], pipes.streams[err_r]
        if setup:
            return {"status": SANDBOX_ERROR, "returncode": None, "stdout": "", "stderr": setup,
                    "stdout_truncated": False, "stderr_truncated": False, "duration_s": duration}
        err_text = stderr.text()
        verdict, returncode = classify(
            status, wall_timeout=wall_timeout, cpu_used_s=rusage.ru_utime + rusage.ru_stime,
            cpu_limit_s=request["cpu_limit_s"], stderr=err_text,
        )
        return {"status": verdict, "returncode": returncode, "stdout": stdout.text(), "stderr": err_text,
                "stdout_truncated": stdout.truncated, "stderr_truncated": stderr.truncated, "duration_s": duration}

    def _watch(self, pid: int, pipes: _Pipes, deadline: float) -> tuple[int, Any, bool]:
        """Read output until the child exits or the deadline passes; return (wait status, rusage, timed out)."""
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None  # no pidfd (Linux < 5.3): poll instead
        watch_ctrl = True
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    _killpg(pid)
                    _, status, rusage = os.wait4(pid, 0)
                    return status, rusage, True
                fds = [*pipes.open, *[pidfd] * (pidfd is not None)]
                fds += [self.ctrl.fileno()] * watch_ctrl
                ready, _, _ = select.select(fds, [], [], remaining if pidfd is not None else min(remaining, 0.01))
                for fd in ready:
                    if fd == self.ctrl.fileno():
                        if not self.ctrl.recv(1, socket.MSG_PEEK):
                            _killpg(pid)
                            raise HostGone
                        watch_ctrl = False  # the host broke protocol; ignore it until the run ends
                    elif fd != pidfd:
                        pipes.read(fd)
                if pidfd is None or pidfd in ready:
                    waited, status, rusage = os.wait4(pid, os.WNOHANG)
                    if waited:
                        return status, rusage, False
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def _kill_all(self, pid: int) -> None:
        """Kill the run's process group, every process of the sandbox uid, and reap all descendants.

        Without a PID namespace the run's orphans are our children (we are a subreaper); within one
        they are PID 1's, which reaps them, so we wait until the namespace holds PID 1 alone.
        """
        _killpg(pid)
        if self.uid is not None and (self._children() or self._namespace_busy()):
            self._kill_uid()
        while kids := self._children():  # grandchildren become children as their parents die
            _kill_and_reap(kids)
        start = time.monotonic()
        while self._namespace_busy():  # killed, not yet reaped, or forked between our kill(-1) calls
            waited = time.monotonic() - start
            if waited > _EMPTY_NAMESPACE_S:
                raise RuntimeError("processes of the run outlived SIGKILL")
            if waited > 0.05:
                self._kill_uid()
            time.sleep(0.001)

    def _children(self) -> list[int]:
        """Return our children but PID 1 of our namespace."""
        return [kid for kid in _children(self.host_proc) if kid != self.init_pid]

    def _namespace_busy(self) -> bool:
        """True when our PID namespace holds a process besides its PID 1 (always False without one)."""
        return self.layers.get("pid_namespace", False) and any(
            name.isdigit() and name != "1" for name in os.listdir("/proc"))

    def _kill_uid(self) -> None:
        """SIGKILL every process running as the sandbox uid, from a helper that becomes that uid."""
        if self.uid is None:
            return
        helper = os.fork()
        if helper == 0:
            try:
                isolation.drop_privileges(self.uid)
                for _ in range(3):  # kill(-1) reaches all of the uid's processes but the caller
                    try:
                        os.kill(-1, signal.SIGKILL)
                    except ProcessLookupError:
                        break
            finally:
                os._exit(0)
        os.waitpid(helper, 0)

    def _wipe(self, workdir: str) -> None:
        """Remove the run's folder and what it left in the scratch directories."""
        _rmtree(workdir)
        for directory in self.wiped:
            try:
                ours = os.stat(directory).st_dev == self.scratch_devices.get(directory)
                entries = list(os.scandir(directory))
            except OSError:
                continue
            if ours:
                owner = None  # our own tmpfs: everything in it is the run's
            elif self.uid is not None:
                owner = self.uid  # the host's directory: only what the sandbox uid made
            else:
                continue  # same uid as the host: the program's files look like anyone else's
            keep = self.keep.get(directory, ())
            for entry in entries:
                try:
                    if entry.name in keep:
                        continue
                    if owner is None or entry.stat(follow_symlinks=False).st_uid == owner:
                        _rmtree(entry.path)
                except OSError:
                    pass


def _program_env(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}


def _stdin_fd(data: str) -> int:
    if not data:
        return os.open(os.devnull, os.O_RDONLY)
    fd = os.memfd_create("stdin", 0)
    os.write(fd, data.encode("utf-8", errors="surrogateescape"))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class _Pipes:
    """The read ends of a run's pipes, each feeding its capped buffer until EOF."""

    def __init__(self, streams: dict[int, HeadTail]) -> None:
        self.streams, self.open = streams, set(streams)

    def read(self, fd: int) -> None:
        """Read one chunk from fd; close it at EOF."""
        data = os.read(fd, _READ)
        if data:
            self.streams[fd].feed(data)
        else:
            self.open.discard(fd)
            os.close(fd)

    def drain(self, deadline: float) -> None:
        """Read what is left (the writers are dead) until every pipe is at EOF or the deadline passes."""
        while self.open and (remaining := deadline - time.monotonic()) > 0:
            for fd in select.select(list(self.open), [], [], remaining)[0]:
                self.read(fd)

    def close(self) -> None:
        """Close the pipes still open."""
        for fd in self.open:
            os.close(fd)
        self.open.clear()


def _killpg(pid: int) -> None:
    """SIGKILL the run's main process and its process group (pgid == pid)."""
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _read_at(folder: int, path: str) -> str:
    """Return the text of path, relative to the open folder."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder)
    try:
        return os.read(fd, 1 << 16).decode()
    finally:
        os.close(fd)


def _children(proc: int) -> list[int]:
    """Return this process's children (orphans of a run land here: the zygote is a subreaper), from proc (an fd)."""
    pid = os.getpid()
    try:
        return [int(c) for c in _read_at(proc, f"{pid}/task/{pid}/children").split()]
    except OSError:  # kernel without CONFIG_PROC_CHILDREN: scan /proc
        kids = []
        for entry in os.listdir(proc):
            try:
                if int(_read_at(proc, f"{entry}/stat").rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
        return kids


def _kill_and_reap(kids: list[int]) -> None:
    """SIGKILL and reap these children."""
    for kid in kids:
        try:
            os.kill(kid, signal.SIGKILL)
        except OSError:
            pass
    for kid in kids:
        try:
            os.waitpid(kid, 0)
        except ChildProcessError:
            pass


def _rmtree(path: str) -> None:
    def retry(func, failed, _exc) -> None:  # a folder the program made unreadable: open it up
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except OSError:
            pass

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, onerror=retry)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def main(ctrl_fd: int, uid: int) -> None:
    """Entry point of the zygote process (argv from host.py): read the view's extra paths, set up, preload, serve."""
    ctrl = socket.socket(fileno=ctrl_fd)
    config = protocol.recv(ctrl)
    if config is None:
        return
    zygote = Zygote(ctrl, uid if uid >= 0 else None, config["read_only_paths"])
    zygote.setup()
    for name in PRELOAD:
        importlib.import_module(name)
    gc.freeze()  # keep the collector from touching (and so copying) the zygote's objects in every child
    zygote.serve()
