"""Prepare ``beauty``, ``sports`` and ``toys`` from the public Amazon 2014 raw files.

Each category is published as ``reviews_<Category>_5.json.gz`` (5-core reviews, one JSON object per
line) and ``meta_<Category>.json.gz`` (item metadata, one Python-literal dict per line, parsed with
:func:`ast.literal_eval`, never ``eval``: a line that is not a plain literal is rejected as malformed).

Downloads go to a cache directory (default ``<cache_dir()>/raw``), through a ``.part`` file renamed
into place once complete, so an interrupted download is never mistaken for a finished one; a later
attempt resumes the ``.part`` file when the server honours byte ranges and starts over otherwise.

Checksums, honestly: :data:`KNOWN_SHA256` holds the sha256 of each raw file where it is known. The
project was built offline and could not learn the upstream checksums, so the table starts empty and
files are checked *trust on first use*: the sha256 of the first download is recorded in
``<file>.sha256`` beside it, and every later use verifies the cached file against that record. This
detects a cache file corrupted or replaced after the first download; it cannot prove that the first
download itself was the genuine upstream file. Filling in the table closes that gap.

Preparation keeps the 5-core reviews, sorts each user's reviews by ``unixReviewTime`` (stable, so ties
keep file order), numbers users by first appearance in the review file and items by first appearance
in the users' time-ordered sequences (both 1-based), and joins the item text from the metadata (title,
brand, categories with the top-level category dropped, description). The result is the documented
dataset layout (:mod:`genrec.data.format`) plus ``users.tsv`` and ``stats.json``, written atomically.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import os
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from genrec.data.format import json_object, write_dataset
from genrec.errors import ConfigError, DataError

# The 2014 release, per category, as published by UCSD; SNAP_URL serves the same files (``--base-url``).
BASE_URL = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon/productGraph/categoryFiles/"
SNAP_URL = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
CATEGORIES = {"beauty": "Beauty", "sports": "Sports_and_Outdoors", "toys": "Toys_and_Games"}
# sha256 of raw files, by file name. Empty: see the module docstring (trust on first use meanwhile).
KNOWN_SHA256: dict[str, str] = {}

Log = Callable[[str], None]
_CHUNK = 1 << 20


def raw_files(name: str) -> tuple[str, str]:
    """The review and metadata file names of dataset ``name``."""
    category = _category(name)
    return f"reviews_{category}_5.json.gz", f"meta_{category}.json.gz"


def _category(name: str) -> str:
    if name not in CATEGORIES:
        raise ConfigError(f"unknown Amazon dataset {name!r}; choose one of {', '.join(CATEGORIES)}")
    return CATEGORIES[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _expected_sha256(path: Path) -> str | None:
    """The known checksum of ``path``, else the one recorded at its first download, else None."""
    if path.name in KNOWN_SHA256:
        return KNOWN_SHA256[path.name]
    record = _record_path(path)
    if record.is_file():
        text = record.read_text(encoding="utf-8").split()
        return text[0] if text else None
    return None


def _verify(path: Path, log: Log) -> str:
    """Check ``path`` against its expected checksum; record it on first use. Returns the sha256."""
    from genrec.artifacts import atomic_write_text

    actual = _sha256(path)
    expected = _expected_sha256(path)
    if expected is None:
        atomic_write_text(_record_path(path), f"{actual}  {path.name}\n")
        log(f"recorded sha256 of {path.name} (first use): {actual}")
    elif actual != expected:
        raise DataError(
            path,
            f"checksum mismatch (sha256 {actual}, expected {expected}); the file is corrupted or was "
            "replaced: delete it to download it again",
        )
    return actual


def _download(url: str, path: Path, log: Log) -> None:
    """Fetch ``url`` into ``path`` through ``<path>.part``, resuming a partial download if possible."""
    part = path.with_name(path.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    log(f"downloading {url}" + (f" (resuming at byte {offset})" if offset else ""))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            # 206: the server sent the rest; anything else is the whole file, so start over.
            mode = "ab" if offset and response.status == 206 else "wb"
            with part.open(mode) as out:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the part file already holds everything (or more): restart
            part.unlink()
            return _download(url, path, log)
        raise DataError(path, f"download from {url} failed: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise DataError(path, f"download from {url} failed: {reason} (a partial file is kept to resume)") from None
    os.replace(part, path)


def fetch(file_name: str, base_url: str = BASE_URL, cache_dir: Path | None = None, log: Log | None = None) -> Path:
    """The cached, checksum-verified raw file ``file_name``, downloaded first if not cached."""
    from filelock import FileLock

    from genrec.data.resolve import cache_dir as default_cache_dir

    log = log or (lambda message: None)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "raw"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    with FileLock(str(directory / f".{file_name}.lock")):  # one download per file at a time
        if not path.is_file():
            _download(base_url.rstrip("/") + "/" + file_name, path, log)
            try:
                _verify(path, log)
            except DataError:
                path.unlink()  # a fresh download that fails its known checksum is not kept
                raise
        else:
            _verify(path, log)
    return path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered non-blank text lines of a gzip file; unreadable content is a DataError naming the file."""
    number = 0
    try:
        with gzip.open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):  # decoded per line, so errors name the line
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise DataError(path, f"not UTF-8 text ({error.reason})", number) from None
                if line.strip():
                    yield number, line
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(path, f"not a readable gzip file: {error}", number + 1 if number else None) from None


