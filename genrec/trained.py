"""What every component trained by the shared loop needs, written once.

A component that trains with :func:`genrec.training.train` (``tiger``, ``causal``, ``sasrec``,
``prorec-align``, a third-party model) subclasses :class:`TrainedComponent`, names the options that
shape its weights in ``weight_options`` (and those it applies only after training in
``readout_options``), and keeps the loop's options as attributes of the same
names (``epochs``, ``lr``, ``weight_decay``, ``patience``, ``warmup_steps``, ``schedule``,
``decay_fraction``; ``seed`` and ``device``). It then gets from here its checkpoint directory
(:meth:`TrainedComponent.checkpoints`), its seed, its :class:`~genrec.training.TrainConfig` and a
fitted-model guard; :func:`shuffled_batches` batches ``Split.training_windows`` for it, and
:func:`top_items` is the full-catalog top-k.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from genrec.artifacts import digest
from genrec.contracts import RecData
from genrec.training import TrainConfig, TrainResult


class TrainedComponent:
    """A mixin: options key, seed, checkpoints, training config and fitted guard of a loop-trained component."""

    name: ClassVar[str]  # the registered name: the checkpoints' folder, and errors
    weight_options: ClassVar[tuple[str, ...]] = ()  # what shapes the weights (not how long, nor where)
    # Options applied to the trained model only after training (how it is read out or ranks): runs that
    # differ in them share one stage work directory, so the second continues the first's finished training.
    readout_options: ClassVar[tuple[str, ...]] = ()
    model: Any = None
    result: TrainResult | None = None
    log: Callable[[str], None] | None = None  # progress lines; None = genrec's console

    def options(self) -> dict[str, Any]:
        """The options that shape the trained weights: a checkpoint is reused only under the same ones."""
        return {name: getattr(self, name) for name in self.weight_options}

    def seed_for(self, data: RecData) -> int:
        """The component's own ``seed`` option, else the run's."""
        seed = getattr(self, "seed", None)
        return data.seed if seed is None else seed

    def checkpoints(self, data: RecData, **inputs: Any) -> Path | None:
        """``data.workdir/<name>/<key>``, keyed by the weight options, seed, dataset, history length and
        ``inputs`` (what else the weights depend on: codes, auxiliary losses, a fused input)."""
        if data.workdir is None:
            return None
        key = {
            "options": self.options(),
            "seed": self.seed_for(data),
            "dataset": data.dataset.fingerprint,
            "max_history": data.split.max_history,
            **inputs,
        }
        return Path(data.workdir) / self.name / digest(key)

    def train_config(self, device: torch.device | str, bf16: bool = False) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,  # type: ignore[attr-defined]
            lr=self.lr,  # type: ignore[attr-defined]
            weight_decay=self.weight_decay,  # type: ignore[attr-defined]
            patience=self.patience,  # type: ignore[attr-defined]
            eval_every=getattr(self, "eval_every", 1),
            bf16=bf16,
            device=str(device),
            warmup_steps=self.warmup_steps,  # type: ignore[attr-defined]
            schedule=self.schedule,  # type: ignore[attr-defined]
            decay_fraction=self.decay_fraction,  # type: ignore[attr-defined]
        )

    def fitted_model(self) -> Any:
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first (or load a saved one)")
        return self.model


def top_items(scores: torch.Tensor, k: int, histories: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(users, n_items + 1) scores, column 0 padding -> the top ``k`` item ids and their scores; with
    ``histories``, each user's history items are left out."""
    scores = scores.float().clone()
    scores[:, 0] = float("-inf")
    if histories is not None:
        scores.scatter_(1, torch.as_tensor(np.asarray(histories, dtype=np.int64), device=scores.device), float("-inf"))
    top = torch.topk(scores, k, dim=1)
    return top.indices.cpu().numpy(), top.values.cpu().numpy()


def shuffled_batches(
    inputs: np.ndarray, targets: np.ndarray, batch_size: int, seed: int, epoch: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The windows in an order fixed by (seed, epoch), so a resumed run sees the same batches.

    ``targets`` is (N, L) per-position targets, or (N,) one target per window.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(inputs))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        x, y = inputs[rows], targets[rows]
        if y.ndim == 2:  # positions are right-aligned: drop the columns that are padding in every row
            first = int(np.argmax((x != 0).any(axis=0)))
            x, y = x[:, first:], y[:, first:]
        yield (
            torch.from_numpy(x).to(device, non_blocking=True),
            torch.from_numpy(y).to(device, non_blocking=True),
        )
