"""Hierarchical k-means (the quantizer PRORec uses): every cluster is split again at the next level."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genrec.errors import require_at_least
from genrec.saved import load_tensors, save_tensors
from genrec_plugins.quantizers._kmeans import as_matrix, assign, kmeans


class HierarchicalKMeans:
    """Level 1 clusters all items into ``codebook_size`` clusters; each cluster is clustered again.

    A cluster with no more distinct items than ``codebook_size`` gives each distinct item its own code
    (so it uses fewer codes). The default 32 makes a tree of 32^3 leaves, room for the 10^4 to 10^5 items
    of the usual datasets; with 256, two levels would already hold one item per code.
    ``balanced`` splits every cluster into clusters of equal size (at most ceil(n / k) items each),
    which spreads items evenly over codes and so leaves few collisions. Balanced codes are assigned to
    the rows of one ``encode`` call together, so they depend on the batch (``encodes_jointly``).

    Parameters
    ----------
    levels : int
        Depth of the tree: the code's length before the core's disambiguating level.
    codebook_size : int
        Clusters per split, so the codes at each level.
    balanced : bool
        Split every cluster into equal parts (at most ``ceil(n / k)`` items each: items claim their
        nearest centroid with room, closest pairs first); few collisions.
    seed : int
        Seed of the k-means++ initialisation.
    n_init : int
        K-means restarts per split; the lowest inertia wins.
    max_iter : int
        Lloyd iterations per k-means.
    """

    def __init__(
        self,
        levels: int = 3,
        codebook_size: int = 32,
        balanced: bool = False,
        seed: int = 0,
        n_init: int = 1,
        max_iter: int = 50,
    ):
        require_at_least("kmeans", 1, levels=levels, codebook_size=codebook_size, n_init=n_init, max_iter=max_iter)
        require_at_least("kmeans", 0, seed=seed)
        self.levels = levels
        self.codebook_size = codebook_size
        self.balanced = balanced
        self.encodes_jointly = balanced  # a balanced assignment shares each cluster's room among a batch's rows
        self.seed = seed
        self.n_init = n_init
        self.max_iter = max_iter
        # The centroids that split a cluster, keyed by the cluster's code prefix (() for the root).
        self.tree: dict[tuple[int, ...], np.ndarray] = {}

    def fit(self, embeddings: np.ndarray) -> HierarchicalKMeans:
        x = as_matrix(embeddings)
        self.tree = {}
        groups: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.arange(len(x)))]
        for level in range(self.levels):
            next_groups = []
            for index, (prefix, members) in enumerate(groups):
                centroids, labels = kmeans(
                    x[members],
                    self.codebook_size,
                    seed=[self.seed, level, index],
                    n_init=self.n_init,
                    max_iter=self.max_iter,
                    balanced=self.balanced,
                )
                self.tree[prefix] = centroids
                if level + 1 < self.levels:
                    next_groups.extend(_split(prefix, members, labels))
            groups = next_groups
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        if not self.tree:
            raise RuntimeError("call fit before encode")
        x = as_matrix(embeddings)
        codes = np.empty((len(x), self.levels), dtype=np.int64)
        groups: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.arange(len(x)))]
        for level in range(self.levels):
            next_groups = []
            for prefix, members in groups:
                # Items of a new set that land in a cluster fit() never split follow its first branch.
                centroids = self.tree.get(prefix)
                labels = (
                    np.zeros(len(members), dtype=np.int64)
                    if centroids is None
                    else assign(x[members], centroids, self.balanced)
                )
                codes[members, level] = labels
                if level + 1 < self.levels:
                    next_groups.extend(_split(prefix, members, labels))
            groups = next_groups
        return codes

    def save(self, directory: Path) -> None:
        """Each split's centroids, named by its cluster's code prefix (``root``, ``3``, ``3.1``, ...)."""
        save_tensors(directory / "tree.safetensors", {_name(prefix): c for prefix, c in self.tree.items()})

    def load(self, directory: Path) -> HierarchicalKMeans:
        tree = load_tensors(directory / "tree.safetensors")
        self.tree = {() if name == "root" else tuple(int(p) for p in name.split(".")): c for name, c in tree.items()}
        return self

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        if not self.tree:
            return (self.codebook_size,) * self.levels
        sizes = [1] * self.levels
        for prefix, centroids in self.tree.items():
            sizes[len(prefix)] = max(sizes[len(prefix)], len(centroids))
        return tuple(sizes)


def _name(prefix: tuple[int, ...]) -> str:
    return ".".join(map(str, prefix)) or "root"


def _split(
    prefix: tuple[int, ...], members: np.ndarray, labels: np.ndarray
) -> list[tuple[tuple[int, ...], np.ndarray]]:
    order = np.argsort(labels, kind="stable")
    values, starts = np.unique(labels[order], return_index=True)
    return [
        ((*prefix, int(value)), members[part]) for value, part in zip(values, np.split(order, starts[1:]), strict=True)
    ]
