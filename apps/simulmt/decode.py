"""Simultaneous decoding: the policy reads source words one at a time and writes target words, batched over sentences.

Two kinds of latency setting:
- `wait-k` (Ma et al. 2019): read while read - written < k and the source lasts, else write; the
  prompt is `<translate>`, the baseline every simultaneous method is compared with.
- `threshold` tau: the model's own policy under `<simul>`: read when P(<read>) >= tau, else write
  its best (or, sampling, a drawn) target token. A lower tau reads more: each tau is one point of
  the model's quality-latency curve. An optional minimum lag L also reads while read - written < L.

Rules for every setting: at least one source word is read before the first write; </s> is masked
until the source is read; after `max_words` target words nothing more is written (the rest of the
source is read and the translation ends, marked truncated; also after 8 tokens per allowed
word, for a subword model that never ends a word), so an output that never stops is still
scored; one that never writes gets an empty translation. The model is rerun on the whole stream
each step (no KV cache): streams are short, and rows advance by different amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from apps.simulmt.stream import Vocabulary, read_tokens


@dataclass(frozen=True)
class Setting:
    """A latency setting: `wait_k` with k = value, or `threshold` with tau = value and an optional minimum lag.

    With min_lag L the model's own policy is also made to read while read - written < L (as wait-k
    does): a second knob, for a policy whose reads are so confident that tau no longer moves it.
    """

    kind: str
    value: float
    min_lag: int = 0

    def __post_init__(self):
        if self.kind not in ("wait_k", "threshold"):
            raise ValueError(f"latency setting kind '{self.kind}' is not wait_k or threshold")
        if self.kind == "wait_k" and (self.value < 1 or self.value != int(self.value)):
            raise ValueError(f"wait_k needs an integer k >= 1, got {self.value}")
        if self.kind == "threshold" and not 0 < self.value <= 1:
            raise ValueError(f"tau lies in (0, 1], got {self.value}")
        if self.min_lag < 0 or (self.min_lag and self.kind == "wait_k"):
            raise ValueError(f"min_lag {self.min_lag}: a non-negative lag of a threshold setting")

    @property
    def mode(self) -> str:
        return "translate" if self.kind == "wait_k" else "simul"

    @property
    def name(self) -> str:
        if self.kind == "wait_k":
            return f"wait-{int(self.value)}"
        return f"tau={self.value:g}" + (f",lag={self.min_lag}" if self.min_lag else "")

    @classmethod
    def parse(cls, text: str) -> Setting:
        """`wait-3`, `tau=0.5` or `tau=0.9,lag=2`."""
        try:
            if text.startswith("wait-"):
                return cls("wait_k", float(text[5:]))
            if text.startswith("tau="):
                tau, _, lag = text[4:].partition(",lag=")
                return cls("threshold", float(tau), int(lag) if lag else 0)
        except ValueError as exc:
            raise ValueError(f"latency setting '{text}': {exc}") from None
        raise ValueError(f"latency setting '{text}': expected wait-K, tau=T or tau=T,lag=L")


@dataclass
class Trajectory:
    """One simultaneous translation: what was written, when, and the token stream that produced it."""

    source: list[str]
    target: list[str]
    delays: list[int]
    prompt: list[int]
    completion: list[int]
    scored: list[int]
    truncated: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.target)

    def actions(self) -> list[str]:
        """R (read a source word) / W (write a target word) in order, the rest of the source read at the end."""
        out, read = [], 0
        for d in self.delays:
            out += ["R"] * (d - read) + ["W"]
            read = d
        return out + ["R"] * (len(self.source) - read)


@dataclass
class _Row:
    source: list[str]
    ids: list[int]
    prompt_len: int
    finished: bool = True  # every source word is known (batch decoding); streaming sets it when the client says so
    read: int = 0
    target_tokens: list[int] = field(default_factory=list)
    reads_at: list[int] = field(default_factory=list)
    scored: list[int] = field(default_factory=list)
    done: bool = False
    truncated: bool = False
    waiting: bool = False  # the policy wants a source word that has not arrived

    @property
    def source_left(self) -> bool:
        return self.read < len(self.source) or not self.finished


def word_delays(tok, tokens: Sequence[int], reads: Sequence[int]) -> tuple[list[str], list[int]]:
    """Target words and their delays: a word's delay is the source words read when its last token was written."""
    words, delays = [], []
    for i in range(len(tokens)):
        current = tok.decode(tokens[: i + 1], skip_special_tokens=True).split()
        while len(delays) < len(current):
            delays.append(reads[i])
        if current:
            delays[len(current) - 1] = reads[i]
        words = current
    return words, delays[: len(words)]


