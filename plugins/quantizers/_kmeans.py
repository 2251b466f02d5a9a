"""A small, deterministic k-means (greedy k-means++ init, Lloyd iterations) shared by the quantizers.

Plain numpy: on 10^4 x 384 embeddings with k = 256 it matches scikit-learn's speed, and it adds what the
quantizers need beyond it: a k larger than the number of distinct points (the codebook shrinks to the
points themselves) and a balanced, capacity-constrained assignment.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

_CHUNK = 16384  # rows per distance block, to bound memory on large item sets


def squared_distances(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """(n, k) squared Euclidean distances, clipped at 0 against rounding."""
    d = (x * x).sum(1)[:, None] - 2.0 * (x @ centroids.T) + (centroids * centroids).sum(1)[None, :]
    return np.maximum(d, 0.0, out=d)


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and squared distance to each row's nearest centroid (first one on ties)."""
    labels = np.empty(len(x), dtype=np.int64)
    dist = np.empty(len(x), dtype=x.dtype)
    for start in range(0, len(x), _CHUNK):
        d = squared_distances(x[start : start + _CHUNK], centroids)
        labels[start : start + _CHUNK] = d.argmin(1)
        dist[start : start + _CHUNK] = d[np.arange(len(d)), labels[start : start + _CHUNK]]
    return labels, dist


def balanced_assign(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Assign rows to centroids, at most ceil(n / k) rows each, closest pairs first.

    In rounds: every unassigned row proposes its nearest centroid that still has room; each centroid
    keeps its closest proposers up to its remaining room (ties by row order). Each round either assigns
    every proposer or fills a centroid, so it ends within k + 1 rounds, and it is deterministic.
    """
    n, k = len(x), len(centroids)
    room = np.full(k, math.ceil(n / k), dtype=np.int64)
    d = squared_distances(x, centroids)
    labels = np.full(n, -1, dtype=np.int64)
    pending = np.arange(n)
    while len(pending):
        sub = d[pending]
        sub[:, room == 0] = np.inf
        choice = sub.argmin(1)
        dist = sub[np.arange(len(pending)), choice]
        order = np.lexsort((pending, dist, choice))  # by centroid, then distance, then row
        chosen = choice[order]
        starts = np.searchsorted(chosen, chosen, side="left")
        rank = np.arange(len(order)) - starts
        accept = rank < room[chosen]
        labels[pending[order[accept]]] = chosen[accept]
        room -= np.bincount(chosen[accept], minlength=k)
        pending = np.sort(pending[order[~accept]])
    return labels


def _distinct(x: np.ndarray) -> np.ndarray:
    """The distinct rows of x, in order of first appearance."""
    _, first = np.unique(x, axis=0, return_index=True)
    return x[np.sort(first)]


def _kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator, trials: int = 0) -> np.ndarray:
    """Greedy k-means++: of a few candidates drawn by D^2, keep the one that lowers the potential most."""
    n = len(x)
    trials = trials or 2 + int(math.log(k))
    norms = (x * x).sum(1)
    centers = np.empty((k, x.shape[1]), dtype=x.dtype)
    first = int(rng.integers(n))
    centers[0] = x[first]
    closest = np.maximum(norms - 2.0 * (x @ x[first]) + norms[first], 0.0)
    for c in range(1, k):
        total = float(closest.sum())
        if total <= 0.0:  # every point already is a center; cannot happen when k <= distinct points
            centers[c] = x[int(rng.integers(n))]
            continue
        cumulative = np.cumsum(closest, dtype=np.float64)
        candidates = np.searchsorted(cumulative, rng.random(trials) * cumulative[-1], side="right")
        candidates = np.minimum(candidates, n - 1)
        d = np.maximum(norms[:, None] - 2.0 * (x @ x[candidates].T) + norms[candidates][None, :], 0.0)
        d = np.minimum(d, closest[:, None])
        best = int(d.sum(0).argmin())
        centers[c] = x[candidates[best]]
        closest = d[:, best]
    return centers


def _update(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Cluster means; an emptied cluster takes the point farthest from its centroid."""
    k = len(centroids)
    counts = np.bincount(labels, minlength=k)
    # A sparse (k, n) membership matrix sums each cluster's rows in one pass over x.
    members = sparse.csr_matrix((np.ones(len(x), dtype=np.float64), (labels, np.arange(len(x)))), shape=(k, len(x)))
    sums = np.asarray(members @ x.astype(np.float64))
    used = np.flatnonzero(counts)
    new = centroids.copy()
    new[used] = (sums[used] / counts[used, None]).astype(x.dtype)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        far = np.argsort(-dist, kind="stable")[: len(empty)]
        new[empty] = x[far]
    return new


def kmeans(
    x: np.ndarray,
    k: int,
    seed: int | np.random.SeedSequence | list[int] = 0,
    n_init: int = 1,
    max_iter: int = 50,
    tol: float = 1e-4,
    balanced: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (k', dim) and labels (n,) of x, with k' = min(k, distinct rows of x).

    When x has no more than k distinct rows the centroids are those rows, in order of first appearance
    (balanced: every row is its own centroid). Labels are always the assignment to the returned
    centroids, so ``assign(x, centroids, balanced)`` reproduces them.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if len(x) == 0:
        raise ValueError("k-means needs at least one point")
    distinct = x if balanced and len(x) <= k else _distinct(x)
    if len(distinct) <= k:
        return distinct, assign(x, distinct, balanced)
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray] | None = None
    for _ in range(max(1, n_init)):
        centroids = _kmeans_plus_plus(x, k, rng)
        previous = np.inf
        for _ in range(max_iter):
            labels, dist = nearest(x, centroids)
            if balanced:
                labels = balanced_assign(x, centroids)
                dist = ((x - centroids[labels]) ** 2).sum(1)
            inertia = float(dist.sum(dtype=np.float64))
            centroids = _update(x, labels, centroids, dist)
            if previous - inertia <= tol * max(inertia, 1e-12):
                break
            previous = inertia
        labels = assign(x, centroids, balanced)
        inertia = float(((x - centroids[labels]) ** 2).sum(dtype=np.float64))
        if best is None or inertia < best[0]:
            best = (inertia, centroids)
    assert best is not None
    centroids = best[1]
    return centroids, assign(x, centroids, balanced)


def assign(x: np.ndarray, centroids: np.ndarray, balanced: bool = False) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return balanced_assign(x, centroids) if balanced else nearest(x, centroids)[0]


def as_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Embeddings as a float32 (n, dim) array with n >= 1."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"embeddings must be a non-empty (n, dim) array, got shape {x.shape}")
    return x
