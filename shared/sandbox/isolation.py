"""The operating-system layers of the sandbox: namespaces, mounts, resource limits, privileges.

Everything here is Linux-only and talks to libc through ctypes (Python 3.11 has no os.unshare).
The zygote calls the namespace and mount functions once, as root; the forked child calls
apply_rlimits, drop_privileges and the prctl helpers before it runs any untrusted code.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import signal
from collections.abc import Iterable
from pathlib import Path

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 0x400, 0x800, 0x200000
MNT_DETACH = 0x2
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
# pivot_root(2) has no glibc wrapper; its syscall number by machine (the generic table: 41).
_SYS_PIVOT_ROOT = {"x86_64": 155, "i686": 217, "i386": 217, "ppc64le": 203, "ppc64": 203, "s390x": 217}

# statvfs flags of a mount that a read-only bind remount must keep (the kernel refuses to drop them).
_KEEP_FLAGS = {
    os.ST_NOSUID: MS_NOSUID, os.ST_NODEV: MS_NODEV, os.ST_NOEXEC: MS_NOEXEC,
    os.ST_NOATIME: MS_NOATIME, os.ST_NODIRATIME: MS_NODIRATIME, os.ST_RELATIME: MS_RELATIME,
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (CLONE_* flags)."""
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """Call mount(2); None arguments become NULL."""
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def pivot_into(new_root: str) -> None:
    """Make the mount at new_root this mount namespace's root and detach the old one; cwd becomes /.

    Falls back to chroot where pivot_root is refused (an initramfs root): the old root then stays
    mounted underneath, out of reach of processes without CAP_SYS_CHROOT.
    """
    os.chdir(new_root)
    number = _SYS_PIVOT_ROOT.get(os.uname().machine, 41)
    if _libc.syscall(number, b".", b".") == 0:  # the old root ends up stacked on the new one
        _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    elif ctypes.get_errno() == errno.EINVAL:
        os.chroot(".")
    else:
        _check(-1, "pivot_root")
    os.chdir("/")


def prctl(option: int, arg: int) -> None:
    """Call prctl(2) with one argument."""
    _check(_libc.prctl(option, arg, 0, 0, 0), f"prctl {option}")


def remount_readonly(path: str, extra_flags: int = 0) -> None:
    """Make the mount at path read-only in this mount namespace only, keeping its locked flags."""
    current = os.statvfs(path).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | extra_flags
    flags |= sum(ms for st, ms in _KEEP_FLAGS.items() if current & st)
    mount(None, path, None, flags)


def _blocked(path: str) -> tuple[str, str] | None:
    """Return (directory, next component) for the first directory on path others may not search."""
    current = "/"
    for part in Path(path).parts[1:]:
        if not os.stat(current).st_mode & 0o001:
            return current, part
        current = os.path.join(current, part)
    return None


def unreachable(paths: Iterable[str]) -> list[str]:
    """Return the paths an unprivileged uid cannot reach (some directory on the way lacks o+x)."""
    return [p for p in paths if os.path.exists(p) and _blocked(os.path.realpath(p)) is not None]


def mount_scratch(directory: str, size_mb: int) -> None:
    """Mount a private tmpfs of size_mb at directory, writable by everyone like /tmp."""
    mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size_mb}m")


def resize_scratch(directory: str, size_mb: int) -> None:
    """Change the size of the tmpfs mount_scratch put at directory."""
    mount(None, directory, None, MS_REMOUNT | MS_NOSUID | MS_NODEV, f"size={size_mb}m")


def apply_rlimits(*, memory_mb: int, cpu_s: int, max_processes: int, max_file_mb: int, max_open_files: int) -> None:
    """Set the calling process's resource limits; soft and hard are equal except for CPU time.

    The CPU hard limit is one second above the soft one: SIGXCPU comes first, SIGKILL if ignored.
    """
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mb, memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_mb * mb, max_file_mb * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max_open_files, max_open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def drop_privileges(uid: int) -> None:
    """Become uid (and gid uid) with no supplementary groups; irreversible when called as root."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def no_new_privileges() -> None:
    """Forbid gaining privileges through exec (setuid binaries, file capabilities)."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL the calling process when its parent dies (set after any setuid)."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def become_subreaper() -> None:
    """Make orphaned descendants of the calling process its children, so it can kill and reap them."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def count_tasks(uid: int) -> int:
    """Return how many tasks (threads included, as RLIMIT_NPROC counts them) run as real uid."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status", "rb") as f:
                fields = dict(line.split(b":", 1) for line in f.read().splitlines() if b":" in line)
        except OSError:
            continue
        if int(fields.get(b"Uid", b"-1 ").split()[0]) == uid:
            total += int(fields.get(b"Threads", b"1").strip())
    return total
