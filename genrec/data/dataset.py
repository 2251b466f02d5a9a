"""The in-memory dataset: user sequences of 1-based item ids, and one metadata record per item."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Dataset:
    name: str
    sequences: list[np.ndarray]  # one int64 array per user, chronological
    items: list[dict[str, Any]]  # items[i] describes item id i + 1
    path: Path | None = None
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            digest = hashlib.sha256()
            for sequence in self.sequences:
                digest.update(np.asarray(sequence, dtype=np.int64).tobytes() + b"|")
            digest.update(str(len(self.items)).encode())
            self.fingerprint = digest.hexdigest()[:16]

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def stats(self) -> dict[str, Any]:
        lengths = np.array([len(s) for s in self.sequences]) if self.sequences else np.zeros(1)
        density = self.n_interactions / max(1, self.n_users * self.n_items)
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "avg_length": round(float(lengths.mean()), 2),
            "min_length": int(lengths.min()),
            "max_length": int(lengths.max()),
            "density": round(density, 6),
        }
