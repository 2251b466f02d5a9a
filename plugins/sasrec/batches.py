"""Shuffled batches of training windows (``Split.training_windows``: every position predicts its next item)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


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
