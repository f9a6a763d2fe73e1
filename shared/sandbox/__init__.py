"""Run untrusted (model-generated) Python with time, memory, process, file and output limits.

    from shared.sandbox import Limits, run_program, run_programs
    verdict = run_program("print(1 + 1)", Limits(timeout_s=3))
    verdict.status, verdict.returncode, verdict.stdout   # ("ok", 0, "2\\n")

See docs/sandbox.md for what is guaranteed, by which layer, and the status values.
"""

from shared.sandbox.host import SandboxError, active_layers, run_program, run_programs
from shared.sandbox.types import STATUSES, Limits, Verdict

__all__ = ["STATUSES", "Limits", "SandboxError", "Verdict", "active_layers", "run_program", "run_programs"]
