"""The evaluation protocol: leave-one-out split, recent-history windows, sliding-window training data.

For each user with at least three interactions, the last item is the test target and the second to
last the validation target; everything before is training data. Users with fewer interactions only
train. Histories are the ``max_history`` most recent items, left-padded with 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from genrec.data.dataset import Dataset

KS = (5, 10, 20)


def pad_left(sequences: list[np.ndarray], length: int) -> np.ndarray:
    """The last ``length`` items of each sequence, right-aligned in a zero matrix."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:]
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


@dataclass
class Split:
    train: list[np.ndarray]
    valid_histories: np.ndarray
    valid_targets: np.ndarray
    test_histories: np.ndarray
    test_targets: np.ndarray
    max_history: int
    exclude_history: bool = False  # the protocol option: rankings never hold the user's history items

    def training_examples(self) -> tuple[np.ndarray, np.ndarray]:
        """Every prefix of every training sequence (histories left-padded) and the item that follows."""
        histories: list[np.ndarray] = []
        targets: list[int] = []
        for sequence in self.train:
            for t in range(1, len(sequence)):
                histories.append(sequence[max(0, t - self.max_history) : t])
                targets.append(int(sequence[t]))
        return pad_left(histories, self.max_history), np.asarray(targets, dtype=np.int64)

    def training_windows(self, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The same targets, per position: (windows, length) inputs and next-item targets, left-padded.

        A sequence of n items has n - 1 targets. It is cut, from its end backwards, into windows of at
        most ``length`` (default ``max_history``) inputs; the window's targets are its inputs shifted by
        one. Each target appears in exactly one window, and one causal pass scores all of a window's.
        """
        length = length or self.max_history
        inputs: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        for sequence in self.train:
            sequence = np.asarray(sequence, dtype=np.int64)
            end = len(sequence) - 1  # index of the last target
            while end >= 1:
                start = max(0, end - length)
                inputs.append(sequence[start:end])
                targets.append(sequence[start + 1 : end + 1])
                end = start
        return pad_left(inputs, length), pad_left(targets, length)

    def record(self) -> dict[str, Any]:
        return protocol_record(self.max_history, len(self.valid_targets), len(self.test_targets), self.exclude_history)


def leave_one_out(dataset: Dataset, max_history: int = 20, exclude_history: bool = False) -> Split:
    train: list[np.ndarray] = []
    valid_h: list[np.ndarray] = []
    valid_t: list[int] = []
    test_h: list[np.ndarray] = []
    test_t: list[int] = []
    for sequence in dataset.sequences:
        if len(sequence) < 3:
            train.append(sequence)
            continue
        train.append(sequence[:-2])
        valid_h.append(sequence[:-2])
        valid_t.append(int(sequence[-2]))
        test_h.append(sequence[:-1])
        test_t.append(int(sequence[-1]))
    return Split(
        train=train,
        valid_histories=pad_left(valid_h, max_history),
        valid_targets=np.asarray(valid_t, dtype=np.int64),
        test_histories=pad_left(test_h, max_history),
        test_targets=np.asarray(test_t, dtype=np.int64),
        max_history=max_history,
        exclude_history=exclude_history,
    )


def protocol_record(max_history: int, n_valid: int, n_test: int, exclude_history: bool = False) -> dict[str, Any]:
    return {
        "split": "leave-one-out: last item test, second to last validation, the rest training",
        "max_history": max_history,
        "training_examples": "sliding window: every prefix of each training sequence predicts its next item",
        "ranking": (
            "full catalog less the user's history items"
            if exclude_history
            else "full catalog, all items ranked (history items not removed)"
        ),
        "exclude_history": exclude_history,
        "metrics": [f"{m}@{k}" for k in KS for m in ("recall", "ndcg")],
        "model_selection": "validation ndcg@10; test computed once at the end",
        "users_valid": n_valid,
        "users_test": n_test,
    }
