"""A run's configuration is resolved once, purely; a reused stage hands over its fitted component."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from genrec.config import PipelineConfig, StageSpec, parse_settings, resolve_config
from genrec.discovery import get_registry
from genrec.errors import ConfigError
from genrec.pipeline import Pipeline


def demo_config(store: Path) -> PipelineConfig:
    return PipelineConfig(
        recipe="tiger",
        data="demo",
        generator=StageSpec("tiger", {"epochs": "1"}),
        semantic=StageSpec("tfidf", {}),
        collaborative=StageSpec("sasrec", {}),
        fuser=StageSpec("semantic", {}),
        quantizer=StageSpec("kmeans", {"levels": 2, "codebook_size": 8}),
        store_dir=store,
        run_dir=store.parent / "run",
    )


def test_resolve_config_is_pure_complete_and_idempotent(tmp_path: Path) -> None:
    config = demo_config(tmp_path / "store")
    before = copy.deepcopy(config)
    resolved = resolve_config(config, get_registry(), {"generator": {"dropout": "0.2"}})
    assert config == before  # the input is left alone
    assert resolved.resolved and not config.resolved
    assert resolved.collaborative is None  # the semantic fuser needs no collaborative embedder
    options = resolved.record()["stages"]["generator"]["options"]
    assert options["epochs"] == 1 and options["dropout"] == 0.2 and "beam" in options  # typed, defaults filled
    assert resolve_config(resolved, get_registry()).record() == resolved.record()
    with pytest.raises(ValueError, match="resolve_config"):
        config.record()
    with pytest.raises(ConfigError, match="dropout"):
        resolve_config(config, get_registry(), {"generator": {"dropout": "1.5"}})


def test_a_reused_stage_gives_its_fitted_component(tmp_path: Path) -> None:
    config = resolve_config(demo_config(tmp_path / "store"), get_registry())

    def quantizer_after_a_run() -> tuple[object, np.ndarray, bool]:
        pipeline = Pipeline(config, get_registry())
        pipeline.prepare()
        fused, key, _ = pipeline.fuse()
        pipeline.quantize(fused, key)
        return pipeline.stages.fitted("quantizer"), fused.vectors, pipeline.stages.records["quantizer"]["reused"]

    built, vectors, reused_first = quantizer_after_a_run()
    loaded, _, reused_second = quantizer_after_a_run()
    assert not reused_first and reused_second
    assert loaded is not built
    assert np.array_equal(loaded.encode(vectors), built.encode(vectors))  # loaded from the stage, not refitted


def test_the_semantic_stage_answers_to_its_earlier_name_embedder() -> None:
    assert parse_settings(["embedder.batch_size=8"]) == {"semantic": {"batch_size": "8"}}
