"""The file-system view of a sandboxed program: the host paths it needs, and a root holding only those.

As root, each zygote builds the root its programs see on a tmpfs of its own and pivots into it:

- read-only bind mounts of the interpreter's executable, the standard library (its own
  site-packages covered by an empty tmpfs), the shared libraries those link against (followed
  through the ELF files' DT_NEEDED entries and resolved as the dynamic loader does: RUNPATH,
  /etc/ld.so.cache, the default directories), /etc/ld.so.cache, /etc/localtime and the C.UTF-8
  locale, and any extra paths the caller lists;
- /dev with null, zero, full, random and urandom (binds of the host's nodes) and the usual
  /dev/fd, /dev/stdin, /dev/stdout and /dev/stderr links;
- private tmpfs mounts at /tmp and /dev/shm (the working folders live in /tmp) and an empty /proc
  for the PID namespace's own proc.

Symbolic links on the way to a path are recreated as links, so a path resolves inside the view as
it does on the host (`/lib64/ld-linux-x86-64.so.2`, a venv's `bin/python`). Everything else of the
host (the project checkout, run folders, datasets, home folders, package caches, other zygotes'
folders) does not exist in the view. The root tmpfs itself is read-only once built.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from shared.sandbox import isolation

DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEV_LINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0", "/dev/stdout": "/proc/self/fd/1",
             "/dev/stderr": "/proc/self/fd/2"}
ETC = ("/etc/ld.so.cache", "/etc/localtime", "/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8")
LD_CACHE = "/etc/ld.so.cache"
# Where the dynamic loader looks when neither RUNPATH nor the cache knows a library.
_DEFAULT_LIB_DIRS = ("/lib64", "/usr/lib64", "/lib", "/usr/lib")
_MAX_LINKS = 40  # symbolic links followed while resolving one path, as the kernel allows
_ROOT_TMPFS = "mode=0755,size=1m"

# ELF: program header types and dynamic tags read here.
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NEEDED, _DT_STRTAB, _DT_STRSZ, _DT_RPATH, _DT_RUNPATH = 1, 5, 10, 15, 29


@dataclass
class ElfInfo:
    """What the loader reads from one ELF file: its kind, its loader, the libraries it needs and where to look."""

    kind: tuple[int, int]  # (EI_CLASS, e_machine): a library must match its user's
    interpreter: str | None
    needed: list[str]
    search: list[str]  # RUNPATH (or RPATH) directories, $ORIGIN expanded


def read_elf(path: str) -> ElfInfo | None:
    """Return the ElfInfo of path, or None when it is not a readable ELF file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _parse_elf(fd, path)
    except (OSError, struct.error, ValueError, IndexError):
        return None
    finally:
        os.close(fd)


