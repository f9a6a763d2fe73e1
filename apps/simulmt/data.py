"""Sentence pairs: the embedded language pair (apps/simulmt/language.py) or users' parallel TSV / JSONL files.

TSV: one pair per line, `source<TAB>reference[<TAB>alignment]`. JSONL: one object per line with
`source` (str), `reference` (str; or `target`, or `references`: a list, the first one canonical),
optional `alignment` (of the first reference) and `id`. An alignment is Pharaoh text as fast_align
and awesome-align write it, `i-j` pairs of 0-based source and target word positions. Words are
whitespace tokens. Every malformed line raises ValueError naming `path:line` and the field.
Files may be gzip-compressed; they must be UTF-8.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from apps.simulmt.language import SentencePair, embedded_split
from shared.records import iter_json_objects
from shared.textfile import iter_lines

_PAIR = re.compile(r"^(\d+)-(\d+)$")


@dataclass
class DataArgs:
    """Where the sentence pairs come from.

    Attributes:
        train: `embedded:train` or a TSV / JSONL file of training pairs.
        heldout: `embedded:heldout` or a TSV / JSONL file of held-out pairs.
        train_size: embedded training sentences generated.
        heldout_size: embedded held-out sentences generated (none of them is a training source).
        seed: seed of the embedded sentences.
        max_train: use at most this many training pairs (0: all).
        max_heldout: evaluate on at most this many held-out pairs (0: all).
        default_lag: for pairs without an alignment, the read/write schedule SFT teaches is wait-k with this k.
    """

    train: str = "embedded:train"
    heldout: str = "embedded:heldout"
    train_size: int = 4000
    heldout_size: int = 300
    seed: int = 0
    max_train: int = 0
    max_heldout: int = 0
    default_lag: int = 3


def parse_alignment(text: str, source_len: int, target_len: int) -> list[list[int]]:
    """Pharaoh `i-j` pairs -> for each target word j the sorted source positions it is aligned to; ValueError on a bad pair."""
    deps: list[set[int]] = [set() for _ in range(target_len)]
    for item in text.split():
        match = _PAIR.match(item)
        if not match:
            raise ValueError(f"'{item}' is not an i-j pair")
        i, j = int(match.group(1)), int(match.group(2))
        if i >= source_len or j >= target_len:
            raise ValueError(f"'{item}' is outside the sentence ({source_len} source, {target_len} target words)")
        deps[j].add(i)
    return [sorted(d) for d in deps]


def _pair(where: str, sid: str, source: object, references: object, alignment: object) -> SentencePair:
    if not isinstance(source, str) or not source.split():
        raise ValueError(f"{where}: source: expected non-empty text")
    if isinstance(references, str):
        references = [references]
    if not isinstance(references, list) or not references or not all(isinstance(r, str) and r.split() for r in references):
        raise ValueError(f"{where}: reference: expected non-empty text (or references: a list of it)")
    words, refs = source.split(), [" ".join(r.split()) for r in references]
    aligned = None
    if alignment not in (None, ""):
        if not isinstance(alignment, str):
            raise ValueError(f"{where}: alignment: expected Pharaoh text such as '0-0 1-2'")
        try:
            aligned = [parse_alignment(alignment, len(words), len(refs[0].split()))]
        except ValueError as exc:
            raise ValueError(f"{where}: alignment: {exc}") from None
    return SentencePair(sid, words, refs, aligned)


def load_pairs(path: str | Path) -> list[SentencePair]:
    """Read a TSV or JSONL file of sentence pairs (see the module docstring); ValueError names path:line and field."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    out = []
    if path.suffix in (".jsonl", ".json"):
        for number, row in iter_json_objects(path):
            where = f"{path}:{number}"
            refs = row.get("references", row.get("reference", row.get("target")))
            out.append(_pair(where, str(row.get("id", f"{path.stem}-{number}")), row.get("source"), refs,
                             row.get("alignment")))
    else:
        for number, line in iter_lines(path, error=ValueError):
            if not line.strip():
                continue
            cells = line.split("\t")
            if len(cells) not in (2, 3):
                raise ValueError(f"{path}:{number}: expected 2 or 3 tab-separated columns (source, reference[, "
                                 f"alignment]), got {len(cells)}")
            out.append(_pair(f"{path}:{number}", f"{path.stem}-{number}", cells[0], cells[1],
                             cells[2] if len(cells) == 3 else None))
    if not out:
        raise ValueError(f"{path}: no sentence pair")
    return out


def load_split(args: DataArgs, which: str) -> list[SentencePair]:
    """The training or held-out pairs of the data section (`which`: train | heldout), limited by max_*."""
    source, limit = (args.train, args.max_train) if which == "train" else (args.heldout, args.max_heldout)
    if source.startswith("embedded"):
        part = source.partition(":")[2] or which
        if part not in ("train", "heldout"):
            raise ValueError(f"data.{which}: '{source}' is not embedded:train or embedded:heldout")
        train, heldout = embedded_split(args.train_size, args.heldout_size, args.seed)
        pairs = train if part == "train" else heldout
    else:
        pairs = load_pairs(source)
    return pairs[:limit] if limit else pairs


def oracle_delays(pair: SentencePair, reference: int, default_lag: int) -> list[int]:
    """The earliest adequate schedule for a reference: word j is written once every source word it depends on
    is read (delays non-decreasing, at least 1). Without an alignment: wait-k with k = default_lag."""
    n_src, n_tgt = len(pair.source), len(pair.references[reference].split())
    if pair.alignments is None or reference >= len(pair.alignments):
        return [min(default_lag + j, n_src) for j in range(n_tgt)]
    delays, current = [], 1
    for deps in pair.alignments[reference]:
        current = max(current, max(deps) + 1 if deps else current)
        delays.append(min(current, n_src))
    return delays
