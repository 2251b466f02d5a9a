"""Recall@K and NDCG@K against a per-user brute-force reference; evaluate() batching; most-popular."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genrec.evaluation import evaluate, most_popular, rank_metrics, under_protocol
from genrec.protocol import KS


def reference(ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    """One user at a time, straight from the definitions (one relevant item per user)."""
    totals = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg")}
    for row, target in zip(ranked.tolist(), targets.tolist(), strict=True):
        for k in ks:
            top = row[:k]
            if target in top:
                rank = top.index(target) + 1
                totals[f"recall@{k}"] += 1.0
                totals[f"ndcg@{k}"] += 1.0 / math.log2(rank + 1)  # the ideal DCG is 1
    return {name: value / len(targets) for name, value in totals.items()}


@pytest.mark.parametrize("seed", range(5))
def test_rank_metrics_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, depth = 200, 40, 25
    # a ranking is a permutation prefix; the target is often, not always, inside the top 20
    ranked = np.stack([rng.permutation(n_items)[:depth] + 1 for _ in range(n_users)])
    targets = rng.integers(1, n_items + 1, size=n_users)
    got = rank_metrics(ranked, targets)
    want = reference(ranked, targets, KS)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], abs=1e-12), name
    assert 0 < got["recall@20"] < 1  # the random data exercises hits and misses


def test_custom_ks_and_repeated_items() -> None:
    ranked = np.array([[3, 3, 1, 2], [2, 1, 3, 3]])
    targets = np.array([3, 3])
    got = rank_metrics(ranked, targets, ks=(1, 3))
    assert got == pytest.approx(reference(ranked, targets, (1, 3)))
    assert got["recall@1"] == 0.5 and got["ndcg@1"] == 0.5  # the first occurrence counts


def test_hit_at_rank_one_and_miss() -> None:
    ranked = np.tile(np.arange(1, 21), (2, 1))
    hit = rank_metrics(ranked[:1], np.array([1]))
    assert all(hit[f"recall@{k}"] == 1.0 and hit[f"ndcg@{k}"] == 1.0 for k in KS)
    miss = rank_metrics(ranked[:1], np.array([99]))
    assert all(value == 0.0 for value in miss.values())
    half = rank_metrics(ranked, np.array([1, 99]))
    assert half["recall@5"] == 0.5 and half["ndcg@20"] == 0.5


def test_hit_just_inside_and_outside_k() -> None:
    ranked = np.arange(1, 21)[None, :]
    at5 = rank_metrics(ranked, np.array([5]))  # rank 5
    assert at5["recall@5"] == 1.0 and at5["ndcg@5"] == pytest.approx(1 / math.log2(6))
    at6 = rank_metrics(ranked, np.array([6]))
    assert at6["recall@5"] == 0.0 and at6["ndcg@5"] == 0.0
    assert at6["recall@10"] == 1.0 and at6["ndcg@10"] == pytest.approx(1 / math.log2(7))


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="at least 20"):
        rank_metrics(np.ones((3, 10), dtype=np.int64), np.ones(3, dtype=np.int64))
    with pytest.raises(ValueError, match="users"):
        rank_metrics(np.ones((3, 20), dtype=np.int64), np.ones(2, dtype=np.int64))


def test_no_users_gives_zeros() -> None:
    metrics = rank_metrics(np.zeros((0, 20), dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert metrics == {f"{m}@{k}": 0.0 for k in KS for m in ("recall", "ndcg")}


def test_evaluate_batches_like_one_call() -> None:
    rng = np.random.default_rng(3)
    n_items = 50
    histories = rng.integers(0, n_items + 1, size=(37, 20))
    targets = rng.integers(1, n_items + 1, size=37)
    calls: list[int] = []

    def recommend(batch: np.ndarray, k: int) -> np.ndarray:
        calls.append(len(batch))
        # a deterministic per-user ranking: the last history item first, then the catalog
        return np.stack([np.roll(np.arange(1, n_items + 1), -int(h[-1]) + 1)[:k] for h in batch])

    batched = evaluate(recommend, histories, targets, batch_size=8)
    assert calls == [8, 8, 8, 8, 5]
    assert batched == evaluate(recommend, histories, targets, batch_size=1000)
    assert evaluate(recommend, histories[:0], targets[:0]) == rank_metrics(
        np.zeros((0, 20), dtype=np.int64), np.zeros(0, dtype=np.int64)
    )


def test_most_popular() -> None:
    train = [np.array([3, 3, 2]), np.array([3, 1]), np.array([2, 5])]
    recommend = most_popular(train, n_items=6)
    top = recommend(np.zeros((2, 20), dtype=np.int64), 6)
    # counts: 3 -> 3, 2 -> 2, 1 and 5 -> 1 (ties by item id), 4 and 6 -> 0
    assert top.tolist() == [[3, 2, 1, 5, 4, 6]] * 2
    top[0, 0] = 99  # each call returns a writable copy, not a view of shared state
    assert recommend(np.zeros((1, 20), dtype=np.int64), 2).tolist() == [[3, 2]]
    metrics = evaluate(most_popular(train, 25), np.zeros((2, 20), dtype=np.int64), np.array([3, 2]))
    assert metrics["recall@5"] == 1.0 and metrics["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 2)


def test_most_popular_under_the_exclusion_protocol_skips_each_users_history() -> None:
    recommend = under_protocol(most_popular([np.array([1, 1, 1, 2, 2, 3, 4])], 6), exclude_history=True)
    ranked = recommend(np.array([[0, 1], [3, 2]]), 3)
    assert ranked.tolist() == [[2, 3, 4], [1, 4, 5]]
    assert under_protocol(recommend, exclude_history=False) is recommend
