"""``tfidf``: TF-IDF over each item's text, reduced with a truncated SVD. Needs no model files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from genrec.contracts import ItemEmbeddings, RecData
from genrec.errors import ConfigError
from genrec.saved import load_json, load_tensors, save_json, save_tensors
from genrec_plugins.embedders.item_text import ItemTemplate, item_texts


class TfidfEmbedder:
    """Word uni- and bigram TF-IDF -> ``dim`` SVD components (fewer when the data has fewer), L2-normalised.

    Parameters
    ----------
    dim : int
        Components of the truncated SVD (fewer when the data has fewer items or terms).
    template : str
        The item text: a ``str.format``-style template over the item's fields, where a missing or empty
        field drops the text before it too; ``auto`` is ``{name}. Brand: {brand}. Categories: {categories}.``
    seed : int
        Seed of the truncated SVD.
    """

    modality: ClassVar[str] = "semantic"
    seeded: ClassVar[bool] = False  # the same vectors whatever the run's seed: one artifact for all seeds

    def __init__(self, dim: int = 128, template: str = "auto", seed: int = 0):
        if dim < 1:
            raise ConfigError(f"tfidf embedder option 'dim': must be at least 1, got {dim}")
        ItemTemplate(template)  # fail on a bad template now, before any work
        self.dim = dim
        self.template = template
        self.seed = seed
        # Fitted: the vocabulary, its idf weights and the SVD's components (None when no SVD was needed).
        self.vocabulary_: dict[str, int] = {}
        self.idf: np.ndarray | None = None
        self.components: np.ndarray | None = None

    def embed(self, data: RecData) -> ItemEmbeddings:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = item_texts(data.dataset.items, self.template)
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float64)
        try:
            matrix = vectorizer.fit_transform(texts)
        except ValueError as error:  # e.g. texts with no word at all
            raise ConfigError(f"tfidf embedder option 'template': {error}") from None
        # The SVD needs fewer components than both items and terms.
        dim = min(self.dim, matrix.shape[0] - 1, matrix.shape[1] - 1)
        self.vocabulary_ = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
        self.idf, self.components = vectorizer.idf_, None
        if dim >= 1:
            svd = TruncatedSVD(n_components=dim, random_state=self.seed)
            vectors = svd.fit_transform(matrix)
            self.components = svd.components_
        else:
            vectors = matrix.toarray()
        return ItemEmbeddings(_unit_rows(vectors), modality=self.modality)

    def embed_new(self, items: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """New items through the fitted vocabulary and SVD (words the catalog never had are ignored)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.idf is None:
            raise RuntimeError("tfidf embedder is not fitted: call embed(data) or load(directory) first")
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, dtype=np.float64, vocabulary=self.vocabulary_
        )
        vectorizer.idf_ = self.idf
        matrix = vectorizer.transform(item_texts(list(items), self.template))
        vectors = matrix.toarray() if self.components is None else matrix @ self.components.T
        return _unit_rows(np.asarray(vectors))

    def save(self, directory: Path) -> None:
        arrays = {"idf": self.idf} | ({} if self.components is None else {"components": self.components})
        save_tensors(directory / "tfidf.safetensors", arrays)
        save_json(directory / "vocabulary.json", self.vocabulary_)

    def load(self, directory: Path) -> TfidfEmbedder:
        arrays = load_tensors(directory / "tfidf.safetensors")
        self.idf, self.components = arrays["idf"], arrays.get("components")
        self.vocabulary_ = load_json(directory / "vocabulary.json")
        return self


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)  # items with no known word stay at zero
