"""``tfidf``: TF-IDF over each item's text, reduced with a truncated SVD. Needs no model files."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from genrec.contracts import ItemEmbeddings, RecData
from genrec.errors import ConfigError
from genrec_plugins.embedders.item_text import ItemTemplate, item_texts


class TfidfEmbedder:
    """Word uni- and bigram TF-IDF -> ``dim`` SVD components (fewer when the data has fewer), L2-normalised."""

    modality: ClassVar[str] = "semantic"

    def __init__(self, dim: int = 128, template: str = "auto", seed: int = 0):
        if dim < 1:
            raise ConfigError(f"tfidf embedder option 'dim': must be at least 1, got {dim}")
        ItemTemplate(template)  # fail on a bad template now, before any work
        self.dim = dim
        self.template = template
        self.seed = seed

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
        if dim >= 1:
            svd = TruncatedSVD(n_components=dim, random_state=self.seed)
            vectors = svd.fit_transform(matrix)
        else:
            vectors = matrix.toarray()
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)  # items with no known word stay at zero
        return ItemEmbeddings(vectors.astype(np.float32), modality=self.modality)
