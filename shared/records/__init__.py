"""Records that flow between stages (Candidate, Pair, RankedList) and their JSONL files."""

from shared.records.jsonl import iter_json_objects, iter_jsonl, read_jsonl, write_jsonl
from shared.records.types import Candidate, Messages, Pair, RankedList, RecordError, Text

__all__ = [
    "Candidate",
    "Messages",
    "Pair",
    "RankedList",
    "RecordError",
    "Text",
    "iter_json_objects",
    "iter_jsonl",
    "read_jsonl",
    "write_jsonl",
]
