"""``prorec-distill``: PRORec's second stage, in-modality knowledge distillation.

The quantizer itself is a base quantizer chosen by name (codes come from it unchanged). What it adds is
one auxiliary loss per modality for the generator: a projection ``P_m`` of the generator's summary state
for the target is pulled towards the target item's continuous embedding in that modality (the fixed
teacher ``T_m``), so the generator keeps the knowledge that quantization drops:

    L2 = L_code + sum_m weight_m * L_distill(P_m(summary), T_m[target])

``L_distill`` is in-batch InfoNCE by default (the other targets of the batch are the negatives; repeated
targets are not counted as negatives of each other) or ``1 - cosine``. Nothing of it is used at inference.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from genrec.artifacts import digest
from genrec.contracts import ItemEmbeddings, fit_quantizer
from genrec.errors import ConfigError
from genrec.registry import Registry
from genrec.saved import load_fitted, save_fitted
from genrec_plugins.prorec.losses import cosine_loss, info_nce

MODALITY_OPTIONS = {"collaborative": "collaborative_weight", "semantic": "semantic_weight"}


def _registry() -> Registry:
    from genrec.discovery import get_registry

    return get_registry()


def parse_options(text: str) -> dict[str, str]:
    """``"balanced=true;max_iter=100"`` -> ``{"balanced": "true", "max_iter": "100"}``.

    Pairs are separated by ``;`` or ``,``; a piece without ``=`` continues the previous value, so tuple
    values such as ``sizes=256,256`` survive.
    """
    options: dict[str, str] = {}
    last: str | None = None
    for piece in text.replace(";", ",").split(","):
        if "=" in piece:
            key, _, value = piece.partition("=")
            key = key.strip()
            if not key:
                raise ConfigError(f"quantizer 'prorec-distill' option 'base_options': empty name in {text!r}")
            options[key], last = value.strip(), key
        elif piece.strip():
            if last is None:
                raise ConfigError(
                    f"quantizer 'prorec-distill' option 'base_options': expected name=value pairs, got {text!r}"
                )
            options[last] += "," + piece.strip()
    return options


class DistillationModule(nn.Module):
    """``weight * L(P(summary), teacher[target - 1])``; the teacher is a buffer, never trained or saved."""

    def __init__(
        self,
        dim: int,
        teacher: np.ndarray,
        weight: float,
        loss: Literal["infonce", "cosine"] = "infonce",
        temperature: float = 0.1,
    ):
        super().__init__()
        self.projection = nn.Linear(dim, teacher.shape[1])
        # Not persistent: teachers come from the quantizer stage and are rebuilt, not checkpointed.
        self.register_buffer("teacher", torch.as_tensor(np.asarray(teacher, dtype=np.float32)), persistent=False)
        self.weight, self.loss, self.temperature = weight, loss, temperature

    def forward(self, summary: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
        predicted = self.projection(summary)
        teacher = self.teacher[target_items - 1]
        if self.loss == "cosine":
            value = cosine_loss(predicted, teacher)
        else:
            value = info_nce(predicted, teacher, self.temperature, ids=target_items)
        return self.weight * value


class DistillationLoss:
    """An :class:`genrec.AuxiliaryLoss`: distil one modality's teacher embeddings into the generator."""

    def __init__(
        self,
        name: str,
        teacher: np.ndarray,
        weight: float,
        loss: Literal["infonce", "cosine"] = "infonce",
        temperature: float = 0.1,
    ):
        self.name, self.teacher, self.weight = name, np.ascontiguousarray(teacher, dtype=np.float32), weight
        self.loss, self.temperature = loss, temperature
        teacher_hash = hashlib.sha256(self.teacher.tobytes()).hexdigest()
        self.key = digest([name, list(self.teacher.shape), teacher_hash, weight, loss, temperature])

    def build(self, dim: int) -> DistillationModule:
        return DistillationModule(dim, self.teacher, self.weight, self.loss, self.temperature)


