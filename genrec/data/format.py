"""The dataset format: a directory with ``interactions.txt`` and ``items.jsonl``.

* ``interactions.txt``: one line per user, ``user_id item_id item_id ...`` in chronological order.
* ``items.jsonl``: one JSON object per item with an integer ``item_id``; ids are 1..n_items. Optional
  fields: ``title``, ``brand``, ``description``, ``idgenrec_text`` (string or null), ``categories``
  (list of strings). Other fields are kept as they are.

Every problem is reported as a :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from genrec.data.dataset import Dataset
from genrec.errors import DataError

INTERACTIONS = "interactions.txt"
ITEMS = "items.jsonl"
TEXT_FIELDS = ("title", "brand", "description", "idgenrec_text")


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file; a decoding error names the line it is on."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(path, f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(path, f"not UTF-8 text ({error.reason})", line) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def json_object(path: Path, line: str, number: int) -> dict[str, Any]:
    """One JSON-lines record, which must be an object; errors name the file and line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(path, f"broken JSON: {error.msg} (column {error.colno})", number) from None
    if not isinstance(record, dict):
        raise DataError(path, f"expected a JSON object, got {type(record).__name__}", number)
    return record


def read_items(path: Path) -> list[dict[str, Any]]:
    by_id: dict[int, dict[str, Any]] = {}
    lines_of: dict[int, int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        record = json_object(path, line, number)
        item_id = record.get("item_id")
        if isinstance(item_id, bool) or not isinstance(item_id, int):
            raise DataError(path, f"'item_id' must be an integer, got {item_id!r}", number)
        if item_id < 1:
            raise DataError(path, f"'item_id' must be >= 1, got {item_id}", number)
        if item_id in by_id:
            raise DataError(path, f"duplicate item_id {item_id}", number)
        for name in TEXT_FIELDS:
            value = record.get(name)
            if value is not None and not isinstance(value, str):
                kind = type(value).__name__
                raise DataError(path, f"{name!r} must be a string or null, got {kind}", number)
        categories = record.get("categories")
        if categories is not None and (
            not isinstance(categories, list) or not all(isinstance(c, str) for c in categories)
        ):
            raise DataError(path, "'categories' must be a list of strings or null", number)
        by_id[item_id] = record
        lines_of[item_id] = number
    if not by_id:
        raise DataError(path, "no items")
    n_items = max(by_id)
    if len(by_id) != n_items:
        missing = next(i for i in range(1, n_items + 1) if i not in by_id)
        raise DataError(
            path,
            f"item ids must be contiguous 1..{len(by_id)}: {missing} is missing but {n_items} is used",
            lines_of[n_items],
        )
    return [by_id[i] for i in range(1, n_items + 1)]


def read_interactions(path: Path, n_items: int) -> list[np.ndarray]:
    sequences: list[np.ndarray] = []
    seen_users: dict[int, int] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        # Plain ASCII decimals only: int() would also take "1_000", "+5" or non-ASCII digits.
        bad = next((f for f in fields if not (f.isascii() and f.lstrip("-").isdigit())), None)
        if bad is not None:
            raise DataError(path, f"ids must be integers, got {bad!r}", number)
        ids = [int(field) for field in fields]
        user, items = ids[0], ids[1:]
        if user < 1:
            raise DataError(path, f"user id must be >= 1, got {user}", number)
        if user in seen_users:
            raise DataError(path, f"user {user} already appears on line {seen_users[user]}", number)
        seen_users[user] = number
        if not items:
            raise DataError(path, f"user {user} has an empty history", number)
        bad_items = [i for i in items if i < 1 or i > n_items]
        if bad_items:
            known = f"items.jsonl has ids 1..{n_items}"
            raise DataError(path, f"user {user}: unknown item id {bad_items[0]} ({known})", number)
        sequences.append(np.asarray(items, dtype=np.int64))
    if not sequences:
        raise DataError(path, "no users")
    return sequences


def read_dataset(directory: str | Path, name: str | None = None) -> Dataset:
    """Read and validate a dataset directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(directory, "not a dataset directory (expected interactions.txt and items.jsonl)")
    for required in (ITEMS, INTERACTIONS):
        if not (directory / required).is_file():
            raise DataError(directory / required, "missing")
    items = read_items(directory / ITEMS)
    sequences = read_interactions(directory / INTERACTIONS, len(items))
    return Dataset(name or directory.name, sequences, items, path=directory)


def write_dataset(
    directory: str | Path,
    sequences: list[np.ndarray],
    items: list[dict[str, Any]],
    extra: dict[str, str] | None = None,
) -> Path:
    """Write a dataset in the documented layout, atomically (a temporary directory, then a rename);
    ``extra`` adds text files by name."""
    from genrec.artifacts import atomic_directory

    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        with (tmp / INTERACTIONS).open("w", encoding="utf-8") as out:
            for user, sequence in enumerate(sequences, start=1):
                out.write(" ".join(map(str, [user, *map(int, sequence)])) + "\n")
        with (tmp / ITEMS).open("w", encoding="utf-8") as out:
            for item_id, record in enumerate(items, start=1):
                out.write(json.dumps({**record, "item_id": item_id}, ensure_ascii=False) + "\n")
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
    return directory
