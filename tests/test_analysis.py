"""The semantic-domination analysis: kNN overlap, code agreement, the report and its plot."""

from __future__ import annotations

import numpy as np
import pytest

from genrec.analysis import (
    code_agreement,
    code_labels,
    domination_report,
    knn_overlap,
    nearest_neighbours,
    plot_domination,
)
from genrec.contracts import ItemEmbeddings


def _clustered(n: int, dim: int, clusters: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) * spread
    return (centres[rng.integers(clusters, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


def _sources(n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """A semantic embedding (high dimension, large variance) and an unrelated collaborative one."""
    return _clustered(n, 64, 8, 3.0, seed=1), _clustered(n, 8, 8, 0.5, seed=2)


def test_nearest_neighbours_match_brute_force_and_exclude_the_item_itself():
    x = np.random.default_rng(0).normal(size=(50, 6))
    near = nearest_neighbours(x, k=4, chunk=7)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    expected = np.argsort(-similarity, axis=1)[:, :4]
    assert all(set(a) == set(b) for a, b in zip(near.tolist(), expected.tolist(), strict=True))
    assert not (near == np.arange(50)[:, None]).any()
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(x, k=50)


def test_knn_overlap_is_one_for_itself_and_near_chance_for_unrelated_embeddings():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 16))
    assert knn_overlap(x, x, k=10) == 1.0
    assert knn_overlap(x, 3 * x, k=10) == 1.0  # cosine neighbours ignore scale
    chance = 10 / 399
    assert knn_overlap(x, rng.normal(size=(400, 16)), k=10) == pytest.approx(chance, abs=0.02)
    assert knn_overlap(x, x[::-1].copy(), k=5, chunk=33) < 0.1
    assert knn_overlap(ItemEmbeddings(x.astype(np.float32)), x, k=10, chunk=64) == 1.0
    with pytest.raises(ValueError, match="different items"):
        knn_overlap(x, x[:10])


def test_code_agreement_is_one_for_identical_or_relabelled_codes_and_near_zero_for_random():
    rng = np.random.default_rng(0)
    codes = rng.integers(8, size=(500, 3))
    assert code_agreement(codes, codes) == pytest.approx(1.0)
    relabelled = codes.copy()
    relabelled[:, 0] = (codes[:, 0] + 3) % 8
    assert code_agreement(codes, relabelled) == pytest.approx(1.0)
    assert abs(code_agreement(codes, rng.integers(8, size=(500, 3)))) < 0.05
    # levels=None compares full codes: the same first level with a random second one agrees less.
    coarse = rng.integers(3, size=(500, 2))
    resampled = np.stack([coarse[:, 0], rng.integers(3, size=500)], 1)
    assert code_agreement(coarse, resampled) == pytest.approx(1.0)
    assert code_agreement(coarse, resampled, levels=None) < 0.7


def test_code_labels_group_items_by_code_prefix():
    codes = np.array([[0, 1], [0, 2], [1, 1], [0, 1]])
    first = code_labels(codes)
    assert first[0] == first[1] == first[3] != first[2]
    full = code_labels(codes, levels=None)
    assert full[0] == full[3] and len(set(full.tolist())) == 3


def _kmeans_codes(x: np.ndarray) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(8, n_init=3, random_state=0).fit_predict(x)[:, None]


def test_report_detects_semantic_domination_of_a_naive_concatenation():
    semantic, collaborative = _sources()
    dominated = np.hstack([semantic * 5, collaborative])
    report = domination_report(dominated, semantic, collaborative, quantize=_kmeans_codes)
    assert report["knn_semantic"] > 0.5
    assert report["knn_semantic"] > 3 * report["knn_collaborative"]
    assert report["ami_semantic"] > 0.8 > 0.2 > report["ami_collaborative"]
    # Giving the collaborative part the weight turns the report around.
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    flipped = np.hstack([unit(semantic), 5 * unit(collaborative)])
    other = domination_report(flipped, semantic, collaborative, quantize=_kmeans_codes)
    assert other["knn_collaborative"] > other["knn_semantic"]
    assert other["ami_collaborative"] > other["ami_semantic"]
    assert report["knn_chance"] == pytest.approx(10 / 299)


def test_report_without_quantizer_and_from_item_embeddings():
    semantic, collaborative = _sources(120)
    fused = ItemEmbeddings(np.hstack([semantic, collaborative]), views={"semantic": semantic})
    report = domination_report(fused, ItemEmbeddings(semantic, modality="semantic"), collaborative, k=5)
    assert set(report) == {"knn_semantic", "knn_collaborative", "knn_chance"}


def test_plot_domination_writes_a_png(tmp_path):
    reports = {
        "concat": {
            "knn_semantic": 0.8,
            "knn_collaborative": 0.1,
            "knn_chance": 0.01,
            "ami_semantic": 0.9,
            "ami_collaborative": 0.05,
        },
        "prorec-align": {
            "knn_semantic": 0.4,
            "knn_collaborative": 0.5,
            "knn_chance": 0.01,
            "ami_semantic": 0.4,
            "ami_collaborative": 0.5,
        },
    }
    path = plot_domination(reports, tmp_path / "plots" / "domination.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_knn = plot_domination({"x": {"knn_semantic": 0.3, "knn_collaborative": 0.2}}, tmp_path / "b.png")
    assert only_knn.stat().st_size > 1000
