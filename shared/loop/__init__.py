"""The iterative driver: rounds of sample -> score -> build -> fit -> evaluate that resume after a crash.

    result = run_loop(recipe, "runs/x", rounds=7, schedule={"beta": [0.1] * 7, "lr": 5e-7}, seed=0)

An app supplies a Recipe (five stage callables; fitting happens under Lightning inside `fit`).
Each round writes run_dir/round_NNN/{candidates,scored,pairs}.jsonl, checkpoint/, fit.json and
metrics.json; run_dir holds state.json, metrics.csv and rounds.png. See docs/training_loop.md.
"""

from shared.loop.driver import LoopResult, run_loop
from shared.loop.errors import LoopError
from shared.loop.layout import STAGES, RunLayout
from shared.loop.recipe import Recipe, RecipeFunctions, Round, round_seed
from shared.loop.schedule import Schedule, ScheduleError

__all__ = [
    "STAGES",
    "LoopError",
    "LoopResult",
    "Recipe",
    "RecipeFunctions",
    "Round",
    "RunLayout",
    "Schedule",
    "ScheduleError",
    "round_seed",
    "run_loop",
]
