"""Sandbox: hostile programs (loops, bombs, signals, files, sockets, floods) against a host that must survive.

Tests that need a layer this machine lacks (a dedicated uid needs root; a network namespace needs
CAP_SYS_ADMIN) skip or leave out the part that layer guards, as noted in each test.
"""

import json
import os
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
    assert not any(alive(pid) for pid in pids)
    if layers["uid"] is not None:
        assert processes_of(layers["uid"]) == []


def test_signals_to_the_host_and_the_zygote_fail(layers):
    needs_uid(layers)  # a sandbox with the host's uid could signal the host: that is documented
    host = os.getpid()
    source = (
        "import os, signal\n"
        f"targets = [('host', lambda: os.kill({host}, signal.SIGKILL)),\n"
        f"           ('host group', lambda: os.killpg(os.getpgid({host}), signal.SIGKILL)),\n"
        "           ('parent', lambda: os.kill(os.getppid(), signal.SIGKILL)),\n"
        "           ('parent group', lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)),\n"
        "           ('init', lambda: os.kill(1, signal.SIGTERM))]\n"
        "for name, attempt in targets:\n"
        "    try:\n"
        "        attempt()\n"
        "        print(name, 'SENT')\n"
        "    except OSError as exc:\n"
        "        print(name, type(exc).__name__)\n"
        "os.kill(-1, signal.SIGKILL)  # every process it may signal but itself: none here\n"
        "print('after kill -1')\n"
    )
    v = run_program(source, FAST)
    assert "SENT" not in v.stdout and v.stdout.count("PermissionError") == 5, v.stdout
    assert (v.status, v.returncode) == ("ok", 0) and v.stdout.endswith("after kill -1\n")
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
            f"print(open({str(target)!r}).read())\n"
            f"attempts = [lambda: open({str(target)!r}, 'w').write('changed'),\n"
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
        assert v.stdout.startswith("original\n") and "DONE" not in v.stdout, v.stdout + v.stderr
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
    assert probe.stdout == "False []\n"


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
    if layers["uid"] is not None:
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
