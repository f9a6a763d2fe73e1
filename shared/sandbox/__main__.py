"""Run one Python file in the sandbox and print its verdict as JSON: python -m shared.sandbox FILE [--timeout S].

Exit code 0 when a verdict was printed (whatever the program did), 2 when FILE cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys

from shared.sandbox import Limits, run_program


def main(argv: list[str] | None = None) -> int:
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m shared.sandbox", description=__doc__)
    parser.add_argument("file", help="Python source file to run")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s,
                        help="wall-clock seconds (default: %(default)s)")
    parser.add_argument("--cpu", type=float, default=None, help="CPU seconds (default: the timeout)")
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb,
                        help="address-space limit (default: %(default)s)")
    parser.add_argument("--max-processes", type=int, default=defaults.max_processes,
                        help="processes and threads (default: %(default)s)")
    parser.add_argument("--max-output-bytes", type=int, default=defaults.max_output_bytes,
                        help="kept per stream, head and tail (default: %(default)s)")
    parser.add_argument("--stdin", default=None, help="file whose contents the program reads on stdin")
    parser.add_argument("--read-only", action="append", default=[], metavar="PATH",
                        help="host path the program may read (repeatable)")
    args = parser.parse_args(argv)
    try:
        limits = Limits(timeout_s=args.timeout, cpu_s=args.cpu, memory_mb=args.memory_mb,
                        max_processes=args.max_processes, max_output_bytes=args.max_output_bytes,
                        read_only_paths=tuple(args.read_only))
    except ValueError as exc:
        parser.error(str(exc))
    try:
        with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
            source = f.read()
        stdin = ""
        if args.stdin is not None:
            with open(args.stdin, encoding="utf-8", errors="surrogateescape") as f:
                stdin = f.read()
    except OSError as exc:
        print(f"python -m shared.sandbox: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    print(json.dumps(run_program(source, limits, stdin=stdin).to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
