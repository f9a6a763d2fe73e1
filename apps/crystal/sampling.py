"""Which conditions the policy is asked for, and sampling Wyckoff texts for them (training rounds, eval, infer)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from apps.crystal.data import Crystal
from apps.crystal.prompts import prompt, prompt_id
from shared.constrained import TokenAutomaton
from shared.generation import sample_texts
from shared.records import Candidate

Condition = tuple[str | None, int | None]  # (formula, space group); (None, None) is unconditional


def frequent_spacegroups(crystals: Sequence[Crystal], n: int) -> list[int]:
    """The n most frequent space groups (ties by number): the conditions sampled during training rounds."""
    counts = Counter(c.spacegroup for c in crystals)
    return [sg for sg, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def heldout_spacegroups(heldout: Sequence[Crystal], n: int, seed: int) -> list[int]:
    """n distinct space groups of held-out structures (seeded): the conditional evaluation's requests."""
    groups = sorted({c.spacegroup for c in heldout})
    random.Random(seed).shuffle(groups)
    return sorted(groups[:n])


def requests(unconditional: int, spacegroups: Sequence[int], per_spacegroup: int) -> list[tuple[Condition, int]]:
    """(condition, number of samples): the unconditional prompt, then each space group's prompt."""
    return [((None, None), unconditional)] + [((None, sg), per_spacegroup) for sg in spacegroups]


def generate(model, tok, requests: Sequence[tuple[Condition, int]], *, temperature: float, top_p: float,
             max_new_tokens: int, batch_size: int, seed: int, constraint: TokenAutomaton | None = None) -> list[Candidate]:
    """Return candidates for each (condition, number of samples) request (format-constrained with `constraint`)."""
    out = []
    for (formula, sg), n in requests:
        if n <= 0:
            continue
        texts = sample_texts(model, tok, [prompt(formula, sg)], samples=n, temperature=temperature, top_p=top_p,
                             max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed + (sg or 0),
                             constraint=constraint)[0]
        out.extend(Candidate(prompt_id=prompt_id(formula, sg), prompt=prompt(formula, sg), output=t,
                             metadata={"requested_formula": formula, "requested_sg": sg, "sample": j})
                   for j, t in enumerate(texts))
    return out
