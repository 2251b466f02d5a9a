"""The contracts of the four component kinds and the artifacts they exchange.

Items are numbered 1..n_items in every dataset (0 is padding). Every per-item array has one row per
item, row ``i`` holding item id ``i + 1``; the artifacts carry their ``item_ids`` so that this is
checked rather than assumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from genrec.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from genrec.data.dataset import Dataset
    from genrec.protocol import Split

KINDS = ("embedder", "fuser", "quantizer", "generator", "recipe")
MODALITIES = ("semantic", "collaborative")


@dataclass(frozen=True)
class ItemEmbeddings:
    """One vector per item, plus optional named views (for example distillation teachers)."""

    vectors: np.ndarray
    modality: str = "fused"
    views: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2:
            raise ValueError(f"item embeddings must be 2-D (n_items, dim), got shape {self.vectors.shape}")
        for name, view in self.views.items():
            if view.ndim != 2 or len(view) != len(self.vectors):
                raise ValueError(f"view {name!r} has shape {view.shape}; expected ({len(self.vectors)}, dim)")

    @property
    def item_ids(self) -> np.ndarray:
        return np.arange(1, len(self.vectors) + 1, dtype=np.int64)

    @property
    def n_items(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


@dataclass(frozen=True)
class ItemCodes:
    """One unique code per item (the core has already appended the disambiguation level)."""

    codes: np.ndarray  # (n_items, levels) int64
    codebook_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.codes.ndim != 2 or self.codes.shape[1] != len(self.codebook_sizes):
            raise ValueError(f"codes of shape {self.codes.shape} do not match sizes {self.codebook_sizes}")

    @property
    def item_ids(self) -> np.ndarray:
        return np.arange(1, len(self.codes) + 1, dtype=np.int64)

    @property
    def levels(self) -> int:
        return self.codes.shape[1]


@dataclass
class RecData:
    """What a component sees: the dataset, its split, and the run's seed and device."""

    dataset: Dataset
    split: Split
    seed: int = 0
    device: str = "cpu"
    workdir: Path | None = None  # where a component may keep checkpoints for resuming

    @property
    def n_items(self) -> int:
        return self.dataset.n_items


@runtime_checkable
class Embedder(Protocol):
    """Items (and training interactions) -> one vector per item."""

    modality: ClassVar[str]  # "semantic" or "collaborative"

    def embed(self, data: RecData) -> ItemEmbeddings: ...


@runtime_checkable
class Fuser(Protocol):
    """Semantic and/or collaborative embeddings -> the embedding to quantize."""

    requires: ClassVar[tuple[str, ...]]  # modalities it needs, e.g. ("semantic", "collaborative")

    def fuse(self, data: RecData, embeddings: Mapping[str, ItemEmbeddings]) -> ItemEmbeddings: ...


@runtime_checkable
class Quantizer(Protocol):
    """Embeddings -> integer codes (n, levels), each level in [0, codebook_sizes[level]).

    ``fit`` may also take the run's ``seed`` and ``device`` as keywords (see :func:`fit_quantizer`).
    """

    def fit(self, embeddings: np.ndarray) -> Quantizer: ...

    def encode(self, embeddings: np.ndarray) -> np.ndarray: ...

    @property
    def codebook_sizes(self) -> tuple[int, ...]: ...


@runtime_checkable
class Generator(Protocol):
    """Histories -> ranked next items. ``uses_codes`` says whether it needs item codes."""

    uses_codes: ClassVar[bool]

    def fit(
        self,
        data: RecData,
        codes: ItemCodes | None = None,
        aux_losses: Sequence[AuxiliaryLoss] = (),
    ) -> Generator: ...

    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        """``histories``: (users, L) item ids, left-padded with 0. Returns (users, k) item ids."""
        ...


@runtime_checkable
class AuxiliaryLoss(Protocol):
    """A loss another component adds to a generator's training (PRORec's distillation is one).

    ``build(dim)`` returns a module called as ``module(summary, target_items)`` where ``summary`` is the
    generator's (batch, dim) state for the target and ``target_items`` the (batch,) 1-based item ids;
    it returns a scalar loss, already weighted. Its parameters train with the generator's.

    ``key`` is a string that changes with anything that shapes the training (options, weights, the
    data it holds); generators put it in their checkpoint keys, so a changed loss never resumes the
    training of another.
    """

    name: str
    key: str

    def build(self, dim: int) -> torch.nn.Module: ...


def auxiliary_keys(losses: Sequence[AuxiliaryLoss]) -> list[str]:
    """Each loss's ``key``, for generators' checkpoint keys; a loss without one is an error."""
    for loss in losses:
        if not isinstance(getattr(loss, "key", None), str):
            name = getattr(loss, "name", type(loss).__name__)
            raise ConfigError(f"auxiliary loss {name!r} has no string `key` (see genrec.AuxiliaryLoss)")
    return [loss.key for loss in losses]


def fit_quantizer(quantizer: Any, embeddings: np.ndarray, seed: int, device: str) -> Any:
    """``quantizer.fit(embeddings)``, with the run's ``seed`` and ``device`` as keywords where its ``fit``
    takes them (a quantizer whose options set them explicitly keeps its own)."""
    import inspect

    accepted = inspect.signature(quantizer.fit).parameters
    given = {"seed": seed, "device": device}
    return quantizer.fit(embeddings, **{name: value for name, value in given.items() if name in accepted})


def auxiliary_losses_of(component: Any, embeddings: ItemEmbeddings) -> list[AuxiliaryLoss]:
    """Components contribute auxiliary losses through an optional ``auxiliary_losses`` method."""
    method = getattr(component, "auxiliary_losses", None)
    return list(method(embeddings)) if callable(method) else []
