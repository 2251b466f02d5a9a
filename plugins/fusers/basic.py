"""The simple fusers: one modality as it is, or both concatenated.

Every fuser returns modality ``"fused"`` and keeps each input it was given as a view named after its
modality, so later stages (and the semantic-domination report) can compare the fused space to its sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np

from genrec.contracts import MODALITIES, ItemEmbeddings, RecData
from genrec.errors import ConfigError
from genrec.saved import load_json, save_json


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _inputs(fuser: object, data: RecData, embeddings: Mapping[str, ItemEmbeddings]) -> dict[str, np.ndarray]:
    """The float32 vectors of every modality given, after checking the required ones are there."""
    name = type(fuser).__name__
    missing = [m for m in fuser.requires if m not in embeddings]  # type: ignore[attr-defined]
    if missing:
        raise ConfigError(f"{name} needs {' and '.join(missing)} embeddings: configure an embedder of that modality")
    vectors = {}
    for modality in MODALITIES:
        if modality not in embeddings:
            continue
        array = np.asarray(embeddings[modality].vectors, dtype=np.float32)
        if len(array) != data.n_items:
            raise ConfigError(f"{name}: {modality} embeddings have {len(array)} rows for {data.n_items} items")
        vectors[modality] = array
    return vectors


class SemanticFuser:
    """The semantic embedding, unchanged: codes from item text alone (as in TIGER)."""

    requires: ClassVar[tuple[str, ...]] = ("semantic",)
    seeded: ClassVar[bool] = False  # no randomness

    def fuse(self, data: RecData, embeddings: Mapping[str, ItemEmbeddings]) -> ItemEmbeddings:
        views = _inputs(self, data, embeddings)
        return ItemEmbeddings(views["semantic"], modality="fused", views=views)

    def fuse_new(self, embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(embeddings["semantic"], dtype=np.float32)


class CollaborativeFuser:
    """The collaborative embedding, unchanged: codes from interactions alone."""

    requires: ClassVar[tuple[str, ...]] = ("collaborative",)
    seeded: ClassVar[bool] = False  # no randomness

    def fuse(self, data: RecData, embeddings: Mapping[str, ItemEmbeddings]) -> ItemEmbeddings:
        views = _inputs(self, data, embeddings)
        return ItemEmbeddings(views["collaborative"], modality="fused", views=views)


class ConcatFuser:
    """Each modality L2-normalised and scaled by its weight, then concatenated (semantic first).

    The naive fusion baseline: without alignment the semantic part tends to decide the clusters.

    Parameters
    ----------
    semantic_weight, collaborative_weight : float
        Scale of each L2-normalised part before the concatenation (at least 0, not both 0).
    """

    requires: ClassVar[tuple[str, ...]] = ("semantic", "collaborative")
    seeded: ClassVar[bool] = False  # no randomness

    def __init__(self, semantic_weight: float = 1.0, collaborative_weight: float = 1.0):
        for option, weight in (("semantic_weight", semantic_weight), ("collaborative_weight", collaborative_weight)):
            if not np.isfinite(weight) or weight < 0:
                raise ConfigError(f"concat fuser option {option!r}: must be a number >= 0, got {weight}")
        if semantic_weight == 0 and collaborative_weight == 0:
            raise ConfigError("concat fuser options 'semantic_weight' and 'collaborative_weight' are both 0")
        self.semantic_weight = semantic_weight
        self.collaborative_weight = collaborative_weight
        self.collaborative_dim_ = 0  # known after fuse; what a new item's all-zero collaborative part spans

    def fuse(self, data: RecData, embeddings: Mapping[str, ItemEmbeddings]) -> ItemEmbeddings:
        views = _inputs(self, data, embeddings)
        fused = np.concatenate(
            [
                self.semantic_weight * l2_normalize(views["semantic"]),
                self.collaborative_weight * l2_normalize(views["collaborative"]),
            ],
            axis=1,
        ).astype(np.float32)
        self.collaborative_dim_ = views["collaborative"].shape[1]
        return ItemEmbeddings(fused, modality="fused", views=views)

    def fuse_new(self, embeddings: Mapping[str, np.ndarray]) -> np.ndarray:
        """A new item has no interactions: its collaborative part is zero, its text decides its code."""
        semantic = self.semantic_weight * l2_normalize(np.asarray(embeddings["semantic"], dtype=np.float32))
        return np.concatenate([semantic, np.zeros((len(semantic), self.collaborative_dim_), np.float32)], axis=1)

    def save(self, directory: Path) -> None:
        save_json(directory / "concat.json", {"collaborative_dim": self.collaborative_dim_})

    def load(self, directory: Path) -> ConcatFuser:
        self.collaborative_dim_ = int(load_json(directory / "concat.json")["collaborative_dim"])
        return self
