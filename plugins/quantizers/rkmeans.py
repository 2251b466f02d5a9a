"""Residual k-means: k-means on the embeddings, then on what each level's centroid leaves unexplained."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genrec.errors import require_at_least
from genrec.saved import load_tensors, save_tensors
from genrec_plugins.quantizers._kmeans import as_matrix, kmeans, nearest


class ResidualKMeans:
    """``levels`` codebooks; level l clusters the residuals left after levels 1..l-1.

    A codebook larger than the number of distinct residuals shrinks to those residuals, so
    ``codebook_sizes`` (known after ``fit``) may be smaller than ``codebook_size``.

    Parameters
    ----------
    levels : int
        Codebooks, so the code's length before the core's disambiguating level.
    codebook_size : int
        Codes per codebook (at most).
    seed : int
        Seed of the k-means++ initialisation.
    n_init : int
        K-means restarts per level; the lowest inertia wins.
    max_iter : int
        Lloyd iterations per k-means.
    """

    def __init__(
        self,
        levels: int = 3,
        codebook_size: int = 256,
        seed: int = 0,
        n_init: int = 1,
        max_iter: int = 50,
    ):
        require_at_least("rkmeans", 1, levels=levels, codebook_size=codebook_size, n_init=n_init, max_iter=max_iter)
        require_at_least("rkmeans", 0, seed=seed)
        self.levels = levels
        self.codebook_size = codebook_size
        self.seed = seed
        self.n_init = n_init
        self.max_iter = max_iter
        self.codebooks: list[np.ndarray] = []

    def fit(self, embeddings: np.ndarray) -> ResidualKMeans:
        residual = as_matrix(embeddings)
        self.codebooks = []
        for level in range(self.levels):
            centroids, labels = kmeans(
                residual, self.codebook_size, seed=[self.seed, level], n_init=self.n_init, max_iter=self.max_iter
            )
            self.codebooks.append(centroids)
            residual = residual - centroids[labels]
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        residual = as_matrix(embeddings)
        codes = np.empty((len(residual), self.levels), dtype=np.int64)
        for level, centroids in enumerate(self._fitted()):
            codes[:, level] = nearest(residual, centroids)[0]
            residual = residual - centroids[codes[:, level]]
        return codes

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        """The sum of each code's centroids over its levels (the first ``codes.shape[1]`` levels)."""
        codebooks = self._fitted()
        return sum(codebooks[level][codes[:, level]] for level in range(codes.shape[1]))

    def save(self, directory: Path) -> None:
        save_tensors(directory / "codebooks.safetensors", {str(i): c for i, c in enumerate(self._fitted())})

    def load(self, directory: Path) -> ResidualKMeans:
        codebooks = load_tensors(directory / "codebooks.safetensors")
        self.codebooks = [codebooks[str(i)] for i in range(len(codebooks))]
        return self

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        if not self.codebooks:
            return (self.codebook_size,) * self.levels
        return tuple(len(c) for c in self.codebooks)

    def _fitted(self) -> list[np.ndarray]:
        if not self.codebooks:
            raise RuntimeError("call fit before encode")
        return self.codebooks