def _parse_elf(fd: int, path: str) -> ElfInfo | None:
    ident = os.pread(fd, 64, 0)
    if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    machine = struct.unpack_from(order + "H", ident, 18)[0]
    if wide:
        phoff, = struct.unpack_from(order + "Q", ident, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", ident, 54)
        phdr, dyn = struct.Struct(order + "IIQQQQQQ"), struct.Struct(order + "qQ")
    else:
        phoff, = struct.unpack_from(order + "I", ident, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", ident, 42)
        phdr, dyn = struct.Struct(order + "IIIIIIII"), struct.Struct(order + "iI")
    table = os.pread(fd, phentsize * phnum, phoff)
    loads, dynamic, interpreter = [], None, None
    for i in range(phnum):
        fields = phdr.unpack_from(table, i * phentsize)
        if wide:
            kind, _, offset, vaddr, _, filesz, _, _ = fields
        else:
            kind, offset, vaddr, _, filesz, _, _, _ = fields
        if kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif kind == _PT_INTERP:
            interpreter = os.pread(fd, filesz, offset).split(b"\0", 1)[0].decode()
    info = ElfInfo((ident[4], machine), interpreter, [], [])
    if dynamic is None:
        return info
    raw = os.pread(fd, dynamic[1], dynamic[0])
    entries = [dyn.unpack_from(raw, i) for i in range(0, len(raw) - dyn.size + 1, dyn.size)]
    tags: dict[int, list[int]] = {}
    for tag, value in entries:
        if tag == 0:
            break
        tags.setdefault(tag, []).append(value)
    if _DT_STRTAB not in tags:
        return info
    address, size = tags[_DT_STRTAB][0], tags.get(_DT_STRSZ, [1 << 16])[0]
    strtab = next((address - vaddr + offset for vaddr, offset, filesz in loads
                   if vaddr <= address < vaddr + filesz), None)
    if strtab is None:
        return info
    strings = os.pread(fd, size, strtab)
    text = lambda at: strings[at:strings.index(b"\0", at)].decode()  # noqa: E731
    info.needed = [text(at) for at in tags.get(_DT_NEEDED, [])]
    for at in tags.get(_DT_RUNPATH, tags.get(_DT_RPATH, [])):
        for entry in text(at).split(":"):
            if "ORIGIN" in entry:
                origin = os.path.dirname(os.path.realpath(path))
                entry = entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)
            if entry:
                info.search.append(entry)
    return info


def read_ld_cache(path: str = LD_CACHE) -> dict[str, list[str]]:
    """Return library name -> paths, in the order the loader tries them, from glibc's ld.so.cache (new format)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    base = data.find(b"glibc-ld.so.cache1.1")
    if base < 0:
        return {}
    count, = struct.unpack_from("<I", data, base + 20)
    found: dict[str, list[str]] = {}
    string = lambda at: data[base + at:data.index(b"\0", base + at)].decode(errors="replace")  # noqa: E731
    for i in range(count):
        _, key, value = struct.unpack_from("<iII", data, base + 48 + 24 * i)
        found.setdefault(string(key), []).append(string(value))
    return found


def library_closure(files: Iterable[str]) -> list[str]:
    """Return the loader and every shared library the ELF files need, directly or not, as the loader names them."""
    cache = read_ld_cache()
    multiarch = getattr(sys.implementation, "_multiarch", None)
    defaults = [f"{d}/{multiarch}" for d in ("/lib", "/usr/lib") if multiarch] + list(_DEFAULT_LIB_DIRS)
    pending, seen, libraries, infos = list(files), set(), [], {}
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        info = infos[path] = read_elf(path)
        if info is None:
            continue
        if info.interpreter:
            pending.append(info.interpreter)
            libraries.append(info.interpreter)
        for name in info.needed:
            found = _find_library(name, info, cache, defaults, infos)
            if found is not None:
                libraries.append(found)
                pending.append(found)
    return list(dict.fromkeys(libraries))


def _find_library(name: str, user: ElfInfo, cache: dict[str, list[str]], defaults: list[str],
                  infos: dict[str, ElfInfo | None]) -> str | None:
    if "/" in name:
        return name
    candidates = [os.path.join(d, name) for d in user.search] + cache.get(name, [])
    candidates += [os.path.join(d, name) for d in defaults]
    for candidate in candidates:
        if candidate not in infos:
            infos[candidate] = read_elf(candidate)
        if infos[candidate] is not None and infos[candidate].kind == user.kind:
            return candidate
    return None


def interpreter_paths() -> tuple[list[str], list[str]]:
    """Return (paths, covered) the running interpreter needs in the view.

    paths: the executable, the import path's folders (but the first, the zygote's own code), the
    shared libraries of the executable and of every extension module in those folders, and the
    /etc and locale files of ETC that exist.
    covered: the standard library's own site-packages folders, to be shown empty.
    """
    executable = os.path.realpath(sys.executable)
    folders = [p for p in sys.path[1:] if p and os.path.exists(p)]
    extensions = [entry.path for folder in folders if os.path.isdir(folder) for entry in os.scandir(folder)
                  if entry.name.endswith(".so") and entry.is_file()]
    paths = [executable, *folders, *library_closure([executable, *extensions])]
    paths += [p for p in ETC if os.path.exists(p)]
    covered = [os.path.join(folder, name) for folder in folders for name in ("site-packages", "dist-packages")
               if os.path.isdir(os.path.join(folder, name))]
    return list(dict.fromkeys(paths)), covered


@dataclass
class Plan:
    """What to create in the new root: folders, symbolic links, and read-only binds of host paths (by O_PATH fd)."""

    folders: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    binds: dict[str, int] = field(default_factory=dict)

    def add(self, path: str) -> None:
        """Make path resolve in the view as on the host: links on the way become links, the end a bind."""
        if not os.path.isabs(path) or not path.strip("/"):
            raise ValueError(f"not an absolute path below /: {path!r}")
        parts, current, followed = [p for p in path.split("/") if p], "/", 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                current = os.path.dirname(current)
                continue
            here = os.path.join(current, part)
            info = os.lstat(here)
            if stat.S_ISLNK(info.st_mode):
                followed += 1
                if followed > _MAX_LINKS:
                    raise OSError(f"too many symbolic links in {path}")
                target = os.readlink(here)
                self.links[here] = target
                current = "/" if target.startswith("/") else current
                parts[:0] = [p for p in target.split("/") if p]
            elif parts:
                self.folders.add(here)
                current = here
            elif here not in self.binds:
                self.binds[here] = os.open(here, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)

    def close(self) -> None:
        """Close the fds of the bind sources."""
        for fd in self.binds.values():
            os.close(fd)
        self.binds.clear()

    def visible(self) -> list[str]:
        """Return the bound host paths that no other bound path contains."""
        return [p for p in sorted(self.binds) if _under(p, self.binds) == p]


def _under(path: str, roots: Iterable[str]) -> str:
    """Return the shortest of roots that is path or a folder above it, else path."""
    best = path
    for root in roots:
        if (path == root or path.startswith(root.rstrip("/") + "/")) and len(root) < len(best):
            best = root
    return best


def build_root(paths: Sequence[str], covered: Sequence[str], scratch: Sequence[str], scratch_mb: int,
               staging: str = "/tmp") -> list[str]:
    """Build the view at staging (in this process's private mount namespace) and pivot into it.

    paths are shown read-only, covered folders inside them are shown empty, and each scratch folder
    gets a private tmpfs of scratch_mb, world-writable like /tmp. Return the host paths now visible.
    Sources are opened before anything is mounted, so a path under staging is shown as it was.
    """
    plan = Plan()
    try:
        for path in [*paths, *DEVICES]:
            plan.add(path)
        _populate(plan, covered, scratch, scratch_mb, staging)
        return plan.visible()
    finally:
        plan.close()


def _populate(plan: Plan, covered: Sequence[str], scratch: Sequence[str], scratch_mb: int, staging: str) -> None:
    isolation.mount("tmpfs", staging, "tmpfs", isolation.MS_NOSUID | isolation.MS_NODEV, _ROOT_TMPFS)
    inside = lambda path: staging.rstrip("/") + path  # noqa: E731
    for path in ("/proc", *scratch):
        os.makedirs(inside(path), 0o755, exist_ok=True)
    for path in scratch:  # before the binds, so that a bind under /tmp lands on the scratch tmpfs
        isolation.mount_scratch(inside(path), scratch_mb)
    bound = set()
    for path in sorted(plan.folders | set(plan.links) | set(plan.binds) | set(DEV_LINKS), key=len):
        if _under(path, bound) != path:
            continue  # inside a folder already bound: there it is as on the host
        target = inside(path)
        if path in plan.binds:
            _bind(plan.binds[path], target)
            bound.add(path)
        elif path in plan.links or path in DEV_LINKS:
            os.symlink(plan.links.get(path) or DEV_LINKS[path], target)
        elif not os.path.isdir(target):
            os.mkdir(target, 0o755)
            os.chmod(target, 0o755)  # whatever the umask
    sealed = isolation.MS_RDONLY | isolation.MS_NOSUID | isolation.MS_NODEV
    for path in covered:
        if _under(path, bound) != path and os.path.isdir(inside(path)):
            isolation.mount("tmpfs", inside(path), "tmpfs", sealed, "mode=0755,size=4k")
    isolation.pivot_into(staging)
    isolation.mount(None, "/", None, isolation.MS_REMOUNT | sealed)


def _bind(fd: int, target: str) -> None:
    """Bind the host path open as fd at target (a new empty file or folder), read-only and nosuid."""
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644))
    isolation.mount(f"/proc/self/fd/{fd}", target, None, isolation.MS_BIND | isolation.MS_REC)
    device = stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
    isolation.remount_readonly(target, isolation.MS_NOSUID | (0 if device else isolation.MS_NODEV))
