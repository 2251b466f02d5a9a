"""``precomputed`` / ``precomputed-collaborative``: item vectors read from a ``.npy`` file.

The file holds one row per item, row ``i`` for item ``i + 1`` (shape ``(n_items, d)``). Files written
with a padding row for item 0 (shape ``(n_items + 1, d)``, row 0 all zeros) are accepted too, and the
padding row is dropped. The modality is fixed per registered name, because a pipeline may read it
from the class before building the component.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from genrec.contracts import ItemEmbeddings, RecData
from genrec.errors import ConfigError, DataError


class PrecomputedEmbedder:
    """Semantic item vectors from a ``.npy`` file (loaded with ``allow_pickle=False``).

    Parameters
    ----------
    path : str
        The ``.npy`` file: numbers of shape ``(n_items, d)``, row ``i`` for item ``i + 1``; a file with one
        more row is accepted when row 0 is all zeros (padding), and that row is dropped.
    """

    modality: ClassVar[str] = "semantic"
    seeded: ClassVar[bool] = False  # the same vectors whatever the run's seed: one artifact for all seeds

    def __init__(self, path: str):
        if not str(path).strip():
            raise ConfigError("precomputed embedder option 'path': must name a .npy file")
        self.path = str(path)

    def embed(self, data: RecData) -> ItemEmbeddings:
        return ItemEmbeddings(load_item_vectors(self.path, data.n_items), modality=self.modality)


class PrecomputedCollaborativeEmbedder(PrecomputedEmbedder):
    """Collaborative item vectors (for example ID embeddings trained elsewhere) from a ``.npy`` file."""

    modality: ClassVar[str] = "collaborative"


def load_item_vectors(path: str | Path, n_items: int) -> np.ndarray:
    """A float32 ``(n_items, d)`` array from ``path``; every problem is a DataError naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(path, "no such file (option 'path' of the precomputed embedder)")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # a damaged header can raise SyntaxError, TokenError, ValueError, ...
        raise DataError(path, f"not a readable .npy array of numbers: {error}") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise DataError(path, "expected a single .npy array, not an .npz archive")
    if array.ndim != 2:
        raise DataError(path, f"expected a 2-D array (n_items, dim), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(path, f"expected numbers, got dtype {array.dtype}")
    if len(array) == n_items + 1:
        if np.any(array[0]):
            raise DataError(
                path,
                f"has {n_items + 1} rows for {n_items} items, but row 0 is not an all-zero padding row",
            )
        array = array[1:]
    elif len(array) != n_items:
        raise DataError(
            path,
            f"has {len(array)} rows; expected one per item ({n_items}), or {n_items + 1} with a zero padding row 0",
        )
    vectors = array.astype(np.float32)
    if not np.isfinite(vectors).all():
        raise DataError(path, "contains NaN or infinite values")
    return vectors
