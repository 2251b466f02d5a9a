"""Datasets by name: ``demo`` (generated), ``beauty``/``sports``/``toys`` (prepared), or a directory."""

from __future__ import annotations

import os
from pathlib import Path

from genrec.data.dataset import Dataset
from genrec.data.format import INTERACTIONS, ITEMS, read_dataset
from genrec.errors import DataError

AMAZON = ("beauty", "sports", "toys")
BUILTIN = ("demo", *AMAZON)


def cache_dir() -> Path:
    return Path(os.environ.get("GENREC_CACHE_DIR") or Path.home() / ".cache" / "genrec")


def resolve_dataset_dir(name: str) -> Path | None:
    """The directory holding dataset ``name``, or None for ``demo`` (generated in memory)."""
    candidate = Path(name).expanduser()
    if name not in BUILTIN or candidate.is_dir() and (candidate / INTERACTIONS).exists():
        if candidate.is_dir():
            return candidate
        raise DataError(candidate, f"no such dataset: not a directory, and not one of {', '.join(BUILTIN)}")
    if name == "demo":
        return None
    roots = [Path(os.environ["GENREC_DATA_DIR"])] if os.environ.get("GENREC_DATA_DIR") else []
    roots.append(cache_dir() / "data")
    for root in roots:
        if (root / name / INTERACTIONS).is_file() and (root / name / ITEMS).is_file():
            return root / name
    searched = ", ".join(str(r / name) for r in roots)
    raise DataError(
        name,
        f"dataset not found (looked in {searched}); set GENREC_DATA_DIR to a directory holding {name}/ "
        f"or run `genrec data prepare {name}` to download and prepare it",
    )


def load_dataset(name: str) -> Dataset:
    directory = resolve_dataset_dir(name)
    if directory is None:
        from genrec.data.demo import generate_demo

        return generate_demo()
    return read_dataset(directory, name=name if name in BUILTIN else directory.name)
