"""Reading users' text files: gzip found by its magic bytes, strict UTF-8, one-line errors naming file and line.

Every reader of a file a user hands in (JSONL records, YAML configs, the apps' task, prompt and CIF
files) goes through `iter_lines` or `read_text`, so malformed bytes give one line naming the file
(and the line), raised as the caller's error class (a ValueError, which the CLIs turn into exit 2):

    pairs.jsonl:12: not UTF-8: byte 0xe9 at column 31 (invalid continuation byte); save the file as UTF-8
    pairs.jsonl:1: UTF-16 text (byte-order mark ff fe); save the file as UTF-8
    pairs.jsonl:3: NUL byte at column 1: binary data or UTF-16 text, not UTF-8
    pairs.jsonl.gz: truncated gzip file (Compressed file ended before the end-of-stream marker was
        reached), after line 4812
    pairs.jsonl.gz: the name ends in .gz but the file is not gzip-compressed (it starts with b'{"pr');
        rename or compress it

A file whose bytes start with gzip's magic (1f 8b) is decompressed whatever its name; a UTF-8
byte-order mark at the start is skipped (Excel and Notepad write one, and `datasets` accepts it).
Lines end at "\\n" (a "\\r" before it is dropped too). A file that cannot be opened (missing, a
folder, no permission) raises the usual OSError, whose message names it.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class TextFileError(ValueError):
    """A file whose bytes are not the text expected; the message is one line, `path[:line]: what is wrong`."""


def is_gzip_name(path: str | os.PathLike) -> bool:
    """Whether the file name says gzip (`.gz`): how writers pick compression."""
    return Path(path).name.endswith(".gz")


@contextmanager
def open_bytes(path: str | os.PathLike, error: type[ValueError] = TextFileError) -> Iterator[IO[bytes]]:
    """Yield the file's bytes, decompressed when they start with gzip's magic.

    A non-empty file named `.gz` that is not gzip data raises `error`; OSError when it cannot be opened.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        head = raw.read(4)
        raw.seek(0)
        if head.startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream  # type: ignore[misc]
            return
        if head and is_gzip_name(path):
            raise error(f"{path}: the name ends in .gz but the file is not gzip-compressed "
                        f"(it starts with {head!r}); rename or compress it")
        yield raw


def decode_line(raw: bytes, where: str, *, first: bool = False, error: type[ValueError] = TextFileError,
                errors: str = "strict") -> str:
    """Return one line's text (its "\\n" or "\\r\\n" removed); `error` prefixed `where` (`path:line`) if not UTF-8.

    `first`: the file's first line, where a UTF-8 byte-order mark is skipped and a UTF-16 one refused.
    `errors="replace"` lets undecodable bytes through as U+FFFD (NUL bytes and UTF-16 are still refused).
    """
    if first:
        if raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        elif raw.startswith(UTF16_BOMS):
            raise error(f"{where}: UTF-16 text (byte-order mark {raw[:2].hex(' ')}); save the file as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        column = len(raw[:nul].decode("utf-8", "replace")) + 1
        raise error(f"{where}: NUL byte at column {column}: binary data or UTF-16 text, not UTF-8")
    try:
        text = raw.decode("utf-8", errors)
    except UnicodeDecodeError as exc:
        column = len(raw[:exc.start].decode("utf-8")) + 1
        raise error(f"{where}: not UTF-8: byte 0x{raw[exc.start]:02x} at column {column} ({exc.reason}); "
                    "save the file as UTF-8") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return text


def iter_lines(path: str | os.PathLike, *, error: type[ValueError] = TextFileError,
               errors: str = "strict") -> Iterator[tuple[int, str]]:
    """Yield (line number from 1, text without its line ending) for each line of a UTF-8 file, plain or gzip.

    Malformed bytes raise `error` (give the caller's own ValueError subclass) with a one-line message
    naming the file and line; a truncated or corrupt gzip stream names the file and the last good line.
    """
    path = Path(path)
    lineno = 0
    with open_bytes(path, error) as stream:
        lines = iter(stream)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                problem = "truncated gzip file" if isinstance(exc, EOFError) else "corrupt gzip data"
                place = f"after line {lineno}" if lineno else "before line 1"
                raise error(f"{path}: {problem} ({exc}), {place}") from None
            lineno += 1
            yield lineno, decode_line(raw, f"{path}:{lineno}", first=lineno == 1, error=error, errors=errors)


def read_text(path: str | os.PathLike, *, error: type[ValueError] = TextFileError, errors: str = "strict") -> str:
    """Return the text of a UTF-8 file, plain or gzip, with "\\n" line endings; checked as iter_lines checks it."""
    return "".join(line + "\n" for _, line in iter_lines(path, error=error, errors=errors))
