"""Item-level Recall@K and NDCG@K over the full catalog, vectorised."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genrec import distributed
from genrec.protocol import KS, Split
from genrec.threads import fit_threads


def target_ranks(ranked: np.ndarray, targets: np.ndarray, k: int = max(KS)) -> np.ndarray:
    """Each target's 1-based rank in its user's top ``k`` (``ranked``: (users, >= k) ids), 0 when absent."""
    ranked = np.asarray(ranked)
    targets = np.asarray(targets).reshape(-1, 1)
    if ranked.ndim != 2 or len(ranked) != len(targets):
        raise ValueError(f"ranked must be (users, K) with {len(targets)} users, got {ranked.shape}")
    if ranked.shape[1] < k:
        raise ValueError(f"need at least {k} ranked items per user, got {ranked.shape[1]}")
    hits = ranked[:, :k] == targets
    return np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0).astype(np.int64)


def metrics_of_ranks(ranks: np.ndarray, ks: tuple[int, ...] = KS, errors: bool = False) -> dict[str, float]:
    """Recall@K and NDCG@K from per-user target ranks (1-based, 0 = not ranked); ``errors``: see rank_metrics."""
    ranks = np.asarray(ranks)
    found = ranks > 0
    gain = np.where(found, 1.0 / np.log2(np.maximum(ranks, 1) + 1.0), 0.0)
    metrics: dict[str, float] = {}
    for k in ks:
        within = found & (ranks <= k)
        for name, values in ((f"recall@{k}", within.astype(float)), (f"ndcg@{k}", np.where(within, gain, 0.0))):
            metrics[name] = float(values.mean()) if len(ranks) else 0.0
            if errors:
                metrics[f"{name}_se"] = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
    return metrics


def encode_ranks(**ranks: np.ndarray) -> dict[str, str]:
    """Per-user ranks (0..255) as compact base64 strings, for a results file: ``{"<name>_rank": ...}``."""
    import base64

    packed = {name: np.asarray(r, dtype=np.uint8).tobytes() for name, r in ranks.items()}
    return {f"{name}_rank": base64.b64encode(data).decode() for name, data in packed.items()}


def decode_ranks(encoded: str) -> np.ndarray:
    import base64

    return np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).astype(np.int64)


def rank_metrics(
    ranked: np.ndarray, targets: np.ndarray, ks: tuple[int, ...] = KS, errors: bool = False
) -> dict[str, float]:
    """``ranked``: (users, >= max(ks)) item ids, best first; ``targets``: (users,) item ids.

    With one relevant item per user, Recall@K is the hit rate and NDCG@K is 1/log2(rank + 1).
    ``errors`` adds each metric's standard error over users as ``<metric>_se``.
    """
    return metrics_of_ranks(target_ranks(ranked, targets, max(ks)), ks, errors)


def evaluate(
    recommend: Callable[[np.ndarray, int], np.ndarray],
    histories: np.ndarray,
    targets: np.ndarray,
    batch_size: int = 1024,
    ks: tuple[int, ...] = KS,
    errors: bool = False,
) -> dict[str, float]:
    """Rank the catalog for every history in batches and score the targets (``errors``: see rank_metrics)."""
    return metrics_of_ranks(evaluate_ranks(recommend, histories, targets, batch_size, max(ks)), ks, errors)


def evaluate_ranks(
    recommend: Callable[[np.ndarray, int], np.ndarray],
    histories: np.ndarray,
    targets: np.ndarray,
    batch_size: int = 1024,
    k: int = max(KS),
) -> np.ndarray:
    """Each user's target rank in the top ``k`` of ``recommend`` (see :func:`target_ranks`).

    Under ``torchrun`` each rank ranks its block of users and the ranked lists are gathered in order,
    so the result equals the single-process one (for a ``recommend`` that ranks each user on its own);
    every rank must call this.
    """
    from genrec.console import progress

    fit_threads()
    mine = distributed.shard(histories)
    starts = range(0, len(mine), batch_size)
    ranked = [recommend(mine[start : start + batch_size], k) for start in progress(starts, "ranking", len(starts))]
    local = np.concatenate(ranked) if ranked else np.zeros((0, k), np.int64)
    return target_ranks(distributed.all_gather_rows(local), targets, k)


def split_ranks(recommend: Callable[[np.ndarray, int], np.ndarray], split: Split) -> dict[str, np.ndarray]:
    """Each validation user's target rank, then each test user's (see :func:`evaluate_ranks`)."""
    return {
        "valid": evaluate_ranks(recommend, split.valid_histories, split.valid_targets),
        "test": evaluate_ranks(recommend, split.test_histories, split.test_targets),
    }


def under_protocol(
    recommend: Callable[..., np.ndarray], exclude_history: bool
) -> Callable[[np.ndarray, int], np.ndarray]:
    """``recommend`` as the protocol ranks: with ``exclude_history``, never a history item."""
    if not exclude_history:
        return recommend
    return lambda histories, k: recommend(histories, k, exclude_history=True)


Recommend = Callable[[np.ndarray, int], np.ndarray]


def checked_ids(recommend: Recommend, n_items: int, where: str) -> Recommend:
    """``recommend`` whose every list is checked: (users, k) integer ids in 1..n_items, or one clear error."""
    from genrec.errors import ComponentError

    def checked(histories: np.ndarray, k: int) -> np.ndarray:
        ranked = recommend(histories, k)
        if not isinstance(ranked, np.ndarray) or ranked.shape != (len(histories), k):
            shape = getattr(ranked, "shape", type(ranked).__name__)
            raise ComponentError(f"{where} returned {shape} for {len(histories)} users and k={k}")
        if not np.issubdtype(ranked.dtype, np.integer):
            raise ComponentError(f"{where} returned {ranked.dtype} item ids; integers 1..{n_items} are needed")
        outside = ranked[(ranked < 1) | (ranked > n_items)]
        if len(outside):
            raise ComponentError(f"{where} recommended item id {outside[0]}, outside the catalog's 1..{n_items}")
        return ranked

    return checked


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
