"""A stage's output that breaks its contract stops the run with one line that blames its component."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from genrec.config import PipelineConfig, StageSpec
from genrec.contracts import ItemEmbeddings, RecData
from genrec.discovery import load_plugins
from genrec.errors import ComponentError
from genrec.pipeline import Pipeline


class NaNEmbedder:
    modality: ClassVar[str] = "semantic"

    def embed(self, data: RecData) -> ItemEmbeddings:
        vectors = np.random.default_rng(0).normal(size=(data.n_items, 8)).astype(np.float32)
        vectors[16, 3] = np.nan
        return ItemEmbeddings(vectors, modality="semantic")


class ZeroIdGenerator:
    uses_codes: ClassVar[bool] = False

    def fit(self, data: RecData, codes: Any = None, aux_losses: Any = ()) -> ZeroIdGenerator:
        return self

    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        return np.tile(np.arange(k), (len(histories), 1))  # starts at 0, which is padding, not an item


def run(tmp_path: Path, **stages: StageSpec) -> None:
    registry = load_plugins().registry
    registry.add("embedder", "nan-text", NaNEmbedder)
    registry.add("generator", "zero-id", ZeroIdGenerator)
    config = PipelineConfig(recipe="test", data="demo", run_dir=tmp_path / "run", **stages)  # type: ignore[arg-type]
    Pipeline(config, registry).run()


def test_a_nan_embedding_is_blamed_on_its_embedder_before_it_is_stored(tmp_path: Path) -> None:
    stages = {
        "generator": StageSpec("tiger", {"epochs": 1}),
        "semantic": StageSpec("nan-text"),
        "fuser": StageSpec("semantic"),
        "quantizer": StageSpec("kmeans", {"levels": 2, "codebook_size": 8}),
    }
    blamed = r"semantic 'nan-text' returned NaN or infinity for item 17 \(1 of 320 items\)"
    with pytest.raises(ComponentError, match=blamed):
        run(tmp_path, **stages)
    assert not list((tmp_path / "store" / "semantic").glob("[0-9a-f]*"))  # nothing was published


def test_an_id_outside_the_catalog_is_blamed_on_its_generator(tmp_path: Path) -> None:
    with pytest.raises(ComponentError, match="generator 'zero-id' recommended item id 0, outside the catalog"):
        run(tmp_path, generator=StageSpec("zero-id"))
