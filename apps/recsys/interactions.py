"""User-item interactions and item tables from files, users' chronological sequences and their leave-last-out split.

Interaction files (`read_interactions`), the format found from the first line:

    RecBole atomic (.inter), tab-separated, the `:type` suffix of each header field is dropped:
        user_id:token	item_id:token	rating:float	timestamp:float
    CSV or TSV (delimiter: tab if the header holds one, else comma), header naming
        user (or user_id), item (or item_id), timestamp[, rating]
    JSON lines, Amazon-review style or plain keys:
        {"reviewerID": "A2S", "asin": "B00", "unixReviewTime": 1389484800, "overall": 5.0}
        {"user": "u1", "item": "i9", "timestamp": 3.5, "rating": 4}

Item files (`read_items`): RecBole `.item` (item_id, movie_title, release_year, class: genres separated by
spaces, each a single token such as `Children's` or `Sci-Fi`), CSV/TSV with item, title[, year][, genres
separated by `|`], or JSON lines Amazon-metadata style (asin, title, categories or category; no year).

Files may be gzip-compressed; text is UTF-8, read as latin-1 when it is not (MovieLens titles are latin-1).
Every malformed line raises DataFileError, one line naming `path:line` and the field:

    ratings.csv:3: field 'timestamp': not a number: 'yesterday'

MovieLens-100k is read from the `recbole` package's example files (`load_movielens_100k`), found without
importing recbole (whose import fails on numpy >= 1.24); its licence forbids redistributing them.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.textfile import UTF8_BOM, UTF16_BOMS, open_bytes


class DataFileError(ValueError):
    """An interaction or item file that cannot be read; the message is one line, `path:line: what is wrong`."""


@dataclass(frozen=True)
class Item:
    """One catalogue item: its id, title, release year (None when unknown) and genres or categories."""

    id: str
    title: str
    year: int | None
    genres: tuple[str, ...]

    def text(self) -> str:
        """Return the item as one line for text embeddings: "Toy Story (1995). Animation, Children's, Comedy"."""
        head = self.title if self.year is None else f"{self.title} ({self.year})".strip()
        return f"{head}. {', '.join(self.genres)}" if self.genres else head


@dataclass(frozen=True)
class Interaction:
    """One user-item event: who, what, when (any increasing number: seconds, milliseconds) and the rating if any."""

    user: str
    item: str
    timestamp: float
    rating: float | None


# Header names (lower-cased, `:type` dropped) accepted for each field, and the JSON keys, first found wins.
USER_COLUMNS = ("user", "user_id", "userid")
ITEM_COLUMNS = ("item", "item_id", "itemid")
TIMESTAMP_COLUMNS = ("timestamp", "time")
RATING_COLUMNS = ("rating",)
TITLE_COLUMNS = ("title", "movie_title", "name")
YEAR_COLUMNS = ("year", "release_year")
GENRE_COLUMNS = ("genres", "genre", "class", "categories", "category")
# Amazon 2023 reviews carry both asin and parent_asin, its metadata only parent_asin: prefer parent_asin.
USER_KEYS = ("reviewerID", "user", "user_id")
ITEM_KEYS = ("parent_asin", "asin", "item", "item_id")
TIMESTAMP_KEYS = ("unixReviewTime", "timestamp", "time")
RATING_KEYS = ("overall", "rating")
TITLE_KEYS = ("title", "name")
GENRE_KEYS = ("categories", "category", "genres")
# Year cells read as "unknown"; RecBole's ml-100k.item spells one "unkonwn".
MISSING_YEARS = frozenset({"", "unknown", "unkonwn", "nan", "none", "null", "n/a"})

ML100K_HINT = "MovieLens-100k is read from the recbole package's example files: pip install --no-deps recbole==1.2.1"


def _read_lines(path: Path) -> list[str]:
    """Return the file's lines (without line endings), UTF-8 or else latin-1, plain or gzip; DataFileError if binary."""
    try:
        with open_bytes(path, DataFileError) as stream:
            data = stream.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataFileError(f"{path}: truncated or corrupt gzip file ({exc})") from None
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    elif data.startswith(UTF16_BOMS):
        raise DataFileError(f"{path}:1: UTF-16 text (byte-order mark {data[:2].hex(' ')}); save the file as UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataFileError(f"{path}:{line}: NUL byte: binary data or UTF-16 text, not UTF-8 or latin-1")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    # Split on "\n" only: str.splitlines would also break at latin-1's \x85 and at \x1c-\x1e.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _first_line(path: Path, lines: list[str]) -> int:
    """Return the index of the first non-blank line; DataFileError when the file holds none."""
    for index, line in enumerate(lines):
        if line.strip():
            return index
    raise DataFileError(f"{path}: empty file (no header and no records)")


def _is_json(lines: list[str], start: int) -> bool:
    """Whether the file is JSON lines (its first non-blank line opens an object)."""
    return lines[start].lstrip().startswith("{")


def _header_names(fields: list[str]) -> tuple[list[str], list[str]]:
    """Return (names as written without `:type`, their types or "") of a header row."""
    names, types = [], []
    for field in fields:
        name, _, kind = field.strip().partition(":")
        names.append(name.strip())
        types.append(kind.strip().lower())
    return names, types


def _column(names: list[str], aliases: Sequence[str]) -> int | None:
    """Return the index of the first header name among `aliases` (case-insensitive), None if none is there."""
    lowered = [name.lower() for name in names]
    for index, name in enumerate(lowered):
        if name in aliases:
            return index
    return None


def _rows(path: Path, lines: list[str], start: int) -> tuple[list[str], list[str], Iterator[tuple[int, list[str]]]]:
    """Return the header (names, types) and an iterator of (line number, stripped fields) of a delimited file.

    The delimiter is a tab when the header holds one, else a comma; tab files are read without quoting
    (RecBole's are not quoted), comma files with CSV quoting. Blank lines are skipped; a row whose field
    count differs from the header's raises DataFileError.
    """
    header_line = lines[start]
    delimiter = "\t" if "\t" in header_line else ","
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    kind = "tab" if delimiter == "\t" else "comma"
    reader = csv.reader(lines[start:], delimiter=delimiter, quoting=quoting, strict=False)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise DataFileError(f"{path}:{start + 1}: unreadable header ({exc})") from None
    names, types = _header_names(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataFileError(f"{path}:{start + reader.line_num}: {exc}") from None
            number = start + reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(names):
                raise DataFileError(f"{path}:{number}: {len(row)} fields, the header names {len(names)} "
                                    f"({kind}-separated)")
            yield number, [cell.strip() for cell in row]

    return names, types, rows()


def _require(path: Path, line: int, names: list[str], field: str, aliases: Sequence[str]) -> int:
    """Return the column of `field`; DataFileError naming the header line when no alias is present."""
    index = _column(names, aliases)
    if index is None:
        raise DataFileError(f"{path}:{line}: field '{field}': no such column (looked for "
                            f"{' or '.join(aliases)}; the header has {', '.join(names)})")
    return index


def _number(where: str, field: str, value: Any) -> float:
    """Return `value` as a finite float (from a number or numeric text); DataFileError naming `field` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataFileError(f"{where}: field '{field}': not a number: {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise DataFileError(f"{where}: field '{field}': not a number: {value!r}") from None
    if not math.isfinite(number):
        raise DataFileError(f"{where}: field '{field}': not a finite number: {value!r}")
    return number


def _identifier(where: str, field: str, value: Any) -> str:
    """Return a user or item id as non-empty text (JSON numbers allowed); DataFileError naming `field` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataFileError(f"{where}: field '{field}': expected text, got {type(value).__name__} {value!r}")
    text = str(value).strip()
    if not text:
        raise DataFileError(f"{where}: field '{field}': empty")
    return text


def _json_objects(path: Path, lines: list[str]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSON-lines file; DataFileError on bad JSON."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"{path}:{index + 1}: not valid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(row, dict):
            raise DataFileError(f"{path}:{index + 1}: expected a JSON object, got {type(row).__name__}")
        yield index + 1, row


def _key(where: str, row: dict, field: str, keys: Sequence[str], *, required: bool = True) -> tuple[str, Any]:
    """Return (key, value) of the first of `keys` in `row` ("", None when optional and absent)."""
    for key in keys:
        if key in row and row[key] is not None:
            return key, row[key]
    if required:
        raise DataFileError(f"{where}: field '{field}': missing (expected one of {', '.join(keys)})")
    return "", None


def read_interactions(path: str | os.PathLike) -> list[Interaction]:
    """Return the interactions of a RecBole .inter, CSV/TSV or JSON-lines file, in file order.

    DataFileError (one line, `path:line: field 'x': reason`) for a missing column, a wrong field count,
    an empty user or item, a non-numeric timestamp or rating, bad JSON or an empty file.
    """
    path = Path(path)
    lines = _read_lines(path)
    start = _first_line(path, lines)
    out: list[Interaction] = []
    if _is_json(lines, start):
        for number, row in _json_objects(path, lines):
            where = f"{path}:{number}"
            user_key, user = _key(where, row, "user", USER_KEYS)
            item_key, item = _key(where, row, "item", ITEM_KEYS)
            time_key, stamp = _key(where, row, "timestamp", TIMESTAMP_KEYS)
            rating_key, rating = _key(where, row, "rating", RATING_KEYS, required=False)
            out.append(Interaction(_identifier(where, user_key, user), _identifier(where, item_key, item),
                                   _number(where, time_key, stamp),
                                   None if rating is None else _number(where, rating_key, rating)))
        if not out:
            raise DataFileError(f"{path}: no interactions")
        return out
    names, _, rows = _rows(path, lines, start)
    user_col = _require(path, start + 1, names, "user", USER_COLUMNS)
    item_col = _require(path, start + 1, names, "item", ITEM_COLUMNS)
    time_col = _require(path, start + 1, names, "timestamp", TIMESTAMP_COLUMNS)
    rating_col = _column(names, RATING_COLUMNS)
    for number, row in rows:
        where = f"{path}:{number}"
        rating = None
        if rating_col is not None and row[rating_col]:
            rating = _number(where, names[rating_col], row[rating_col])
        out.append(Interaction(_identifier(where, names[user_col], row[user_col]),
                               _identifier(where, names[item_col], row[item_col]),
                               _number(where, names[time_col], row[time_col]), rating))
    if not out:
        raise DataFileError(f"{path}: a header and no interactions")
    return out


def _year(where: str, field: str, value: Any, *, lenient: bool = False) -> int | None:
    """Return a release year as an int, None for an empty or 'unknown' cell.

    A cell that is not a whole number raises DataFileError, or gives None when `lenient`.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in MISSING_YEARS:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number.is_integer()):
        if lenient:
            return None
        raise DataFileError(f"{where}: field '{field}': not a year: {value!r}")
    return int(number)


def _categories(where: str, field: str, value: Any) -> tuple[str, ...]:
    """Return Amazon categories as a flat tuple without repeats (a list, or the 2014 list of category paths)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise DataFileError(f"{where}: field '{field}': expected a list, got {type(value).__name__}")
    flat: list[str] = []
    for entry in value:
        for name in entry if isinstance(entry, list) else [entry]:
            if not isinstance(name, str):
                raise DataFileError(f"{where}: field '{field}': expected text, got {type(name).__name__} {name!r}")
            if name.strip() and name.strip() not in flat:
                flat.append(name.strip())
    return tuple(flat)


def read_items(path: str | os.PathLike, *, lenient_years: bool = False) -> dict[str, Item]:
    """Return the item table of a RecBole .item, CSV/TSV or JSON-lines file, by item id in file order.

    Genres: split on spaces in a RecBole `token_seq` column, on `|` in other tables; a list in JSON.
    Years: empty or 'unknown' give None; with `lenient_years` so does any other non-year cell.
    DataFileError for a missing id or title column, a duplicate item id, a bad year, bad JSON or an empty file.
    """
    path = Path(path)
    lines = _read_lines(path)
    start = _first_line(path, lines)
    out: dict[str, Item] = {}
    first_seen: dict[str, int] = {}

    def add(where: str, number: int, field: str, item: Item) -> None:
        if item.id in out:
            raise DataFileError(f"{where}: field '{field}': duplicate item {item.id!r} "
                                f"(first on line {first_seen[item.id]})")
        out[item.id] = item
        first_seen[item.id] = number

    if _is_json(lines, start):
        for number, row in _json_objects(path, lines):
            where = f"{path}:{number}"
            id_key, item_id = _key(where, row, "item", ITEM_KEYS)
            title_key, title = _key(where, row, "title", TITLE_KEYS, required=False)
            if title is not None and not isinstance(title, str):
                raise DataFileError(f"{where}: field '{title_key}': expected text, got {type(title).__name__}")
            genre_key, genres = _key(where, row, "categories", GENRE_KEYS, required=False)
            year = _year(where, "year", row.get("year"), lenient=lenient_years)
            add(where, number, id_key, Item(_identifier(where, id_key, item_id), " ".join((title or "").split()),
                                            year, _categories(where, genre_key, genres)))
        if not out:
            raise DataFileError(f"{path}: no items")
        return out
    names, types, rows = _rows(path, lines, start)
    id_col = _require(path, start + 1, names, "item", ITEM_COLUMNS)
    title_col = _require(path, start + 1, names, "title", TITLE_COLUMNS)
    year_col = _column(names, YEAR_COLUMNS)
    genre_col = _column(names, GENRE_COLUMNS)
    for number, row in rows:
        where = f"{path}:{number}"
        genres: tuple[str, ...] = ()
        if genre_col is not None:
            cell = row[genre_col]
            parts = cell.split() if types[genre_col] == "token_seq" else cell.split("|")
            genres = tuple(dict.fromkeys(part.strip() for part in parts if part.strip()))
        year = None if year_col is None else _year(where, names[year_col], row[year_col], lenient=lenient_years)
        add(where, number, names[id_col],
            Item(_identifier(where, names[id_col], row[id_col]), row[title_col], year, genres))
    if not out:
        raise DataFileError(f"{path}: a header and no items")
    return out


def movielens_100k_dir() -> Path:
    """Return the `recbole/dataset_example/ml-100k` folder of the installed recbole package (not imported).

    ValueError saying how to install it when recbole or its example files are missing.
    """
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(ML100K_HINT)
    for location in spec.submodule_search_locations:
        folder = Path(location) / "dataset_example" / "ml-100k"
        if (folder / "ml-100k.inter").is_file() and (folder / "ml-100k.item").is_file():
            return folder
    raise ValueError(f"recbole is installed but has no dataset_example/ml-100k files; {ML100K_HINT}")


def load_movielens_100k() -> tuple[list[Interaction], dict[str, Item]]:
    """Return MovieLens-100k's interactions (100,000) and item table (1,682) from recbole's example files."""
    folder = movielens_100k_dir()
    # RecBole's conversion left item 1412's year as 'V' (its title ends "(1995)"): read it as unknown.
    return read_interactions(folder / "ml-100k.inter"), read_items(folder / "ml-100k.item", lenient_years=True)


def user_sequences(interactions: Iterable[Interaction], items: dict[str, Item] | None = None, *,
                   min_interactions: int = 3, min_rating: float | None = None) -> dict[str, list[str]]:
    """Return each user's items in chronological order, by user in order of first appearance.

    The sort is stable (equal timestamps keep file order); a repeated (user, item) keeps its earliest
    occurrence. With `min_rating`, interactions rated below it are dropped first (then every interaction
    needs a rating). Users left with fewer than `min_interactions` items are dropped. With `items`, an
    interaction naming an item missing from the table raises ValueError.
    """
    interactions = list(interactions)
    if items is not None:
        missing = [event.item for event in interactions if event.item not in items]
        if missing:
            raise ValueError(f"{len(missing)} interactions name items missing from the item table, "
                             f"e.g. {missing[0]!r}")
    if min_rating is not None:
        unrated = next((event for event in interactions if event.rating is None), None)
        if unrated is not None:
            raise ValueError(f"min_rating={min_rating} but the interaction of user {unrated.user!r} "
                             f"with item {unrated.item!r} has no rating")
        interactions = [event for event in interactions if event.rating >= min_rating]  # type: ignore[operator]
    by_user: dict[str, list[Interaction]] = {}
    for event in interactions:
        by_user.setdefault(event.user, []).append(event)
    out: dict[str, list[str]] = {}
    for user, events in by_user.items():
        events.sort(key=lambda event: event.timestamp)
        sequence = list(dict.fromkeys(event.item for event in events))
        if len(sequence) >= min_interactions:
            out[user] = sequence
    return out


@dataclass
class Split:
    """A chronological leave-last-out split of users' sequences.

    Attributes:
        train: each user's sequence without its last two items.
        valid: user -> (history: the sequence without its last two items, at most max_history of the
            most recent; target: the second-to-last item).
        test: user -> (history: the sequence without its last item, capped likewise; target: the last item).
    """

    train: dict[str, list[str]]
    valid: dict[str, tuple[list[str], str]]
    test: dict[str, tuple[list[str], str]]


def leave_last_out(sequences: dict[str, list[str]], *, max_history: int) -> Split:
    """Return the leave-last-out split (RecBole's `LS` with `valid_and_test`) of chronological sequences.

    Evaluation histories keep their `max_history` most recent items; train sequences are not capped.
    ValueError when a user has fewer than 3 items or max_history < 1.
    """
    if max_history < 1:
        raise ValueError(f"max_history must be at least 1, got {max_history}")
    train: dict[str, list[str]] = {}
    valid: dict[str, tuple[list[str], str]] = {}
    test: dict[str, tuple[list[str], str]] = {}
    for user, sequence in sequences.items():
        if len(sequence) < 3:
            raise ValueError(f"user {user!r} has {len(sequence)} items; leave-last-out needs at least 3 "
                             "(user_sequences(min_interactions=3) drops such users)")
        train[user] = list(sequence[:-2])
        valid[user] = (list(sequence[:-2][-max_history:]), sequence[-2])
        test[user] = (list(sequence[:-1][-max_history:]), sequence[-1])
    return Split(train, valid, test)


def item_popularity(train: dict[str, list[str]]) -> dict[str, int]:
    """Return how many times each item occurs in the training sequences (items never seen are absent)."""
    return dict(Counter(item for sequence in train.values() for item in sequence))