class SimultaneousDecoder:
    """Decode batches of source sentences under one latency setting with a causal LM policy."""

    def __init__(self, model, tok, *, max_ratio: float = 2.0, max_extra: int = 4, batch_size: int = 256):
        self.model, self.tok, self.vocab = model, tok, Vocabulary(tok)
        self.max_ratio, self.max_extra, self.batch_size = max_ratio, max_extra, batch_size
        self.device = next(model.parameters()).device
        # a word-level tokenizer writes whole words; otherwise a word is complete once the next one starts
        self.word_level = type(tok.backend_tokenizer.pre_tokenizer).__name__ == "WhitespaceSplit"

    def max_words(self, source_len: int) -> int:
        """The length limit of a translation: max_ratio * |source| + max_extra words."""
        return int(self.max_ratio * source_len) + self.max_extra

    def max_tokens(self, source_len: int) -> int:
        """The token limit behind it (a subword model may never end a word): 8 tokens per allowed word."""
        return 8 * self.max_words(source_len)

    @torch.no_grad()
    def decode(self, sources: Sequence[Sequence[str]], setting: Setting, *, temperature: float = 0.0,
               seed: int = 0) -> list[Trajectory]:
        """Translate every source; temperature 0 writes greedily, > 0 samples target tokens (reads stay by rule)."""
        self.model.eval()
        generator = torch.Generator().manual_seed(seed)
        out: list[Trajectory] = []
        for start in range(0, len(sources), self.batch_size):
            out += self._decode_batch(sources[start:start + self.batch_size], setting, temperature, generator)
        return out

    def _written_words(self, row: _Row) -> int:
        if self.word_level or not row.target_tokens:  # word level: one target token is one word
            return len(row.target_tokens)
        return len(self.tok.decode(row.target_tokens, skip_special_tokens=True).split())

    def _decode_batch(self, sources, setting: Setting, temperature: float, generator) -> list[Trajectory]:
        v = self.vocab
        prompt = v.prompt(setting.mode)
        rows = [_Row(list(s), list(prompt), len(prompt)) for s in sources]
        banned = torch.tensor(v.banned(), dtype=torch.long)
        while True:
            active = [r for r in rows if not r.done]
            if not active:
                break
            logits = self._last_logits([r.ids for r in active])
            for row, row_logits in zip(active, logits):
                self._step(row, row_logits, setting, temperature, generator, banned)
        return [self._trajectory(r) for r in rows]

    def _last_logits(self, streams: list[list[int]]) -> torch.Tensor:
        width = max(len(s) for s in streams)
        ids = torch.full((len(streams), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(streams):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        last = torch.tensor([len(s) - 1 for s in streams], device=logits.device)
        return logits[torch.arange(len(streams), device=logits.device), last].float().cpu()

    def _read(self, row: _Row, scored: bool) -> None:
        if row.read == len(row.source):  # streaming: the word has not arrived yet
            row.waiting = True
            return
        tokens = read_tokens(self.vocab, row.source, row.read)
        if not row.finished and tokens[-1] == self.vocab.source_end:
            tokens = tokens[:-1]  # not known to be the last word yet
        row.ids += tokens
        row.scored += [int(scored)] + [0] * (len(tokens) - 1)
        row.read += 1

    def _emit(self, row: _Row, token: int) -> None:
        row.ids.append(token)
        row.scored.append(1)
        if token == self.vocab.eos:
            row.done = True
        else:
            row.target_tokens.append(token)
            row.reads_at.append(row.read)

    def _step(self, row: _Row, logits: torch.Tensor, setting: Setting, temperature: float, generator, banned) -> None:
        v, source_left = self.vocab, row.source_left
        written = self._written_words(row)
        if written >= self.max_words(len(row.source)) or len(row.target_tokens) >= self.max_tokens(len(row.source)):
            row.truncated = True
            if source_left:
                return self._read(row, scored=False)
            return self._emit(row, v.eos)
        if row.read == 0:
            return self._read(row, scored=False)
        logits = logits.clone()
        logits[banned] = float("-inf")
        if source_left:
            logits[v.eos] = float("-inf")
            if setting.kind == "wait_k":
                if row.read - written < setting.value:
                    return self._read(row, scored=False)
            elif setting.min_lag and row.read - written < setting.min_lag:
                return self._read(row, scored=False)
            elif torch.softmax(logits, -1)[v.read] >= setting.value:
                return self._read(row, scored=True)
        logits[v.read] = float("-inf")
        if temperature > 0:
            token = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator))
        else:
            token = int(logits.argmax())
        self._emit(row, token)

    def _trajectory(self, row: _Row) -> Trajectory:
        if self.word_level:
            words, delays = self.tok.convert_ids_to_tokens(row.target_tokens), list(row.reads_at)
        else:
            words, delays = word_delays(self.tok, row.target_tokens, row.reads_at)
        return Trajectory(row.source, words, delays, row.ids[:row.prompt_len], row.ids[row.prompt_len:], row.scored,
                          row.truncated)


