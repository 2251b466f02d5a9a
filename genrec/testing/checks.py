"""Conformance checks: run a component through its contract on tiny data, failing with a clear message."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from genrec.contracts import (
    MODALITIES,
    Embedder,
    Fuser,
    Generator,
    ItemCodes,
    ItemEmbeddings,
    Quantizer,
    RecData,
)
from genrec.data.dataset import Dataset
from genrec.protocol import leave_one_out


def tiny_dataset(n_users: int = 60, n_items: int = 40, seed: int = 0) -> Dataset:
    """A small synthetic dataset in the demo's style (topics, titles, sequential signal)."""
    from genrec.data.demo import generate_demo

    return generate_demo(n_users=n_users, n_items=n_items, seed=seed)


def tiny_recdata(n_users: int = 60, n_items: int = 40, seed: int = 0, max_history: int = 20) -> RecData:
    dataset = tiny_dataset(n_users, n_items, seed)
    return RecData(dataset, leave_one_out(dataset, max_history), seed=seed)


def _fail(component: object, message: str) -> None:
    raise AssertionError(f"{type(component).__name__}: {message}")


def check_embeddings(owner: object, embeddings: object, n_items: int) -> ItemEmbeddings:
    if not isinstance(embeddings, ItemEmbeddings):
        _fail(owner, f"must return ItemEmbeddings, got {type(embeddings).__name__}")
    assert isinstance(embeddings, ItemEmbeddings)
    if embeddings.vectors.shape[0] != n_items:
        _fail(owner, f"returned {embeddings.vectors.shape[0]} rows for {n_items} items")
    if not np.issubdtype(embeddings.vectors.dtype, np.floating):
        _fail(owner, f"vectors must be floating point, got {embeddings.vectors.dtype}")
    if not np.isfinite(embeddings.vectors).all():
        _fail(owner, "vectors contain NaN or infinity")
    if np.allclose(embeddings.vectors, embeddings.vectors[0]):
        _fail(owner, "every item has the same vector")
    return embeddings


def check_embedder(embedder: Embedder, data: RecData | None = None) -> ItemEmbeddings:
    """An embedder declares its modality and returns one finite, non-constant vector per item."""
    data = data or tiny_recdata()
    if getattr(embedder, "modality", None) not in MODALITIES:
        _fail(embedder, f"class attribute 'modality' must be one of {MODALITIES}")
    return check_embeddings(embedder, embedder.embed(data), data.n_items)


def check_fuser(fuser: Fuser, data: RecData | None = None, dims: Mapping[str, int] | None = None) -> ItemEmbeddings:
    """A fuser accepts the modalities it requires and returns one vector per item."""
    data = data or tiny_recdata()
    requires = getattr(fuser, "requires", None)
    if not isinstance(requires, tuple) or not set(requires) <= set(MODALITIES):
        _fail(fuser, f"class attribute 'requires' must be a tuple drawn from {MODALITIES}")
    rng = np.random.default_rng(0)
    dims = dims or {"semantic": 24, "collaborative": 8}
    inputs = {
        m: ItemEmbeddings(rng.normal(size=(data.n_items, dims[m])).astype(np.float32), modality=m) for m in MODALITIES
    }
    return check_embeddings(fuser, fuser.fuse(data, inputs), data.n_items)


def check_quantizer(quantizer: Quantizer, n_items: int = 200, dim: int = 16, seed: int = 0) -> np.ndarray:
    """fit returns self; encode gives (n, levels) int64 codes within codebook_sizes, deterministically."""
    blank = copy.deepcopy(quantizer)
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, dim)) * 3
    embeddings = (centers[rng.integers(8, size=n_items)] + rng.normal(size=(n_items, dim))).astype(np.float32)
    fitted = quantizer.fit(embeddings)
    if fitted is not quantizer:
        _fail(quantizer, "fit must return self")
    sizes = quantizer.codebook_sizes
    if not sizes or not all(isinstance(s, int | np.integer) and s > 0 for s in sizes):
        _fail(quantizer, f"codebook_sizes must be a non-empty tuple of positive ints, got {sizes!r}")
    codes = quantizer.encode(embeddings)
    if not isinstance(codes, np.ndarray) or codes.shape != (n_items, len(sizes)):
        _fail(
            quantizer,
            f"encode must return an array of shape {(n_items, len(sizes))}, got {getattr(codes, 'shape', codes)}",
        )
    if codes.dtype != np.int64:
        _fail(quantizer, f"codes must be int64, got {codes.dtype}")
    if (codes < 0).any() or (codes >= np.asarray(sizes)).any():
        _fail(quantizer, "codes fall outside [0, codebook_sizes)")
    if not np.array_equal(quantizer.encode(embeddings), codes):
        _fail(quantizer, "encode is not deterministic")
    if len({tuple(row) for row in codes[:, :1].tolist()}) < 2:
        _fail(quantizer, "the first level uses a single code for well-separated clusters")
    again = copy.deepcopy(quantizer).fit(embeddings).encode(embeddings)
    if not np.array_equal(again, codes):
        _fail(quantizer, "fit with the same seed gives different codes")
    if callable(getattr(quantizer, "save", None)):
        restored = _round_trip(quantizer, blank)
        if not np.array_equal(restored.encode(embeddings), codes):
            _fail(quantizer, "after save and load, encode gives other codes")
    return codes


def _round_trip(fitted: Any, blank: Any) -> Any:
    """``blank`` (an unfitted copy) after loading what ``fitted`` saved."""
    import tempfile
    from pathlib import Path

    if not callable(getattr(blank, "load", None)):
        _fail(fitted, "has save() but no load()")
    with tempfile.TemporaryDirectory(prefix="genrec-check-") as tmp:
        fitted.save(Path(tmp))
        loaded = blank.load(Path(tmp))
    if loaded is not blank:
        _fail(fitted, "load must return self")
    return loaded


def check_generator(generator: Generator, data: RecData | None = None, codes: ItemCodes | None = None) -> np.ndarray:
    """A generator fits on tiny data and ranks k distinct valid items per history."""
    data = data or tiny_recdata()
    if generator.uses_codes and codes is None:
        rng = np.random.default_rng(0)
        first = rng.integers(4, size=data.n_items)
        second = np.zeros(data.n_items, dtype=np.int64)
        for value in range(4):
            members = np.flatnonzero(first == value)
            second[members] = np.arange(len(members))
        codes = ItemCodes(np.stack([first, second], 1).astype(np.int64), (4, int(second.max()) + 1))
    blank = copy.deepcopy(generator)
    fitted = generator.fit(data, codes)
    if fitted is not generator:
        _fail(generator, "fit must return self")
    k = min(20, data.n_items)
    histories = data.split.test_histories[:16]
    ranked = generator.recommend(histories, k)
    if not isinstance(ranked, np.ndarray) or ranked.shape != (len(histories), k):
        _fail(generator, f"recommend must return shape {(len(histories), k)}, got {getattr(ranked, 'shape', ranked)}")
    if (ranked < 1).any() or (ranked > data.n_items).any():
        _fail(generator, "recommend returned ids outside 1..n_items")
    for row in ranked:
        if len(set(row.tolist())) != k:
            _fail(generator, "recommend returned the same item twice for one user")
    if callable(getattr(generator, "save", None)):
        restored = _round_trip(generator, blank)
        if not np.array_equal(restored.recommend(histories, k), ranked):
            _fail(generator, "after save and load, recommend ranks other items")
    return ranked
