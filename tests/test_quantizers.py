"""The built-in quantizers: kmeans (hierarchical), rkmeans (residual) and rqvae."""

import subprocess
import sys

import numpy as np
import pytest

import genrec_plugins.quantizers as plugin
from genrec.errors import ConfigError
from genrec.testing.checks import check_quantizer
from genrec_plugins.quantizers._kmeans import balanced_assign, kmeans
from genrec_plugins.quantizers.kmeans import HierarchicalKMeans
from genrec_plugins.quantizers.rkmeans import ResidualKMeans
from genrec_plugins.quantizers.rqvae import RQVAE


def clustered(n: int = 240, dim: int = 12, clusters: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)) * 4
    return (centers[rng.integers(clusters, size=n)] + rng.normal(size=(n, dim))).astype(np.float32)


def small_rqvae(**options) -> RQVAE:
    defaults = dict(levels=2, codebook_size=8, latent_dim=8, hidden_dims=(32,), epochs=4, batch_size=64, device="cpu")
    return RQVAE(**{**defaults, **options})


@pytest.mark.parametrize(
    "quantizer",
    [
        ResidualKMeans(levels=2, codebook_size=8),
        HierarchicalKMeans(levels=3, codebook_size=4),
        HierarchicalKMeans(levels=2, codebook_size=6, balanced=True),
        small_rqvae(),
    ],
    ids=["rkmeans", "kmeans", "kmeans-balanced", "rqvae"],
)
def test_quantizers_pass_the_conformance_check(quantizer):
    codes = check_quantizer(quantizer)
    assert codes.shape[1] == quantizer.levels


def test_plugin_registers_the_three_quantizers_lazily(registry, register):
    info = register(plugin, name="quantizers")
    assert info.error is None
    assert registry.names("quantizer") == ["kmeans", "rkmeans", "rqvae"]
    built = registry.create("quantizer", "rqvae", levels="2", hidden_dims="64,32", device="cpu")
    assert built.levels == 2 and built.hidden_dims == (64, 32)
    assert registry.create("quantizer", "kmeans", balanced="true").balanced is True
    with pytest.raises(ConfigError, match="levels"):
        registry.create("quantizer", "rkmeans", levels="0")


def test_plugin_module_imports_light():
    code = (
        "import sys, genrec_plugins.quantizers; "
        "heavy = {'torch', 'sklearn', 'scipy'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rkmeans_reconstruction_improves_with_every_level():
    x = clustered()
    quantizer = ResidualKMeans(levels=3, codebook_size=8).fit(x)
    codes = quantizer.encode(x)
    errors = [float(((x - quantizer.reconstruct(codes[:, :level])) ** 2).sum()) for level in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2]


def test_rkmeans_shrinks_a_codebook_larger_than_the_distinct_points():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 5.0]], dtype=np.float32)
    quantizer = ResidualKMeans(levels=2, codebook_size=16).fit(x)
    assert quantizer.codebook_sizes == (3, 1)  # three distinct points; nothing left for level 2
    codes = quantizer.encode(x)
    assert codes[1, 0] == codes[2, 0] and len(set(codes[:, 0].tolist())) == 3
    np.testing.assert_allclose(quantizer.reconstruct(codes), x)


def test_hierarchical_kmeans_refines_each_first_level_cluster():
    x = clustered(n=300, clusters=5)
    quantizer = HierarchicalKMeans(levels=2, codebook_size=4).fit(x)
    codes = quantizer.encode(x)
    top = quantizer.tree[()]
    for parent in np.unique(codes[:, 0]):
        children = quantizer.tree[(int(parent),)]
        # A child centroid is the mean of items of its parent's cell, so it lies in that cell.
        nearest_top = ((children[:, None, :] - top[None]) ** 2).sum(-1).argmin(1)
        assert (nearest_top == parent).all()
        members = np.flatnonzero(codes[:, 0] == parent)
        # Within a cluster, each item takes its nearest child.
        distances = ((x[members, None, :] - children[None]) ** 2).sum(-1)
        np.testing.assert_array_equal(codes[members, 1], distances.argmin(1))


