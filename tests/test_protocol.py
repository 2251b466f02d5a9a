"""The leave-one-out protocol: targets, no leakage, history windows, sliding-window training examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec.data.dataset import Dataset
from genrec.protocol import KS, Split, leave_one_out, pad_left


def make_dataset(sequences: list[list[int]], n_items: int | None = None) -> Dataset:
    n_items = n_items or max(max(s) for s in sequences)
    items = [{"item_id": i, "title": f"item {i}"} for i in range(1, n_items + 1)]
    return Dataset("t", [np.asarray(s, dtype=np.int64) for s in sequences], items)


def test_targets_and_histories_on_a_small_example() -> None:
    split = leave_one_out(make_dataset([[1, 2, 3, 4], [5, 6], [7, 8, 9], [1]]), max_history=3)
    assert [s.tolist() for s in split.train] == [[1, 2], [5, 6], [7], [1]]  # short users only train
    assert split.valid_targets.tolist() == [3, 8] and split.test_targets.tolist() == [4, 9]
    assert split.valid_histories.tolist() == [[0, 1, 2], [0, 0, 7]]
    assert split.test_histories.tolist() == [[1, 2, 3], [0, 7, 8]]
    assert split.valid_histories.dtype == np.int64 and split.test_targets.dtype == np.int64


def test_history_is_truncated_to_the_most_recent_twenty() -> None:
    long = list(range(1, 31))
    split = leave_one_out(make_dataset([long]))
    assert split.max_history == 20 and split.test_histories.shape == (1, 20)
    assert split.test_histories[0].tolist() == long[-21:-1]
    assert split.valid_histories[0].tolist() == long[-22:-2]


def test_pad_left() -> None:
    padded = pad_left([np.array([1, 2, 3]), np.array([], dtype=np.int64), np.array([4])], 2)
    assert padded.tolist() == [[2, 3], [0, 0], [0, 4]]
    assert pad_left([], 5).shape == (0, 5)


sequences_strategy = st.lists(
    st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=40), min_size=1, max_size=25
)


@settings(max_examples=50, deadline=None)
@given(sequences=sequences_strategy, max_history=st.integers(min_value=1, max_value=25))
def test_split_properties(sequences: list[list[int]], max_history: int) -> None:
    split = leave_one_out(make_dataset(sequences, n_items=30), max_history=max_history)
    evaluated = [s for s in sequences if len(s) >= 3]

    assert len(split.train) == len(sequences)
    assert split.valid_targets.tolist() == [s[-2] for s in evaluated]
    assert split.test_targets.tolist() == [s[-1] for s in evaluated]
    assert split.valid_histories.shape == split.test_histories.shape == (len(evaluated), max_history)
    for train, full in zip(split.train, sequences, strict=True):
        # No leakage: training keeps exactly what comes before the validation target.
        assert train.tolist() == (full[:-2] if len(full) >= 3 else full)
    for row, full in enumerate(evaluated):
        for histories, cut in ((split.valid_histories, len(full) - 2), (split.test_histories, len(full) - 1)):
            kept = full[:cut][-max_history:]
            assert histories[row, max_history - len(kept) :].tolist() == kept  # most recent, right-aligned
            assert not histories[row, : max_history - len(kept)].any()  # left padding is 0

    histories, targets = split.training_examples()
    assert len(targets) == len(histories) == sum(len(s) - 1 for s in split.train)
    assert histories.shape[1] == max_history
    # every example is a prefix of a training sequence followed by its next item
    expected = [(s[max(0, t - max_history) : t].tolist(), int(s[t])) for s in split.train for t in range(1, len(s))]
    for (history, target), row, got in zip(expected, histories, targets, strict=True):
        assert got == target
        assert row[max_history - len(history) :].tolist() == history and not row[: max_history - len(history)].any()


def test_users_below_three_items_only_train() -> None:
    split = leave_one_out(make_dataset([[1], [1, 2], [2, 1]]))
    assert len(split.valid_targets) == len(split.test_targets) == 0
    assert split.valid_histories.shape == (0, 20)
    histories, targets = split.training_examples()
    assert targets.tolist() == [2, 1] and histories.shape == (2, 20)


def test_protocol_record() -> None:
    split = leave_one_out(make_dataset([[1, 2, 3], [3, 2, 1, 2], [1]]))
    record = split.record()
    assert record["max_history"] == 20 and record["users_valid"] == record["users_test"] == 2
    assert record["metrics"] == [f"{m}@{k}" for k in KS for m in ("recall", "ndcg")]


@pytest.mark.slow
def test_real_beauty_split() -> None:
    directory = Path("/work/shared/data/beauty")
    if not directory.is_dir():
        pytest.skip(f"the prepared Beauty data is not on this machine ({directory})")
    from genrec.data.format import read_dataset

    dataset = read_dataset(directory)
    split = leave_one_out(dataset)
    assert (dataset.n_users, dataset.n_items, dataset.n_interactions) == (22_363, 12_101, 198_502)
    assert len(split.test_targets) == len(split.valid_targets) == 22_363  # 5-core: every user is evaluated
    histories, targets = split.training_examples()
    assert len(targets) == 198_502 - 3 * 22_363  # each user: len - 2 training items, len - 3 examples
    _, window_targets = split.training_windows()
    assert np.array_equal(np.sort(window_targets[window_targets != 0]), np.sort(targets))


def test_training_windows_cover_every_target_once() -> None:
    sequences = [np.array([1, 2, 3, 4, 5, 6, 7]), np.array([8]), np.array([9, 10])]
    empty = np.zeros((0, 3), dtype=np.int64)
    split = Split(sequences, empty, empty[:, 0], empty, empty[:, 0], max_history=3)
    inputs, targets = split.training_windows()
    assert inputs.shape == targets.shape == (3, 3)
    assert sorted(targets[targets != 0].tolist()) == [2, 3, 4, 5, 6, 7, 10]
    # Inputs are the targets shifted by one, left-padded.
    assert inputs.tolist() == [[4, 5, 6], [1, 2, 3], [0, 0, 9]]
    assert targets.tolist() == [[5, 6, 7], [2, 3, 4], [0, 0, 10]]
    # The same targets as the sliding-window examples, each once.
    _, examples = split.training_examples()
    assert sorted(examples.tolist()) == sorted(targets[targets != 0].tolist())
