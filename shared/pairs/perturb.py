"""Hard negatives by perturbation: the app supplies edit operators, the core applies them to good outputs."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping

from shared.pairs.common import Seed, base_seed, canonical_key, derived_rng
from shared.records import Candidate, Pair

Operator = Callable[[str, random.Random], str | None]


class PerturbationError(RuntimeError):
    """An app-supplied perturbation operator raised; the message names the operator."""


def perturbation_negatives(
    good: Iterable[Candidate], operators: Mapping[str, Operator], per_output: int = 1, seed: Seed = 0
) -> list[Pair]:
    """Return up to per_output pairs per good candidate (good output vs an edited copy), trying the operators
    in a seeded order and skipping edits that return None, the output itself or a negative already made."""
    if per_output < 1:
        raise ValueError(f"per_output must be >= 1, got {per_output}")
    if not operators:
        raise ValueError("perturbation_negatives needs at least one operator")
    base = base_seed(seed)
    names = sorted(operators)
    pairs = []
    for c in sorted(good, key=canonical_key):
        key = canonical_key(c)
        order = list(names)
        derived_rng(base, key).shuffle(order)
        made: list = []
        for name in order:
            if len(made) == per_output:
                break
            try:
                negative = operators[name](c.output, derived_rng(base, key, name))
            except Exception as exc:
                raise PerturbationError(
                    f"perturbation operator {name!r} failed on a candidate of prompt_id={c.prompt_id!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if negative is None or negative == c.output or negative in made:
                continue
            made.append(negative)
            metadata = {"builder": "perturbation_negatives", "prompt_id": c.prompt_id, "operator": name}
            pairs.append(Pair(prompt=c.prompt, chosen=c.output, rejected=negative, metadata=metadata))
    return pairs
