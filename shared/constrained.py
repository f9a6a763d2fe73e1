"""Grammar-constrained sampling: a character-level automaton masks the tokens a model may emit next.

An app describes its output format as a `CharConstraint` (a start state, a transition per
character, and which states may end). `ConstrainedLogits` turns it into a transformers
`LogitsProcessor` for any tokenizer: a token is allowed when the automaton accepts every
character of its text from the row's current state; the EOS token is allowed only where the
format may end. Masks are cached per automaton state, so states should be small hashable
summaries (the phase, the partial field), not the whole prefix. Masking runs before
temperature and top-p, so sampling keeps its meaning within the allowed tokens.

Tokens whose text is not plain ASCII (byte fragments of multi-byte characters) are never allowed.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase


class CharConstraint(Protocol):
    """A deterministic automaton over characters; `step` returns None for a character the format forbids."""

    def start(self) -> Hashable: ...

    def step(self, state: Hashable, char: str) -> Hashable | None: ...

    def can_end(self, state: Hashable) -> bool: ...


_FINISHED = ("<finished>",)


def walk(constraint: CharConstraint, text: str, state: Hashable | None = None) -> Hashable | None:
    """The state after `text` from `state` (default: the start), or None when the format forbids a character."""
    state = constraint.start() if state is None else state
    for ch in text:
        state = constraint.step(state, ch)
        if state is None:
            return None
    return state


def token_texts(tokenizer: PreTrainedTokenizerBase) -> list[str | None]:
    """Each token id's text (None for special and non-ASCII tokens), as decoding it alone gives."""
    special = set(tokenizer.all_special_ids)
    out: list[str | None] = []
    for i in range(len(tokenizer)):
        if i in special:
            out.append(None)
            continue
        text = tokenizer.decode([i])
        out.append(text if text and text.isascii() else None)
    return out


class TokenAutomaton:
    """Allowed-token masks of a `CharConstraint` for one tokenizer, cached per state (reusable across calls)."""

    def __init__(self, constraint: CharConstraint, tokenizer: PreTrainedTokenizerBase):
        self.constraint = constraint
        self.eos = tokenizer.eos_token_id
        self.texts = token_texts(tokenizer)
        self.by_first: dict[str, list[int]] = {}
        for i, text in enumerate(self.texts):
            if text:
                self.by_first.setdefault(text[0], []).append(i)
        self._masks: dict[tuple[Hashable, int], torch.Tensor] = {}

    def advance(self, state: Hashable, text: str) -> Hashable | None:
        return walk(self.constraint, text, state)

    def mask(self, state: Hashable, vocab_size: int) -> torch.Tensor:
        """Boolean (vocab_size,) mask of the tokens allowed in `state`; EOS alone when nothing else is."""
        key = (state, vocab_size)
        cached = self._masks.get(key)
        if cached is not None:
            return cached
        allowed = torch.zeros(vocab_size, dtype=torch.bool)
        for first, ids in self.by_first.items():
            if self.constraint.step(state, first) is None:
                continue
            for i in ids:
                if i < vocab_size and self.advance(state, self.texts[i]) is not None:
                    allowed[i] = True
        # A state with no way forward (a constraint bug or an unreachable corner) ends the text rather than
        # leaving no token at all.
        if self.eos is not None and self.eos < vocab_size and (self.constraint.can_end(state) or not allowed.any()):
            allowed[self.eos] = True
        self._masks[key] = allowed
        return allowed


class ConstrainedLogits(LogitsProcessor):
    """A LogitsProcessor for one `generate` call: rows start after `prompt_width` tokens of (left-padded) prompt."""

    def __init__(self, automaton: TokenAutomaton, prompt_width: int):
        self.automaton = automaton
        self.prompt_width = prompt_width
        self.states: list[Hashable] = []
        self.seen = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        rows, length = input_ids.shape
        if not self.states:
            self.states = [self.automaton.constraint.start()] * rows
            self.seen = self.prompt_width
        for pos in range(self.seen, length):
            for r in range(rows):
                self.states[r] = self._consume(self.states[r], int(input_ids[r, pos]))
        self.seen = length
        masks = torch.stack([
            torch.ones(scores.shape[-1], dtype=torch.bool) if s == _FINISHED else self.automaton.mask(s, scores.shape[-1])
            for s in self.states
        ]).to(scores.device)
        return scores.masked_fill(~masks, float("-inf"))

    def _consume(self, state: Hashable, token: int) -> Hashable:
        if state == _FINISHED or token == self.automaton.eos:
            return _FINISHED
        text = self.automaton.texts[token] if token < len(self.automaton.texts) else None
        nxt = self.automaton.advance(state, text) if text else None
        # Only a masked-out token can get here (e.g. a row that finished and is being padded).
        return _FINISHED if nxt is None else nxt
