"""Conformance checks: run a component through its contract on tiny data, failing with a clear message."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
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
    """An embedder declares its modality, returns embeddings of that modality, one finite,
    non-constant vector per item."""
    data = data or tiny_recdata()
    declared = getattr(embedder, "modality", None)
    if declared not in MODALITIES:
        _fail(embedder, f"class attribute 'modality' must be one of {MODALITIES}")
    embeddings = check_embeddings(embedder, embedder.embed(data), data.n_items)
    if embeddings.modality != declared:
        _fail(embedder, f"declares modality {declared!r} but returned {embeddings.modality!r} embeddings")
    return embeddings


def check_fuser(fuser: Fuser, data: RecData | None = None, dims: Mapping[str, int] | None = None) -> ItemEmbeddings:
    """A fuser reads only the modalities it requires, leaves them unchanged, and returns one ``fused``
    vector per item."""
    data = data or tiny_recdata()
    requires = getattr(fuser, "requires", None)
    if not isinstance(requires, tuple) or not set(requires) <= set(MODALITIES):
        _fail(fuser, f"class attribute 'requires' must be a tuple drawn from {MODALITIES}")
    assert isinstance(requires, tuple)
    rng = np.random.default_rng(0)
    dims = dims or {"semantic": 24, "collaborative": 8}
    # Only what it declares: a fuser reading another modality fails here, not in the pipeline.
    vectors = {m: rng.normal(size=(data.n_items, dims[m])).astype(np.float32) for m in requires}
    inputs = {m: ItemEmbeddings(v, modality=m) for m, v in vectors.items()}
    before = {m: e.vectors.copy() for m, e in inputs.items()}
    try:
        fused = fuser.fuse(data, inputs)
    except KeyError as error:
        _fail(fuser, f"read modality {error} that its 'requires' {requires} does not declare")
    if any(not np.array_equal(inputs[m].vectors, before[m]) for m in requires):
        _fail(fuser, "changed its input embeddings in place")
    embeddings = check_embeddings(fuser, fused, data.n_items)
    if embeddings.modality != "fused":
        _fail(fuser, f"must return modality 'fused', got {embeddings.modality!r}")
    return embeddings


def _clustered(n_items: int = 200, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(8, dim)) * 3
    return (centers[rng.integers(8, size=n_items)] + rng.normal(size=(n_items, dim))).astype(np.float32)


# Quantizer checks: each takes an unfitted quantizer (a copy of its own) and fails with a clear message.


def check_quantizer_fit_returns_self(quantizer: Quantizer) -> None:
    if quantizer.fit(_clustered()) is not quantizer:
        _fail(quantizer, "fit must return self")


def check_quantizer_codes_fit_the_codebooks(quantizer: Quantizer) -> None:
    embeddings = _clustered()
    quantizer.fit(embeddings)
    sizes = quantizer.codebook_sizes
    if not sizes or not all(isinstance(s, int | np.integer) and s > 0 for s in sizes):
        _fail(quantizer, f"codebook_sizes must be a non-empty tuple of positive ints, got {sizes!r}")
    codes = quantizer.encode(embeddings)
    if not isinstance(codes, np.ndarray) or codes.shape != (len(embeddings), len(sizes)):
        shape = getattr(codes, "shape", codes)
        _fail(quantizer, f"encode must return an array of shape {(len(embeddings), len(sizes))}, got {shape}")
    if codes.dtype != np.int64:
        _fail(quantizer, f"codes must be int64, got {codes.dtype}")
    if (codes < 0).any() or (codes >= np.asarray(sizes)).any():
        _fail(quantizer, "codes fall outside [0, codebook_sizes)")


def check_quantizer_encode_is_deterministic(quantizer: Quantizer) -> None:
    embeddings = _clustered()
    quantizer.fit(embeddings)
    if not np.array_equal(quantizer.encode(embeddings), quantizer.encode(embeddings)):
        _fail(quantizer, "encode is not deterministic")


def check_quantizer_separates_clusters(quantizer: Quantizer) -> None:
    embeddings = _clustered()
    if len(set(quantizer.fit(embeddings).encode(embeddings)[:, 0].tolist())) < 2:
        _fail(quantizer, "the first level uses a single code for well-separated clusters")


def check_quantizer_refit_is_reproducible(quantizer: Quantizer) -> None:
    embeddings = _clustered()
    again = copy.deepcopy(quantizer)
    if not np.array_equal(quantizer.fit(embeddings).encode(embeddings), again.fit(embeddings).encode(embeddings)):
        _fail(quantizer, "fit with the same seed gives different codes")


def check_quantizer_save_and_load(quantizer: Quantizer) -> None:
    """A quantizer with ``save`` restores the same codes into an unfitted copy (others: nothing to check)."""
    if not callable(getattr(quantizer, "save", None)):
        return
    embeddings = _clustered()
    blank = copy.deepcopy(quantizer)
    codes = quantizer.fit(embeddings).encode(embeddings)
    if not np.array_equal(_round_trip(quantizer, blank).encode(embeddings), codes):
        _fail(quantizer, "after save and load, encode gives other codes")


def check_quantizer_encodes_unseen_rows_and_batches(quantizer: Quantizer) -> None:
    """``encode`` takes rows it was not fitted on, and a batch's codes do not depend on the batch (unless
    the quantizer declares ``encodes_jointly``: it assigns a batch's rows together, as balanced k-means)."""
    embeddings = _clustered()
    quantizer.fit(embeddings[:150])
    sizes = np.asarray(quantizer.codebook_sizes)
    unseen = quantizer.encode(embeddings[150:])
    if getattr(unseen, "shape", None) != (50, len(sizes)) or (unseen < 0).any() or (unseen >= sizes).any():
        _fail(quantizer, "encode of rows it was not fitted on must give (rows, levels) codes inside the codebooks")
    if getattr(quantizer, "encodes_jointly", False):
        return
    whole = quantizer.encode(embeddings)
    parts = np.concatenate([quantizer.encode(embeddings[i : i + 7]) for i in range(0, len(embeddings), 7)])
    if not np.array_equal(whole, parts):
        _fail(quantizer, "encode gives other codes when the rows come in smaller batches")