class ProrecDistill:
    """Codes from a base quantizer, plus distillation teachers for the generator's training.

    Parameters
    ----------
    base : str
        Name of the wrapped quantizer (``kmeans``, ``rkmeans``, ``rqvae`` or any registered one), whose
        codes are this quantizer's.
    levels : int or None
        Passed to the base; none = the base's own default.
    codebook_size : int or None
        Passed to the base; none = the base's own default.
    base_options : str
        More base options as ``name=value`` pairs separated by ``;`` or ``,`` (e.g.
        ``balanced=true;max_iter=100``; a piece without ``=`` continues the previous value, so
        ``sizes=256,256`` works), checked and coerced like CLI options.
    collaborative_weight : float
        ``lambda_C``, the weight of the collaborative teacher's distillation loss; 0 drops that teacher.
    semantic_weight : float
        ``lambda_S``, the weight of the semantic teacher's distillation loss; 0 drops that teacher (both 0
        = the "no distillation" ablation).
    loss : str
        ``infonce`` (in-batch, symmetric) or ``cosine`` (mean ``1 - cos``).
    temperature : float
        InfoNCE temperature.
    seed : int
        Passed to the base when it takes a ``seed``.
    """

    def __init__(
        self,
        base: str = "kmeans",
        levels: int | None = None,
        codebook_size: int | None = None,
        base_options: str = "",
        collaborative_weight: float = 0.1,
        semantic_weight: float = 0.1,
        loss: Literal["infonce", "cosine"] = "infonce",
        temperature: float = 0.1,
        seed: int = 0,
    ):
        label = "quantizer 'prorec-distill'"
        if base == "prorec-distill":
            raise ConfigError(f"{label} option 'base': cannot wrap itself")
        for name, value in (("collaborative_weight", collaborative_weight), ("semantic_weight", semantic_weight)):
            if value < 0:
                raise ConfigError(f"{label} option {name!r} must be non-negative, got {value}")
        if temperature <= 0:
            raise ConfigError(f"{label} option 'temperature' must be positive, got {temperature}")
        if loss not in ("infonce", "cosine"):
            raise ConfigError(f"{label} option 'loss' must be 'infonce' or 'cosine', got {loss!r}")
        self.base, self.levels, self.codebook_size, self.base_options = base, levels, codebook_size, base_options
        self.collaborative_weight, self.semantic_weight = collaborative_weight, semantic_weight
        self.loss, self.temperature, self.seed = loss, temperature, seed
        self.quantizer = self._build_base()

    def _build_base(self) -> Any:
        component = _registry().get("quantizer", self.base)
        accepted = component.options()
        options: dict[str, Any] = dict(parse_options(self.base_options))
        for name, value in (("levels", self.levels), ("codebook_size", self.codebook_size), ("seed", self.seed)):
            if name in options:
                raise ConfigError(
                    f"quantizer 'prorec-distill': set {name!r} as its own option, not inside 'base_options'"
                )
            if name not in accepted:
                if value is not None and name != "seed":
                    raise ConfigError(
                        f"quantizer 'prorec-distill' option {name!r}: base quantizer {self.base!r} has no such option"
                    )
                continue
            if value is not None:
                options[name] = value
        return component.load()(**component.validate(options, f"quantizer 'prorec-distill' base {self.base!r}"))

    def fit(self, embeddings: np.ndarray, *, seed: int = 0, device: str = "cpu") -> ProrecDistill:
        fit_quantizer(self.quantizer, embeddings, seed, device)  # the run's seed and device reach the base
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        return self.quantizer.encode(embeddings)

    def save(self, directory: Path) -> None:
        """The base quantizer's fitted state (the teachers are the fuser's views, not state of this one)."""
        save_fitted(self.quantizer, directory / "base")

    def load(self, directory: Path) -> ProrecDistill:
        if not callable(getattr(self.quantizer, "load", None)):
            raise ConfigError(f"quantizer 'prorec-distill': base quantizer {self.base!r} saves no fitted state")
        load_fitted(self.quantizer, directory / "base", f"quantizer 'prorec-distill' base {self.base!r}")
        return self

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return tuple(self.quantizer.codebook_sizes)

    def teacher(self, embeddings: ItemEmbeddings, modality: str) -> np.ndarray:
        """The modality's view of the quantized embeddings (or the vectors themselves if they are it)."""
        if modality in embeddings.views:
            return np.asarray(embeddings.views[modality], dtype=np.float32)
        if embeddings.modality == modality:
            return np.asarray(embeddings.vectors, dtype=np.float32)
        raise ConfigError(
            f"quantizer 'prorec-distill' option {MODALITY_OPTIONS[modality]!r} is non-zero, but the "
            f"{embeddings.modality!r} embeddings carry no {modality!r} view (use the 'prorec-align' fuser, "
            f"or set {MODALITY_OPTIONS[modality]}=0)"
        )

    def auxiliary_losses(self, embeddings: ItemEmbeddings) -> list[DistillationLoss]:
        losses = []
        for modality, option in MODALITY_OPTIONS.items():
            weight = getattr(self, option)
            if weight > 0:
                teacher = self.teacher(embeddings, modality)
                if not np.isfinite(teacher).all():
                    raise ConfigError(f"quantizer 'prorec-distill': the {modality!r} teacher has NaN or infinity")
                losses.append(
                    DistillationLoss(f"prorec-distill:{modality}", teacher, weight, self.loss, self.temperature)
                )
        return losses
