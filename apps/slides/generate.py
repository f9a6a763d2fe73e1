"""Write deck plans with a model: grammar-constrained generation for a list of tasks."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from apps.slides.data import Task
from apps.slides.plan import DeckGrammar
from apps.slides.prompts import deck_prompt


def task_prompts(tasks: Sequence[Task]) -> list[list[dict]]:
    return [deck_prompt(t.document, t.profile, t.template, t.slides) for t in tasks]


_AUTOMATA: dict[int, object] = {}


def grammar_for(tokenizer):
    """The plan grammar's token automaton for a tokenizer (masks cached across calls)."""
    from shared.constrained import TokenAutomaton

    key = id(tokenizer)
    if key not in _AUTOMATA:
        _AUTOMATA[key] = TokenAutomaton(DeckGrammar(), tokenizer)
    return _AUTOMATA[key]


def write_plans(model, tokenizer, tasks: Sequence[Task], *, samples: int = 1, temperature: float = 0.0,
                top_p: float = 1.0, max_new_tokens: int = 448, batch_size: int = 16, seed: int = 0,
                constrained: bool = True) -> list[list[str]]:
    """`samples` plan texts per task (greedy when temperature is 0)."""
    from shared.generation import sample_texts

    return sample_texts(model, tokenizer, task_prompts(tasks), samples=samples, temperature=temperature, top_p=top_p,
                        max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
                        constraint=grammar_for(tokenizer) if constrained else None)