def quantizer_checks() -> list[Callable[[Any], None]]:
    return [
        check_quantizer_fit_returns_self,
        check_quantizer_codes_fit_the_codebooks,
        check_quantizer_encode_is_deterministic,
        check_quantizer_encodes_unseen_rows_and_batches,
        check_quantizer_separates_clusters,
        check_quantizer_refit_is_reproducible,
        check_quantizer_save_and_load,
    ]


def check_quantizer(quantizer: Quantizer, n_items: int = 200, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Every quantizer check (each on a copy); returns the codes of ``n_items`` clustered vectors."""
    for check in quantizer_checks():
        check(copy.deepcopy(quantizer))
    embeddings = _clustered(n_items, dim, seed)
    return quantizer.fit(embeddings).encode(embeddings)


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


# Generator checks: each takes an unfitted generator, fits it on tiny data, and checks one thing.


def _tiny_codes(data: RecData) -> ItemCodes:
    rng = np.random.default_rng(0)
    first = rng.integers(4, size=data.n_items)
    second = np.zeros(data.n_items, dtype=np.int64)
    for value in range(4):
        members = np.flatnonzero(first == value)
        second[members] = np.arange(len(members))
    return ItemCodes(np.stack([first, second], 1).astype(np.int64), (4, int(second.max()) + 1))


def _uses_codes(generator: Generator) -> bool:
    uses = getattr(generator, "uses_codes", None)
    if not isinstance(uses, bool):
        _fail(generator, "class attribute 'uses_codes' must be True (it trains on item codes) or False")
    return bool(uses)


def _fitted_generator(generator: Generator, data: RecData | None = None, codes: ItemCodes | None = None) -> Any:
    data = data or tiny_recdata()
    _uses_codes(generator)
    codes = codes if codes is not None or not generator.uses_codes else _tiny_codes(data)
    fitted = generator.fit(data, codes)
    if fitted is not generator:
        _fail(generator, "fit must return self")
    return data, codes


def check_generator_fit_returns_self(generator: Generator) -> None:
    _fitted_generator(generator)


def check_generator_recommends_distinct_valid_items(
    generator: Generator, data: RecData | None = None, codes: ItemCodes | None = None
) -> np.ndarray:
    data, codes = _fitted_generator(generator, data, codes)
    k = min(20, data.n_items)
    histories = data.split.test_histories[:16]
    ranked = generator.recommend(histories, k)
    if not isinstance(ranked, np.ndarray) or ranked.shape != (len(histories), k):
        _fail(generator, f"recommend must return shape {(len(histories), k)}, got {getattr(ranked, 'shape', ranked)}")
    if not np.issubdtype(ranked.dtype, np.integer):
        _fail(generator, f"recommend must return integer item ids, got {ranked.dtype}")
    if (ranked < 1).any() or (ranked > data.n_items).any():
        _fail(generator, "recommend returned ids outside 1..n_items")
    for row in ranked:
        if len(set(row.tolist())) != k:
            _fail(generator, "recommend returned the same item twice for one user")
    return ranked


def check_generator_excludes_history(generator: Generator) -> None:
    """A generator whose ``recommend`` takes ``exclude_history`` never returns a history item with it."""
    import inspect

    if "exclude_history" not in inspect.signature(generator.recommend).parameters:
        return
    data, _ = _fitted_generator(generator)
    histories = data.split.test_histories[:16]
    ranked = generator.recommend(histories, 10, exclude_history=True)  # type: ignore[call-arg]
    for row, history in zip(ranked, histories, strict=True):
        if set(row.tolist()) & set(history.tolist()) or len(set(row.tolist())) != 10:
            _fail(generator, "with exclude_history, recommend returned a history item or fewer distinct items")


def check_generator_save_and_load(generator: Generator) -> None:
    """A generator with ``save`` restores the same recommendations into an unfitted copy."""
    if not callable(getattr(generator, "save", None)):
        return
    blank = copy.deepcopy(generator)
    data, _ = _fitted_generator(generator)
    histories = data.split.test_histories[:16]
    ranked = generator.recommend(histories, 10)
    if not np.array_equal(_round_trip(generator, blank).recommend(histories, 10), ranked):
        _fail(generator, "after save and load, recommend ranks other items")


class RecordingLoss:
    """An auxiliary loss that records its calls: ``weight * mean(summary ** 2)`` with a trainable weight."""

    name = "recording"

    def __init__(self, key: str = "recording") -> None:
        self.key = key  # the checkpoint key: losses with different keys train different checkpoints
        self.calls: list[tuple[tuple[int, ...], Any]] = []  # (summary shape, target items)
        self.module: Any = None
        self.dim = 0

    def build(self, dim: int) -> Any:
        import torch

        owner, self.dim = self, dim

        class Recording(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.weight = torch.nn.Parameter(torch.tensor(0.5))

            def forward(self, summary: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
                owner.calls.append((tuple(summary.shape), target_items.detach().cpu().numpy()))
                return (summary.float() ** 2).mean() * self.weight

        self.module = Recording()
        return self.module


def check_generator_applies_auxiliary_losses(generator: Generator) -> None:
    """A code generator builds each auxiliary loss once, calls it with (targets, dim) summary states and
    valid target ids, and trains its parameters with its own (PRORec's distillation depends on it)."""
    if not _uses_codes(generator):
        return
    data = tiny_recdata()
    loss = RecordingLoss()
    generator.fit(data, _tiny_codes(data), [loss])
    if loss.module is None or not loss.calls:
        _fail(generator, "fit(data, codes, aux_losses) never built or called its auxiliary losses")
    for shape, targets in loss.calls:
        if shape != (len(targets), loss.dim) or (targets < 1).any() or (targets > data.n_items).any():
            _fail(generator, f"an auxiliary loss got summary {shape} for {len(targets)} targets, or ids outside 1..n")
    if float(loss.module.weight.detach()) == 0.5:
        _fail(generator, "the auxiliary loss's parameters never trained")


def check_generator_resumes_to_the_same_ranking(generator: Generator) -> None:
    """A second fit in the same work directory (where a generator keeps its checkpoints, so it resumes
    from the first's) ranks exactly as the first fit did."""
    import tempfile

    again = copy.deepcopy(generator)
    with tempfile.TemporaryDirectory(prefix="genrec-check-") as workdir:
        data = tiny_recdata()
        data.workdir = workdir
        codes = _tiny_codes(data) if _uses_codes(generator) else None
        histories = data.split.test_histories[:16]
        first = generator.fit(data, codes).recommend(histories, 10)
        second = again.fit(data, codes).recommend(histories, 10)
    if not np.array_equal(first, second):
        _fail(generator, "a fit that resumes in the same work directory ranks other items than the first fit")


def check_generator_beam_is_the_exact_ranking(generator: Generator) -> None:
    """A code generator with a ``decoder()`` (the core's :class:`genrec.decoding.CodeDecoder`): the
    shared beam search, as wide as the catalog, ranks as scoring every item's code does."""
    from genrec.decoding import CodeTrie, beam_search, exact_topk

    if not _uses_codes(generator) or not callable(getattr(generator, "decoder", None)):
        return
    data, codes = _fitted_generator(generator)
    histories = data.split.test_histories[:8]
    trie = CodeTrie(codes.codes, codes.codebook_sizes)
    beam = beam_search(generator.decoder(), histories, trie, beam=data.n_items, k=10)
    if not np.array_equal(beam, exact_topk(generator.decoder(), histories, codes.codes, k=10)):
        _fail(generator, "a beam as wide as the catalog ranks other items than the exact ranking of its codes")


def generator_checks() -> list[Callable[[Any], None]]:
    return [
        check_generator_fit_returns_self,
        check_generator_recommends_distinct_valid_items,
        check_generator_excludes_history,
        check_generator_applies_auxiliary_losses,
        check_generator_resumes_to_the_same_ranking,
        check_generator_beam_is_the_exact_ranking,
        check_generator_save_and_load,
    ]


def check_generator(generator: Generator, data: RecData | None = None, codes: ItemCodes | None = None) -> np.ndarray:
    """Every generator check (each on a copy); returns ``generator``'s own ranking of 16 test users."""
    for check in generator_checks()[2:]:  # the first two are what the returned ranking checks
        check(copy.deepcopy(generator))
    return check_generator_recommends_distinct_valid_items(generator, data, codes)


def checks_for(component: Any) -> list[Callable[[Any], None]]:
    """The named checks of a component's kind (by its contract's methods)."""
    if hasattr(component, "recommend"):
        return generator_checks()
    if hasattr(component, "encode") and hasattr(component, "fit"):
        return quantizer_checks()
    if hasattr(component, "fuse"):
        return [check_fuser]
    if hasattr(component, "embed"):
        return [check_embedder]
    raise TypeError(f"{type(component).__name__} is not an embedder, fuser, quantizer or generator")


def parametrize_with_checks(components: list[Any]) -> Any:
    """A ``pytest.mark.parametrize`` over ``(component, check)``: one test id per component and check,
    each run on a fresh copy of the component (as scikit-learn's ``parametrize_with_checks``)::

        @parametrize_with_checks([MyQuantizer(levels=2)])
        def test_conformance(component, check):
            check(component)
    """
    import pytest

    cases = [(component, check) for component in components for check in checks_for(component)]
    return pytest.mark.parametrize(
        ("component", "check"),
        [pytest.param(copy.deepcopy(c), check, id=f"{type(c).__name__}-{check.__name__}") for c, check in cases],
    )
