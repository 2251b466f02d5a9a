"""Item-level Recall@K and NDCG@K over the full catalog, vectorised."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genrec import distributed
from genrec.protocol import KS
from genrec.threads import fit_threads


def rank_metrics(
    ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = KS, errors: bool = False
) -> dict[str, float]:
    """``ranked``: (users, >= max(ks)) item ids, best first; ``targets``: (users,) item ids.

    With one relevant item per user, Recall@K is the hit rate and NDCG@K is 1/log2(rank + 1).
    ``errors`` adds each metric's standard error over users as ``<metric>_se``.
    """
    ranked = np.asarray(ranked)
    targets = np.asarray(targets).reshape(-1, 1)
    if ranked.ndim != 2 or len(ranked) != len(targets):
        raise ValueError(f"ranked must be (users, K) with {len(targets)} users, got {ranked.shape}")
    if ranked.shape[1] < max(ks):
        raise ValueError(f"need at least {max(ks)} ranked items per user, got {ranked.shape[1]}")
    hits = ranked[:, : max(ks)] == targets
    found = hits.any(axis=1)
    position = np.where(found, hits.argmax(axis=1), np.iinfo(np.int64).max)  # 0-based rank
    gain = np.where(found, 1.0 / np.log2(np.minimum(position, 10**9) + 2.0), 0.0)
    metrics: dict[str, float] = {}
    for k in ks:
        within = position < k
        for name, values in ((f"recall@{k}", within.astype(float)), (f"ndcg@{k}", np.where(within, gain, 0.0))):
            metrics[name] = float(values.mean()) if len(targets) else 0.0
            if errors:
                metrics[f"{name}_se"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return metrics


def evaluate(
    recommend: Callable[[np.ndarray, int], np.ndarray],
    histories: np.ndarray,
    targets: np.ndarray,
    batch_size: int = 1024,
    ks: tuple[int, ...] = KS,
    errors: bool = False,
) -> dict[str, float]:
    """Rank the catalog for every history in batches and score the targets (``errors``: see rank_metrics).

    Under ``torchrun`` each rank ranks its block of users and the ranked lists are gathered in order,
    so the metrics equal the single-process ones (for a ``recommend`` that ranks each user on its own);
    every rank must call this.
    """
    fit_threads()
    k = max(ks)
    mine = distributed.shard(histories)
    ranked = [recommend(mine[start : start + batch_size], k) for start in range(0, len(mine), batch_size)]
    local = np.concatenate(ranked) if ranked else np.zeros((0, k), np.int64)
    return rank_metrics(distributed.all_gather_rows(local), targets, ks, errors)


def under_protocol(
    recommend: Callable[..., np.ndarray], exclude_history: bool
) -> Callable[[np.ndarray, int], np.ndarray]:
    """``recommend`` as the protocol ranks: with ``exclude_history``, never a history item."""
    if not exclude_history:
        return recommend
    return lambda histories, k: recommend(histories, k, exclude_history=True)


def most_popular(train: list[np.ndarray], n_items: int) -> Callable[..., np.ndarray]:
    """The most-popular baseline: the same top items for everyone (less their own, when excluded)."""
    counts = np.bincount(np.concatenate(train), minlength=n_items + 1)[1:]
    order = np.argsort(-counts, kind="stable") + 1

    def recommend(histories: np.ndarray, k: int, exclude_history: bool = False) -> np.ndarray:
        if not exclude_history:
            return np.broadcast_to(order[:k], (len(histories), k)).copy()
        wide = order[: k + histories.shape[1]]
        ranked = np.zeros((len(histories), k), dtype=np.int64)
        for row, history in enumerate(histories):
            ranked[row] = wide[~np.isin(wide, history)][:k]
        return ranked

    return recommend