class StreamingSession:
    """One translation that advances as source words arrive: feed words, get the actions taken and words written.

    The policy runs until it wants a source word that has not arrived (it then waits) or ends the
    translation. Send the last words with `finished=True`; a `finished` that comes alone marks the
    end of the source with </src> after the words already read.
    """

    def __init__(self, decoder: SimultaneousDecoder, setting: Setting):
        self.decoder, self.setting = decoder, setting
        prompt = decoder.vocab.prompt(setting.mode)
        self.row = _Row([], list(prompt), len(prompt), finished=False)
        self._actions_sent = 0
        self._words_sent = 0

    @property
    def done(self) -> bool:
        return self.row.done

    @torch.no_grad()
    def feed(self, words: Sequence[str], finished: bool = False) -> dict:
        """Add source words (and maybe the end of the source), run the policy, return what happened since the last call."""
        row, v = self.row, self.decoder.vocab
        if row.done and (words or not finished):
            raise ValueError("this translation is finished")
        if row.finished and words:
            raise ValueError("the source was already marked finished")
        row.source += [w for w in words]
        if finished and not row.finished:
            row.finished = True
            if row.read == len(row.source) and row.read > 0 and row.ids[-1] != v.source_end:
                row.ids.append(v.source_end)
                row.scored.append(0)
        if not row.source and not finished:
            return self._report()
        if not row.source:
            row.done = True
            return self._report()
        banned = torch.tensor(v.banned(), dtype=torch.long)
        self.decoder.model.eval()
        row.waiting = False
        while not row.done and not row.waiting:
            logits = self.decoder._last_logits([row.ids])[0]
            self.decoder._step(row, logits, self.setting, 0.0, None, banned)
        return self._report()

    def trajectory(self) -> Trajectory:
        return self.decoder._trajectory(self.row)

    def _report(self) -> dict:
        traj = self.trajectory()
        actions = traj.actions()[: len(traj.target) + self.row.read]
        complete = traj.target if (self.row.done or self.decoder.word_level) else traj.target[:-1]
        out = {"actions": actions[self._actions_sent:], "written": complete[self._words_sent:], "read": self.row.read,
               "target": " ".join(traj.target), "done": self.row.done, "waiting": self.row.waiting and not self.row.done,
               "truncated": self.row.truncated}
        self._actions_sent, self._words_sent = len(actions), len(complete)
        return out
