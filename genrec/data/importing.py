"""Datasets from the files people have: interactions as CSV/TSV (user, item, time, string ids) and item
metadata (CSV/TSV or JSON lines), written in genrec's layout (see :mod:`genrec.data.format`).

Each user's interactions are sorted by time (ties keep file order); ``kcore`` then drops, until none is
left, users and items with fewer interactions; users and items are numbered 1.. by first appearance.
The original ids are kept: each item's as its ``raw_id`` (what ``genrec recommend`` reads and
prints), each user's in ``users.tsv``. Problems name the file and line.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from genrec.errors import DataError

CATEGORY_SEPARATOR = "|"  # a CSV categories cell holds several names: "Skin|Face"


@dataclass(frozen=True)
class Imported:
    directory: Path
    users: int
    items: int
    interactions: int
    dropped: int  # interactions removed by the k-core filter


def _rows(path: Path, separator: str | None) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and (line number, cells) of a CSV/TSV file; the separator is guessed unless given."""
    if not path.is_file():
        raise DataError(path, "no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(path, f"not UTF-8 text ({error.reason})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(path, "empty, or no header line", 1)
    separator = separator or ("\t" if "\t" in lines[0] else ",")
    reader = csv.reader(lines, delimiter=separator)
    header = [name.strip() for name in next(reader)]
    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise DataError(path, f"{len(cells)} fields where the header has {len(header)}", number)
        rows.append((number, [cell.strip() for cell in cells]))
    return header, rows


def _column(path: Path, header: list[str], name: str) -> int:
    if name not in header:
        raise DataError(path, f"no column {name!r} (the header has {', '.join(header)})", 1)
    return header.index(name)


def _time(path: Path, value: str, number: int) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise DataError(path, f"time {value!r} is neither a number nor an ISO 8601 date", number) from None


def read_interactions(
    path: Path, user: str, item: str, time: str | None, separator: str | None
) -> dict[str, list[tuple[float, int, str]]]:
    """User -> [(time, line, item)], in file order."""
    header, rows = _rows(path, separator)
    columns = [_column(path, header, name) for name in (user, item)]
    time_column = _column(path, header, time) if time else None
    by_user: dict[str, list[tuple[float, int, str]]] = {}
    for number, cells in rows:
        user_id, item_id = cells[columns[0]], cells[columns[1]]
        if not user_id or not item_id:
            raise DataError(path, f"empty {user if not user_id else item!r}", number)
        when = _time(path, cells[time_column], number) if time_column is not None else float(number)
        by_user.setdefault(user_id, []).append((when, number, item_id))
    if not by_user:
        raise DataError(path, "no interactions")
    return by_user


def read_metadata(path: Path, item: str, separator: str | None) -> dict[str, dict[str, Any]]:
    """Item id -> its fields, from JSON lines (``.jsonl``/``.json``) or CSV/TSV."""
    records: dict[str, dict[str, Any]] = {}
    if path.suffix in (".jsonl", ".json"):
        from genrec.recommender import read_jsonl

        numbered = [(n, r) for n, r in enumerate(read_jsonl(path), start=1)]
    else:
        header, rows = _rows(path, separator)
        _column(path, header, item)
        numbered = [(n, dict(zip(header, cells, strict=True))) for n, cells in rows]
    for number, record in numbered:
        key = record.get(item)
        if key in (None, ""):
            raise DataError(path, f"no {item!r}", number)
        if str(key) in records:
            raise DataError(path, f"item {key!r} appears twice", number)
        fields = {k: v for k, v in record.items() if k != item and v not in ("", None)}
        if isinstance(fields.get("categories"), str):
            fields["categories"] = [c.strip() for c in fields["categories"].split(CATEGORY_SEPARATOR) if c.strip()]
        records[str(key)] = fields
    return records


def k_core(sequences: dict[str, list[str]], k: int) -> dict[str, list[str]]:
    """Drop users and items with fewer than ``k`` interactions until every one left has ``k``."""
    while True:
        counts = Counter(item for items in sequences.values() for item in items)
        kept = {u: [i for i in items if counts[i] >= k] for u, items in sequences.items()}
        kept = {u: items for u, items in kept.items() if len(items) >= k}
        if kept == sequences:
            return kept
        sequences = kept


def import_dataset(
    interactions: Path,
    out: Path,
    items: Path | None = None,
    user: str = "user",
    item: str = "item",
    time: str | None = "timestamp",
    kcore: int = 0,
    separator: str | None = None,
) -> Imported:
    """Read, sort, filter, renumber and write a dataset directory; see the module docstring."""
    from genrec.data.format import write_dataset

    by_user = read_interactions(interactions, user, item, time, separator)
    sequences = {u: [i for _, _, i in sorted(events)] for u, events in by_user.items()}
    total = sum(len(s) for s in sequences.values())
    if kcore > 1:
        sequences = k_core(sequences, kcore)
    if not sequences:
        raise DataError(interactions, f"no user is left after the {kcore}-core filter")
    metadata = read_metadata(items, item, separator) if items is not None else {}
    numbers: dict[str, int] = {}
    for events in sequences.values():
        for raw in events:
            numbers.setdefault(raw, len(numbers) + 1)
    records = [{"raw_id": raw, **metadata.get(raw, {})} for raw in numbers]
    arrays = [np.asarray([numbers[raw] for raw in events], dtype=np.int64) for events in sequences.values()]
    lines = ["user_id\traw_id"] + [f"{n}\t{raw}" for n, raw in enumerate(sequences, start=1)]
    kept = sum(len(s) for s in sequences.values())
    record = {"source": str(interactions), "users": len(sequences), "items": len(numbers), "interactions": kept,
              "kcore": kcore, "dropped": total - kept}  # fmt: skip
    extra = {"users.tsv": "\n".join(lines) + "\n", "import.json": json.dumps(record, indent=2) + "\n"}
    write_dataset(out, arrays, records, extra)
    return Imported(out, len(sequences), len(numbers), kept, total - kept)
