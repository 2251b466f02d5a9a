"""Measuring semantic domination: how much of a fused embedding's structure each source explains.

For a fused embedding ``F`` and its sources ``E_S`` (semantic) and ``E_C`` (collaborative):

* ``knn_overlap``: the mean fraction of an item's k nearest neighbours (cosine, the item itself left
  out) that two embeddings share. Identical structure gives 1; unrelated structure about k / (n - 1).
* ``code_agreement``: adjusted mutual information between two code assignments, by default of their
  first level (the coarse clusters the generator decodes first). Comparing full codes is possible with
  ``levels=None`` but slow for large codebooks, and meaningless once codes are unique per item.

Semantic domination shows as ``F`` agreeing with ``E_S`` far more than with ``E_C``. The module is
generic: it works on any arrays and any quantizer given as a function.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from genrec.contracts import ItemEmbeddings

Embeddings = ItemEmbeddings | np.ndarray


def _matrix(embeddings: Embeddings) -> np.ndarray:
    vectors = embeddings.vectors if isinstance(embeddings, ItemEmbeddings) else embeddings
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n_items, dim), got shape {vectors.shape}")
    return vectors


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_neighbours(x: Embeddings, k: int = 10, chunk: int = 1024) -> np.ndarray:
    """(n, k) indices of each row's k most cosine-similar other rows, in chunks of ``chunk`` rows.

    Memory stays at ``chunk * n`` similarities, so tens of thousands of items fit.
    """
    unit = _unit_rows(_matrix(x))
    n = len(unit)
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} for {n} items, got {k}")
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        similarity = unit[rows] @ unit.T
        similarity[np.arange(len(rows)), rows] = -np.inf  # an item is not its own neighbour
        out[rows] = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    return out


def knn_overlap(a: Embeddings, b: Embeddings, k: int = 10, chunk: int = 1024) -> float:
    """Mean over items of |kNN_a(i) ∩ kNN_b(i)| / k (cosine neighbours, the item itself excluded)."""
    left, right = _matrix(a), _matrix(b)
    if len(left) != len(right):
        raise ValueError(f"embeddings cover different items: {len(left)} and {len(right)} rows")
    near_a, near_b = nearest_neighbours(left, k, chunk), nearest_neighbours(right, k, chunk)
    shared = 0
    for start in range(0, len(near_a), chunk):
        block_a, block_b = near_a[start : start + chunk], near_b[start : start + chunk]
        shared += int((block_a[:, :, None] == block_b[:, None, :]).any(axis=2).sum())
    return shared / (len(near_a) * k)


def code_labels(codes: np.ndarray, levels: int | None = 1) -> np.ndarray:
    """One cluster label per item from the first ``levels`` code columns (all of them with None)."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    prefix = codes if levels is None else codes[:, :levels]
    return np.unique(prefix, axis=0, return_inverse=True)[1].reshape(-1)


def code_agreement(codes_a: np.ndarray, codes_b: np.ndarray, levels: int | None = 1) -> float:
    """Adjusted mutual information of the two code assignments' first ``levels`` levels (1 = identical)."""
    from sklearn.metrics import adjusted_mutual_info_score

    if len(codes_a) != len(codes_b):
        raise ValueError(f"codes cover different items: {len(codes_a)} and {len(codes_b)} rows")
    return float(adjusted_mutual_info_score(code_labels(codes_a, levels), code_labels(codes_b, levels)))


def domination_report(
    fused: Embeddings,
    semantic: Embeddings,
    collaborative: Embeddings,
    quantize: Callable[[np.ndarray], np.ndarray] | None = None,
    k: int = 10,
    levels: int | None = 1,
) -> dict[str, float]:
    """How much of ``fused`` each source explains.

    ``quantize`` maps an (n, d) embedding to (n, levels) codes (for example a fresh quantizer's
    ``fit(x).encode(x)``); without it the code agreements are left out. ``knn_chance`` is what an
    unrelated embedding would score.
    """
    f, s, c = _matrix(fused), _matrix(semantic), _matrix(collaborative)
    report: dict[str, float] = {
        "knn_semantic": knn_overlap(f, s, k),
        "knn_collaborative": knn_overlap(f, c, k),
        "knn_chance": k / (len(f) - 1),
    }
    if quantize is not None:
        codes_f = np.asarray(quantize(f))
        report["ami_semantic"] = code_agreement(codes_f, np.asarray(quantize(s)), levels)
        report["ami_collaborative"] = code_agreement(codes_f, np.asarray(quantize(c)), levels)
    return report


def plot_domination(reports: Mapping[str, Mapping[str, Any]], path: str | Path) -> Path:
    """A PNG bar chart: per fused embedding, its kNN overlap (and code AMI) with each source."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from genrec.artifacts import atomic_write_bytes

    names = list(reports)
    panels = [("kNN overlap", "knn")]
    if any("ami_semantic" in report for report in reports.values()):
        panels.append(("code agreement (AMI)", "ami"))
    # A figure object of its own (no pyplot), so no global backend or state is touched.
    figure = Figure(figsize=(max(4.0, 1.4 * len(names) + 2.0) * len(panels), 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    x = np.arange(len(names))
    width = 0.38
    bars = ((-width / 2, "semantic", "tab:orange"), (width / 2, "collaborative", "tab:blue"))
    for axis, (title, prefix) in zip(axes, panels, strict=True):
        for offset, source, colour in bars:
            values = [float(reports[name].get(f"{prefix}_{source}", np.nan)) for name in names]
            axis.bar(x + offset, values, width, label=f"with {source}", color=colour)
        if prefix == "knn":
            chance = [float(r["knn_chance"]) for r in reports.values() if "knn_chance" in r]
            if chance:
                axis.axhline(max(chance), color="grey", linestyle=":", linewidth=1, label="chance")
        axis.set_xticks(x, names, rotation=20, ha="right")
        axis.set_ylim(0, 1)
        axis.set_title(title)
        axis.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    return atomic_write_bytes(path, buffer.getvalue())
