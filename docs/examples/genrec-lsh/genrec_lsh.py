"""A genrec quantizer plugin: each level is a few random-hyperplane sign bits, read as one integer."""

import numpy as np

import genrec


class LSHQuantizer:
    """Random-hyperplane sign bits: each level is ``bits`` signs, read as one integer.

    Parameters
    ----------
    levels : int
        Code length: one integer per level.
    bits : int
        Sign bits per level, so ``2 ** bits`` codes in each.
    seed : int
        Seed of the random hyperplanes.
    """

    def __init__(self, levels: int = 3, bits: int = 8, seed: int = 0):
        self.levels, self.bits, self.seed = levels, bits, seed
        self.planes_: np.ndarray | None = None
        self.mean_: np.ndarray | None = None

    def fit(self, embeddings: np.ndarray) -> "LSHQuantizer":
        rng = np.random.default_rng(self.seed)
        self.mean_ = embeddings.mean(axis=0)
        self.planes_ = rng.normal(size=(embeddings.shape[1], self.levels * self.bits))
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        signs = ((embeddings - self.mean_) @ self.planes_ > 0).reshape(len(embeddings), self.levels, self.bits)
        weights = 1 << np.arange(self.bits)
        return (signs * weights).sum(axis=2).astype(np.int64)

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (2**self.bits,) * self.levels


@genrec.hookimpl
def genrec_register(registry):
    registry.add("quantizer", "lsh", LSHQuantizer, description="random-hyperplane sign bits per level")
