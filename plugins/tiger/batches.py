"""Length-bucketed training batches: examples of similar history length share a batch, padding trimmed."""

from __future__ import annotations

import numpy as np


def history_lengths(histories: np.ndarray) -> np.ndarray:
    """Non-padding items per left-padded history row."""
    return (np.asarray(histories) != 0).sum(axis=1)


def bucketed_order(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Example indices per batch for one epoch, a pure function of (seed, epoch).

    Examples are shuffled, then stably sorted by length, so each consecutive run of ``batch_size`` is
    one length bucket with random members; the order of the batches is shuffled too.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def trimmed(histories: np.ndarray) -> np.ndarray:
    """Drop the leading columns that are padding in every row (keeps at least one column)."""
    histories = np.asarray(histories)
    if histories.shape[1] == 0:
        return histories
    longest = max(1, int(history_lengths(histories).max(initial=0)))
    return histories[:, histories.shape[1] - longest :]