def read_reviews(path: Path) -> list[tuple[str, str, int]]:
    """(reviewerID, asin, unixReviewTime) per review, in file order."""
    reviews: list[tuple[str, str, int]] = []
    for number, line in _lines(path):
        record = json_object(path, line, number)
        user, asin, time = record.get("reviewerID"), record.get("asin"), record.get("unixReviewTime")
        if not isinstance(user, str) or not user:
            raise DataError(path, f"'reviewerID' must be a non-empty string, got {user!r}", number)
        if not isinstance(asin, str) or not asin:
            raise DataError(path, f"'asin' must be a non-empty string, got {asin!r}", number)
        if isinstance(time, bool) or not isinstance(time, int):
            raise DataError(path, f"'unixReviewTime' must be an integer, got {time!r}", number)
        reviews.append((user, asin, time))
    if not reviews:
        raise DataError(path, "no reviews")
    return reviews


def _parse_literal(line: str) -> Any:
    """A Python-literal line (as published); JSON lines are accepted too. Never evaluates code."""
    try:
        return ast.literal_eval(line.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return json.loads(line)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("not a Python or JSON literal") from None


def _text(record: dict[str, Any], key: str, path: Path, number: int) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        value = " ".join(part.strip() for part in value)  # a few records split text into a list
    if not isinstance(value, str):
        raise DataError(path, f"{key!r} must be a string, got {type(value).__name__}", number)
    return value.strip() or None


def _categories(value: Any, path: Path, number: int) -> list[str]:
    """Category paths with their top-level category dropped, flattened, duplicates removed."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(p, list) and all(isinstance(c, str) for c in p) for p in value
    ):
        raise DataError(path, "'categories' must be a list of lists of strings", number)
    names: dict[str, None] = {}
    for category_path in value:
        for name in category_path[1:]:
            if name.strip():
                names.setdefault(name.strip())
    return list(names)


def read_metadata(path: Path, asins: set[str]) -> dict[str, dict[str, Any]]:
    """Text fields of the items in ``asins``; every line is checked, the first record of an asin wins."""
    items: dict[str, dict[str, Any]] = {}
    for number, line in _lines(path):
        try:
            record = _parse_literal(line)
        except ValueError:
            raise DataError(path, "malformed line: not a Python dict literal", number) from None
        if not isinstance(record, dict):
            raise DataError(path, f"expected a dict, got {type(record).__name__}", number)
        asin = record.get("asin")
        if not isinstance(asin, str) or not asin:
            raise DataError(path, f"'asin' must be a non-empty string, got {asin!r}", number)
        if asin not in asins or asin in items:
            continue
        items[asin] = {
            "title": _text(record, "title", path, number),
            "brand": _text(record, "brand", path, number),
            "categories": _categories(record.get("categories"), path, number),
            "description": _text(record, "description", path, number),
        }
    return items


def build_sequences(reviews: list[tuple[str, str, int]]) -> tuple[list[str], list[str], list[np.ndarray]]:
    """Users (reviewerIDs), items (asins) and 1-based item sequences, each user's sorted by time."""
    by_user: dict[str, list[tuple[int, str]]] = {}
    for user, asin, time in reviews:  # dict order: users by first appearance
        by_user.setdefault(user, []).append((time, asin))
    item_ids: dict[str, int] = {}
    sequences: list[np.ndarray] = []
    for events in by_user.values():
        events.sort(key=lambda event: event[0])  # stable: equal times keep file order
        sequences.append(
            np.asarray([item_ids.setdefault(asin, len(item_ids) + 1) for _, asin in events], dtype=np.int64)
        )
    return list(by_user), list(item_ids), sequences


def _no_metadata() -> dict[str, Any]:
    return {"title": None, "brand": None, "categories": [], "description": None}


def prepare_amazon(
    name: str,
    target: Path,
    *,
    base_url: str = BASE_URL,
    cache_dir: Path | None = None,
    log: Log | None = None,
) -> Path:
    """Download (or reuse) the raw files of ``name`` and write the prepared dataset to ``target``."""
    from genrec.artifacts import atomic_directory
    from genrec.data.dataset import Dataset

    log = log or (lambda message: None)
    target = Path(target)
    reviews_name, meta_name = raw_files(name)
    reviews_path = fetch(reviews_name, base_url, cache_dir, log)
    meta_path = fetch(meta_name, base_url, cache_dir, log)

    log(f"reading {reviews_path.name}")
    users, asins, sequences = build_sequences(read_reviews(reviews_path))
    log(f"reading {meta_path.name}")
    metadata = read_metadata(meta_path, set(asins))
    items = [
        {"item_id": i, "asin": asin, **(metadata.get(asin) or _no_metadata())} for i, asin in enumerate(asins, start=1)
    ]

    stats: dict[str, Any] = Dataset(name, sequences, items).stats()
    stats["items_without_metadata"] = sum(asin not in metadata for asin in asins)
    for field in ("title", "brand", "categories", "description"):
        stats[f"frac_{field}"] = round(sum(bool(item[field]) for item in items) / len(items), 4)
    stats["source"] = {
        "base_url": base_url,
        "sha256": {p.name: _expected_sha256(p) for p in (reviews_path, meta_path)},
    }

    with atomic_directory(target) as tmp:
        write_dataset(tmp, sequences, items)
        with (tmp / "users.tsv").open("w", encoding="utf-8") as out:
            out.write("user_id\treviewerID\n")
            out.writelines(f"{user_id}\t{user}\n" for user_id, user in enumerate(users, start=1))
        (tmp / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    counts = f"{stats['users']} users, {stats['items']} items, {stats['interactions']} interactions"
    log(f"prepared {name}: {counts}")
    return target


def prepare_dataset(name: str, root: Path | None = None, base_url: str | None = None, log: Log | None = None) -> Path:
    """Prepare ``name`` into ``root/<name>``; default root ``<cache_dir()>/data`` is where names resolve."""
    from genrec.data.resolve import cache_dir

    _category(name)
    directory = (Path(root) if root is not None else cache_dir() / "data") / name
    return prepare_amazon(name, directory, base_url=base_url or BASE_URL, log=log)
