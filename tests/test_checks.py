"""The conformance checks catch the mistakes a plugin author makes, and pass correct components."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from genrec.contracts import ItemEmbeddings, RecData
from genrec.testing.checks import checks_for


class Embedder:
    modality: ClassVar[str] = "semantic"
    returns = "semantic"

    def embed(self, data: RecData) -> ItemEmbeddings:
        vectors = np.random.default_rng(0).normal(size=(data.n_items, 8)).astype(np.float32)
        return ItemEmbeddings(vectors, modality=self.returns)


class EmbedderOfAnotherModality(Embedder):
    returns = "collaborative"


class Fuser:
    requires: ClassVar[tuple[str, ...]] = ("semantic",)

    def fuse(self, data: RecData, inputs: dict[str, ItemEmbeddings]) -> ItemEmbeddings:
        return ItemEmbeddings(inputs["semantic"].vectors * 2, modality="fused")


class FuserOfTheWrongModality(Fuser):
    def fuse(self, data: RecData, inputs: dict[str, ItemEmbeddings]) -> ItemEmbeddings:
        return ItemEmbeddings(inputs["semantic"].vectors * 2, modality="semantic")


class FuserThatMutatesItsInput(Fuser):
    def fuse(self, data: RecData, inputs: dict[str, ItemEmbeddings]) -> ItemEmbeddings:
        vectors = inputs["semantic"].vectors
        vectors *= 2
        return ItemEmbeddings(vectors, modality="fused")


class FuserThatReadsAnUndeclaredModality(Fuser):
    def fuse(self, data: RecData, inputs: dict[str, ItemEmbeddings]) -> ItemEmbeddings:
        both = np.hstack([inputs["semantic"].vectors, inputs["collaborative"].vectors])
        return ItemEmbeddings(both, modality="fused")


class Quantizer:
    """Nearest of four centres (the k-means++ of sklearn), one level."""

    codebook_sizes = (4,)

    def fit(self, embeddings: np.ndarray) -> Quantizer:
        from sklearn.cluster import KMeans

        self.kmeans = KMeans(4, n_init=1, random_state=0).fit(np.asarray(embeddings, dtype=np.float64))
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        return self.kmeans.predict(np.asarray(embeddings, dtype=np.float64)).astype(np.int64)[:, None]


class QuantizerThatOnlyKnowsItsRows(Quantizer):
    def fit(self, embeddings: np.ndarray) -> Quantizer:
        super().fit(embeddings)
        self.known = {row.tobytes(): code for row, code in zip(embeddings, super().encode(embeddings), strict=True)}
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        return np.stack([self.known.get(row.tobytes(), np.array([-1])) for row in embeddings])


class QuantizerThatCentresEachBatch(Quantizer):
    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        shifted = embeddings - embeddings.mean(axis=0) + self.kmeans.cluster_centers_.mean(axis=0)
        return super().encode(shifted)


class Generator:
    uses_codes: ClassVar[bool] = False

    def fit(self, data: RecData, codes: Any = None, aux_losses: Any = ()) -> Generator:
        counts = np.bincount(np.concatenate(data.split.train), minlength=data.n_items + 1)[1:]
        self.order = np.argsort(-counts, kind="stable") + 1
        return self

    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        return np.tile(self.order[:k], (len(histories), 1))


class GeneratorOfFloatIds(Generator):
    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        return super().recommend(histories, k).astype(np.float64)


class CodeGeneratorThatIgnoresAuxiliaryLosses(Generator):
    uses_codes: ClassVar[bool] = True


class GeneratorThatRanksByChance(Generator):
    def fit(self, data: RecData, codes: Any = None, aux_losses: Any = ()) -> Generator:
        self.order = np.random.default_rng().permutation(data.n_items) + 1  # unseeded: no two fits agree
        return self


class DecoderThatScoresRowsByPosition:
    """Log-probabilities that depend on where a prefix sits in the batch, not on what it is."""

    def __init__(self, sizes: tuple[int, ...]) -> None:
        self.sizes = sizes

    def start(self, histories: np.ndarray) -> None:
        return None

    def step(self, state: None, prefixes: torch.Tensor) -> tuple[torch.Tensor, None]:
        users, width, level = prefixes.shape
        scores = torch.arange(width, dtype=torch.float32)[None, :, None] * torch.arange(self.sizes[level]) * 0.1
        return torch.log_softmax(scores.expand(users, -1, -1), dim=-1), None

    def select(self, state: None, parents: torch.Tensor) -> None:
        return None


class CodeGeneratorWhoseBeamIsNotItsRanking(Generator):
    uses_codes: ClassVar[bool] = True

    def fit(self, data: RecData, codes: Any = None, aux_losses: Any = ()) -> Generator:
        self.sizes = tuple(codes.codebook_sizes)
        return super().fit(data, codes, aux_losses)

    def decoder(self) -> DecoderThatScoresRowsByPosition:
        return DecoderThatScoresRowsByPosition(self.sizes)


class GeneratorWithoutUsesCodes:
    fit = Generator.fit
    recommend = Generator.recommend


def failures(component: Any) -> list[str]:
    found = []
    for check in checks_for(component):
        try:
            check(copy.deepcopy(component))
        except AssertionError as error:
            found.append(str(error))
    return found


@pytest.mark.parametrize("component", [Embedder(), Fuser(), Quantizer(), Generator()], ids=lambda c: type(c).__name__)
def test_correct_components_pass_every_check(component: Any) -> None:
    assert failures(component) == []


@pytest.mark.parametrize(
    ("component", "message"),
    [
        (EmbedderOfAnotherModality(), "declares modality 'semantic' but returned 'collaborative'"),
        (FuserOfTheWrongModality(), "must return modality 'fused'"),
        (FuserThatMutatesItsInput(), "changed its input embeddings in place"),
        (FuserThatReadsAnUndeclaredModality(), "read modality 'collaborative'"),
        (QuantizerThatOnlyKnowsItsRows(), "rows it was not fitted on"),
        (QuantizerThatCentresEachBatch(), "smaller batches"),
        (GeneratorOfFloatIds(), "integer item ids"),
        (GeneratorWithoutUsesCodes(), "'uses_codes'"),
        (CodeGeneratorThatIgnoresAuxiliaryLosses(), "never built or called its auxiliary losses"),
        (GeneratorThatRanksByChance(), "ranks other items than the first fit"),
        (CodeGeneratorWhoseBeamIsNotItsRanking(), "ranks other items than the exact ranking"),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else "",
)
def test_each_broken_component_fails_with_a_message_that_names_the_mistake(component: Any, message: str) -> None:
    found = failures(component)
    assert any(message in text for text in found), found
