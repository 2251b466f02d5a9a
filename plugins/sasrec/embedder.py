"""The ``sasrec`` embedder: collaborative item vectors, the item table of a trained SASRec."""

from __future__ import annotations

from typing import ClassVar

from genrec.contracts import ItemEmbeddings, RecData
from genrec_plugins.sasrec.generator import SASRecGenerator


class SASRecEmbedder(SASRecGenerator):
    """Trains the ``sasrec`` generator (same options, same checkpoint key) and returns rows 1..n of its
    item embedding table. Given the same ``data.workdir``, the two share one training."""

    modality: ClassVar[str] = "collaborative"

    def embed(self, data: RecData) -> ItemEmbeddings:
        self.fit(data)
        model = self.fitted_model()
        vectors = model.item_embedding.weight[1:].detach().float().cpu().numpy().copy()
        return ItemEmbeddings(vectors, modality="collaborative")
