"""Per-position training windows: every prefix of a training sequence predicts its next item.

A sequence of n items has n - 1 targets. It is cut, from its end backwards, into windows of at most
``length`` inputs; the window's targets are its inputs shifted by one. Each target appears in exactly
one window, and one causal pass over a window scores all of its targets at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def training_windows(sequences: Sequence[np.ndarray], length: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows, length) inputs and next-item targets, both left-padded with 0."""
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for sequence in sequences:
        sequence = np.asarray(sequence, dtype=np.int64)
        end = len(sequence) - 1  # index of the last target
        while end >= 1:
            start = max(0, end - length)
            inputs.append(sequence[start:end])
            targets.append(sequence[start + 1 : end + 1])
            end = start
    out_inputs = np.zeros((len(inputs), length), dtype=np.int64)
    out_targets = np.zeros((len(inputs), length), dtype=np.int64)
    for row, (x, y) in enumerate(zip(inputs, targets, strict=True)):
        out_inputs[row, length - len(x) :] = x
        out_targets[row, length - len(y) :] = y
    return out_inputs, out_targets


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