def test_hierarchical_kmeans_gives_small_clusters_one_code_per_item():
    x = clustered(n=20, clusters=3)
    quantizer = HierarchicalKMeans(levels=2, codebook_size=8).fit(x)
    codes = quantizer.encode(x)
    for parent in np.unique(codes[:, 0]):
        members = codes[:, 0] == parent
        children = quantizer.tree[(int(parent),)]
        assert len(children) == min(8, members.sum())
        if members.sum() <= 8:
            assert len(np.unique(codes[members, 1])) == members.sum()


def test_balanced_kmeans_splits_evenly():
    x = clustered(n=203, clusters=3)  # uneven natural clusters, asked for 8 balanced ones
    quantizer = HierarchicalKMeans(levels=2, codebook_size=8, balanced=True).fit(x)
    codes = quantizer.encode(x)
    sizes = np.bincount(codes[:, 0], minlength=8)
    assert sizes.max() <= 26 and sizes.min() >= 203 - 7 * 26
    assert sizes.max() - sizes.min() <= 5
    # 26 items per cluster under 8 codes: at most 4 items share a full code.
    assert np.unique(codes, axis=0, return_counts=True)[1].max() <= 4


def test_balanced_assign_respects_capacity_and_prefers_close_pairs():
    x = np.array([[0.0], [0.1], [0.2], [10.0]], dtype=np.float32)
    centroids = np.array([[0.0], [10.0]], dtype=np.float32)
    # Capacity 2 each: the two points nearest 0 stay, the third goes to the other centroid.
    np.testing.assert_array_equal(balanced_assign(x, centroids), [0, 0, 1, 1])


def test_kmeans_recovers_well_separated_clusters():
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    truth = rng.integers(3, size=150)
    x = centers[truth] + rng.normal(size=(150, 2))
    _, labels = kmeans(x, 3, seed=0)
    # Same partition up to renaming.
    assert len(set(zip(truth.tolist(), labels.tolist(), strict=True))) == 3


def test_rqvae_uses_every_code_and_learns_to_reconstruct():
    x = clustered(n=256, clusters=8)
    quantizer = small_rqvae(epochs=12).fit(x)
    history = quantizer.result.history
    assert history[-1]["valid"]["recon"] < 0.7 * history[0]["valid"]["recon"]
    codes = quantizer.encode(x)
    for level in range(quantizer.levels):
        assert len(np.unique(codes[:, level])) == quantizer.codebook_sizes[level]
    error = ((quantizer.reconstruct(x) - x) ** 2).sum(1).mean()
    assert error < ((x - x.mean(0)) ** 2).sum(1).mean()


def test_rqvae_rejects_bad_options():
    with pytest.raises(ConfigError, match="latent_dim"):
        RQVAE(latent_dim=0)
    with pytest.raises(ConfigError, match="hidden_dims"):
        RQVAE(hidden_dims=(16, 0))


def test_fit_quantizer_hands_the_run_seed_and_device_to_a_fit_that_takes_them() -> None:
    from genrec.contracts import fit_quantizer

    class Plain:
        def fit(self, embeddings):  # noqa: ANN001, ANN202
            self.fitted = True
            return self

    class Keen(Plain):
        def fit(self, embeddings, *, seed=None, device=None):  # noqa: ANN001, ANN202
            self.got = (seed, device)
            return self

    x = np.zeros((4, 2), dtype=np.float32)
    assert fit_quantizer(Plain(), x, 3, "cpu").fitted
    assert fit_quantizer(Keen(), x, 3, "cpu").got == (3, "cpu")


def test_rqvae_training_record_reaches_the_stage_record(tmp_path) -> None:  # noqa: ANN001
    from genrec.config import PipelineConfig, StageSpec
    from genrec.discovery import get_registry
    from genrec.pipeline import Pipeline

    config = PipelineConfig(
        recipe="test",
        data="demo",
        generator=StageSpec("tiger"),
        semantic=StageSpec("tfidf"),
        fuser=StageSpec("semantic"),
        quantizer=StageSpec("rqvae", {"levels": 2, "codebook_size": 8, "epochs": 3}),
        run_dir=tmp_path / "run",
    )
    pipeline = Pipeline(config, get_registry())
    pipeline.prepare()
    fused, key, _ = pipeline.fuse()
    pipeline.quantize(fused, key)
    training = pipeline.stages.records["quantizer"]["training"]
    assert training is not None and training["epochs_run"] == 3
