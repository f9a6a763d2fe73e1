"""Prompt-A-Video's booster: an instruction LLM that rewrites a user's short request for the text-to-video model.

The booster sees the request (and, during reward-guided evolution, the best rewrites so far with
their rewards) in a chat and answers with one rewritten prompt. `check_rewrite` says why a rewrite
cannot be used: empty, endless (no end of text within `rewrite.max_new_tokens`), longer than
`rewrite.max_words` words (Prompt-A-Video drops chosen rewrites over 130 words), or not text
(control characters, or fewer letters than a sentence has). An unusable rewrite is scored invalid
(every dimension 0) and no video is drawn for it; nothing in the loop raises on it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace

from shared.generation import Sampled, sample_completions
from shared.models import ModelSpec, saved_spec
from shared.models.loading import LoraSpec

SYSTEM = ("You rewrite a user's request into a prompt for a small text-to-video model. The model knows plain "
          "captions such as 'a large red circle moving left slowly', 'a small blue square staying still', "
          "'a red circle moving left and a blue square moving up' and 'a large green triangle appearing'. "
          "Answer with the rewritten prompt only.")
# Two worked exchanges before the request (in words the generated requests never use): they fix the answer's form.
EXAMPLES = (("a massive ruby-coloured orb zooming to the right", "a large red circle moving right quickly"),
            ("a petite sky-blue cube that just sits there", "a small blue square staying still"))
REASONS = ("empty", "endless", "too_long", "not_text")


@dataclass
class RewriteArgs:
    """How the booster writes rewrites.

    Attributes:
        temperature: sampling temperature for evolution and DPO candidates (Prompt-A-Video: 1.0).
        top_p: nucleus sampling threshold.
        max_new_tokens: a rewrite that has not ended within this many tokens is endless (invalid).
        max_words: a longer rewrite is invalid (the rewrite-length limit).
        batch_size: sequences per generate call.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48
    max_words: int = 30
    batch_size: int = 32


def booster_messages(request: str, shown: Sequence[tuple[str, float]] = ()) -> list[dict[str, str]]:
    """The booster's chat for one request; `shown` are earlier rewrites with their rewards (evolution), best first.

    Earlier rewrites are replayed as the booster's own earlier answers, each followed by its reward, worst first,
    so the best comes last and the chat ends with a request for a better one. (A list of rewrites with their
    rewards inside one message made SmolLM2-135M continue the list: 99 of 174 rewrites never ended.)
    """
    shots = [m for req, answer in EXAMPLES for m in ({"role": "user", "content": f"Request: {req}"},
                                                     {"role": "assistant", "content": answer})]
    chat = [{"role": "system", "content": SYSTEM}, *shots, {"role": "user", "content": f"Request: {request}"}]
    for text, reward in reversed(list(shown)):
        chat += [{"role": "assistant", "content": text},
                 {"role": "user", "content": f"That prompt's video scored {reward:.2f}. Write a better prompt for the "
                                             "same request."}]
    return chat


def clean_rewrite(text: str) -> str:
    """The rewrite as the video model gets it: whitespace collapsed, one pair of surrounding quotes removed."""
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return text


def check_rewrite(sampled: Sampled, max_words: int) -> str | None:
    """Why a sampled rewrite is unusable (one of REASONS), or None when it is usable."""
    text = clean_rewrite(sampled.text)
    if not sampled.finished:
        return "endless"
    if not text:
        return "empty"
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") for ch in sampled.text if ch not in "\n\t\r"):
        return "not_text"
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3 or letters < 0.5 * len(text.replace(" ", "")):
        return "not_text"
    if len(text.split()) > max_words:
        return "too_long"
    return None


def rewrite(model, tokenizer, requests: Sequence[str], args: RewriteArgs, *, samples: int = 1, greedy: bool = False,
            seed: int | None = None, shown: Sequence[Sequence[tuple[str, float]]] | None = None) -> list[list[Sampled]]:
    """`samples` rewrites per request (greedy: one, temperature 0); `shown[i]` are request i's earlier rewrites."""
    chats = [booster_messages(r, shown[i] if shown else ()) for i, r in enumerate(requests)]
    return sample_completions(model, tokenizer, chats, samples=samples, temperature=0.0 if greedy else args.temperature,
                              top_p=args.top_p, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=seed)


def booster_spec(spec: ModelSpec, folder: str | None, seed: int) -> ModelSpec:
    """The spec that loads a booster for sampling, without an adapter: `spec` itself (the base booster) when
    folder is None or "base", else the saved booster in folder."""
    if folder in (None, "base"):
        return replace(spec, lora=LoraSpec(r=0))
    return saved_spec(spec, folder, seed, lora=False)
