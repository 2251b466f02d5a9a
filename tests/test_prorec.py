"""PRORec: the adaptation layer, the losses, the prorec-align fuser and the prorec-distill quantizer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import genrec_plugins.prorec as prorec_plugin
from genrec.contracts import ItemEmbeddings, auxiliary_losses_of
from genrec.errors import ConfigError
from genrec.testing.checks import check_fuser, check_quantizer, tiny_recdata
from genrec_plugins.prorec import distill
from genrec_plugins.prorec.adaptation import AdaptationLayer
from genrec_plugins.prorec.align import ProrecAlign
from genrec_plugins.prorec.distill import DistillationLoss, ProrecDistill, parse_options
from genrec_plugins.prorec.losses import cosine_loss, info_nce

FAST = {"epochs": 2, "dim": 16, "heads": 2, "batch_size": 64, "device": "cpu"}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors run fastest on one thread, and the test machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- adaptation layer and losses


def test_adaptation_layer_starts_as_plain_layer_norm_and_learns_scale_and_shift():
    torch.manual_seed(0)
    layer = AdaptationLayer(12, 6)
    e = torch.randn(10, 12)
    plain = F.layer_norm(layer.project(e), (6,))
    assert torch.allclose(layer(e), plain, atol=1e-6)
    (layer(e) * torch.randn(10, 6)).sum().backward()
    for name in ("scale", "shift"):
        grad = getattr(layer, name).weight.grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert layer.project.weight.grad.abs().sum() > 0


def test_info_nce_is_lower_for_aligned_pairs_than_shuffled_ones():
    torch.manual_seed(0)
    a = torch.randn(32, 8)
    aligned = info_nce(a, a + 0.05 * torch.randn(32, 8), temperature=0.1)
    shuffled = info_nce(a, a[torch.randperm(32)], temperature=0.1)
    assert aligned < 0.1 < shuffled
    assert torch.isfinite(info_nce(a.bfloat16(), a.bfloat16(), temperature=0.01))
    with pytest.raises(ValueError):
        info_nce(a, a, temperature=0.0)


def test_info_nce_does_not_push_apart_rows_of_the_same_item():
    torch.manual_seed(0)
    keys = torch.randn(6, 8)
    keys[1] = keys[0]  # rows 0 and 1 stand for the same item
    ids = torch.tensor([5, 5, 1, 2, 3, 4])
    masked = info_nce(keys, keys, temperature=0.05, ids=ids)
    unmasked = info_nce(keys, keys, temperature=0.05)
    assert torch.isfinite(masked) and masked < 0.01 < unmasked


def test_cosine_loss_is_zero_for_parallel_rows_and_two_for_opposite_ones():
    a = torch.randn(5, 4)
    assert cosine_loss(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_loss(a, -a).item() == pytest.approx(2.0, abs=1e-6)


# ---------------------------------------------------------------- prorec-align


@pytest.mark.parametrize("collaborative_model", ["sasrec", "din"])
def test_prorec_align_conforms_to_the_fuser_contract(collaborative_model, tmp_path):
    data = tiny_recdata()
    data.workdir = tmp_path
    fuser = ProrecAlign(**FAST, collaborative_model=collaborative_model)
    fused = check_fuser(fuser, data)
    assert fused.modality == "fused"
    assert fused.vectors.dtype == np.float32 and fused.dim == 16
    assert set(fused.views) == {"collaborative", "semantic"}
    np.testing.assert_array_equal(fused.vectors, fused.views["collaborative"])
    assert fuser.result is not None and "ndcg@10" in fuser.result.best_metrics
    assert list((tmp_path / "prorec-align").glob("*/last.pt")), "no checkpoint under workdir/prorec-align"


def test_prorec_align_normalized_quantizes_unit_rows_of_the_aligned_embedding():
    fused = check_fuser(ProrecAlign(**FAST, integrated="normalized"), tiny_recdata())
    collaborative = fused.views["collaborative"]
    assert np.ptp(np.linalg.norm(collaborative, axis=1)) > 1e-3  # the raw rows differ in length
    unit = collaborative / np.linalg.norm(collaborative, axis=1, keepdims=True)
    np.testing.assert_allclose(fused.vectors, unit, atol=1e-6)


def test_prorec_align_concat_is_the_normalised_concatenation():
    data = tiny_recdata()
    fused = check_fuser(ProrecAlign(**FAST, integrated="concat"), data)
    collaborative, semantic = fused.views["collaborative"], fused.views["semantic"]
    assert fused.dim == collaborative.shape[1] + semantic.shape[1]
    np.testing.assert_allclose(np.linalg.norm(fused.vectors, axis=1), 1.0, atol=1e-5)
    unit = collaborative / np.linalg.norm(collaborative, axis=1, keepdims=True) / np.sqrt(2)
    np.testing.assert_allclose(fused.vectors[:, :16], unit, atol=1e-5)


def _pair_cosines(fused: ItemEmbeddings) -> tuple[float, float]:
    c = F.normalize(torch.from_numpy(fused.views["collaborative"]), dim=1)
    s = F.normalize(torch.from_numpy(fused.views["semantic"]), dim=1)
    cos = c @ s.T
    matching = cos.diagonal().mean().item()
    mismatched = ((cos.sum() - cos.diagonal().sum()) / (len(cos) * (len(cos) - 1))).item()
    return matching, mismatched


def test_alignment_pulls_each_items_collaborative_embedding_to_its_adapted_semantic_one():
    data = tiny_recdata()
    rng = np.random.default_rng(1)
    semantic = ItemEmbeddings(rng.normal(size=(data.n_items, 24)).astype(np.float32), modality="semantic")
    options = {**FAST, "epochs": 8, "patience": 8, "lr": 5e-3, "dropout": 0.1}
    aligned = ProrecAlign(**options, align_weight=1.0).fuse(data, {"semantic": semantic})
    unaligned = ProrecAlign(**options, align_weight=0.0).fuse(data, {"semantic": semantic})
    match, mismatch = _pair_cosines(aligned)
    match_0, mismatch_0 = _pair_cosines(unaligned)
    assert match > mismatch + 0.5
    assert match - mismatch > (match_0 - mismatch_0) + 0.5


def test_prorec_align_rejects_bad_options_and_inputs():
    with pytest.raises(ConfigError, match="heads"):
        ProrecAlign(dim=10, heads=3)
    with pytest.raises(ConfigError, match="temperature"):
        ProrecAlign(temperature=0)
    with pytest.raises(ConfigError, match="integrated"):
        ProrecAlign(integrated="sum")  # type: ignore[arg-type]
    data = tiny_recdata()
    with pytest.raises(ConfigError, match="semantic"):
        ProrecAlign(**FAST).fuse(data, {})
    wrong = ItemEmbeddings(np.ones((3, 4), np.float32), modality="semantic")
    with pytest.raises(ConfigError, match="rows"):
        ProrecAlign(**FAST).fuse(data, {"semantic": wrong})


# ---------------------------------------------------------------- prorec-distill


class SignQuantizer:
    """A stand-in base quantizer: level j is the sign of centred dimension j."""

    def __init__(self, levels: int = 2, codebook_size: int = 2, seed: int = 0, flip: bool = False):
        self.levels, self.codebook_size, self.seed, self.flip = levels, codebook_size, seed, flip
        self.mean_: np.ndarray | None = None

    def fit(self, embeddings: np.ndarray) -> SignQuantizer:
        self.mean_ = embeddings.mean(axis=0)
        return self

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        bits = (embeddings - self.mean_)[:, : self.levels] > 0
        return (bits != self.flip).astype(np.int64)

    @property
    def codebook_sizes(self) -> tuple[int, ...]:
        return (2,) * self.levels

    def save(self, directory: Path) -> None:
        np.save(directory / "mean.npy", self.mean_)

    def load(self, directory: Path) -> SignQuantizer:
        self.mean_ = np.load(directory / "mean.npy")
        return self


class Unsaved(SignQuantizer):
    save = load = None  # fitted state it cannot save


class NoLevels(SignQuantizer):
    def __init__(self, flip: bool = False):
        super().__init__(flip=flip)


@pytest.fixture
def bases(registry, monkeypatch):
    registry.add("quantizer", "sign", SignQuantizer)
    registry.add("quantizer", "nolevels", NoLevels)
    registry.add("quantizer", "unsaved", Unsaved)
    monkeypatch.setattr(distill, "_registry", lambda: registry)
    return registry


def test_prorec_distill_cannot_restore_a_base_that_saves_nothing(bases, tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    fitted = ProrecDistill(base="unsaved", levels=2).fit(x)
    fitted.save(tmp_path)
    with pytest.raises(ConfigError, match="base quantizer 'unsaved' saves no fitted state"):
        ProrecDistill(base="unsaved", levels=2).load(tmp_path)


def test_prorec_distill_delegates_codes_to_its_base(bases):
    quantizer = ProrecDistill(base="sign", levels=3)
    codes = check_quantizer(quantizer)
    assert quantizer.codebook_sizes == (2, 2, 2)
    x = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    plain = SignQuantizer(levels=3).fit(x).encode(x)
    np.testing.assert_array_equal(ProrecDistill(base="sign", levels=3).fit(x).encode(x), plain)
    assert codes.shape[1] == 3


def test_prorec_distill_passes_base_options_and_checks_them(bases):
    assert ProrecDistill(base="sign", base_options="flip=true").quantizer.flip is True
    assert ProrecDistill(base="nolevels").quantizer.levels == 2  # levels=None keeps the base's default
    with pytest.raises(ConfigError, match="levels"):
        ProrecDistill(base="nolevels", levels=3)
    with pytest.raises(ConfigError, match="unknown option 'bogus'"):
        ProrecDistill(base="sign", base_options="bogus=1")
    with pytest.raises(ConfigError, match="own option"):
        ProrecDistill(base="sign", base_options="levels=2")
    with pytest.raises(ConfigError, match="unknown quantizer"):
        ProrecDistill(base="missing")
    with pytest.raises(ConfigError, match="semantic_weight"):
        ProrecDistill(base="sign", semantic_weight=-1)


def test_parse_options_keeps_tuple_values():
    assert parse_options("") == {}
    assert parse_options("a=1; sizes=4,4,8 ,b=true") == {"a": "1", "sizes": "4,4,8", "b": "true"}
    with pytest.raises(ConfigError, match="base_options"):
        parse_options("oops")


def _fused(n: int = 30) -> ItemEmbeddings:
    rng = np.random.default_rng(0)
    views = {"collaborative": rng.normal(size=(n, 8)), "semantic": rng.normal(size=(n, 12))}
    views = {k: v.astype(np.float32) for k, v in views.items()}
    return ItemEmbeddings(views["collaborative"], modality="fused", views=views)


def test_auxiliary_losses_one_per_modality_with_non_zero_weight(bases):
    fused = _fused()
    both = auxiliary_losses_of(ProrecDistill(base="sign"), fused)
    assert [aux.name for aux in both] == ["prorec-distill:collaborative", "prorec-distill:semantic"]
    only = ProrecDistill(base="sign", collaborative_weight=0.0).auxiliary_losses(fused)
    assert [aux.name for aux in only] == ["prorec-distill:semantic"]
    assert ProrecDistill(base="sign", collaborative_weight=0, semantic_weight=0).auxiliary_losses(fused) == []
    semantic_only = ItemEmbeddings(fused.views["semantic"], modality="semantic")
    with pytest.raises(ConfigError, match="collaborative_weight"):
        ProrecDistill(base="sign").auxiliary_losses(semantic_only)
    [aux] = ProrecDistill(base="sign", collaborative_weight=0).auxiliary_losses(semantic_only)
    np.testing.assert_array_equal(aux.teacher, semantic_only.vectors)


def test_distillation_loss_key_follows_its_options_and_teacher():
    teacher = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    key = DistillationLoss("m", teacher, 0.1).key
    assert DistillationLoss("m", teacher.copy(), 0.1).key == key
    changed = [
        DistillationLoss("m", teacher, 0.2),
        DistillationLoss("m", teacher, 0.1, temperature=0.2),
        DistillationLoss("m", teacher, 0.1, loss="cosine"),
        DistillationLoss("m", teacher + 1e-3, 0.1),
        DistillationLoss("other", teacher, 0.1),
    ]
    assert key not in {loss.key for loss in changed} and len({loss.key for loss in changed}) == len(changed)


@pytest.mark.parametrize("loss", ["infonce", "cosine"])
def test_distillation_module_learns_and_keeps_its_teacher_fixed(loss):
    torch.manual_seed(0)
    teacher = np.random.default_rng(0).normal(size=(30, 12)).astype(np.float32)
    module = DistillationLoss("prorec-distill:semantic", teacher, weight=0.5, loss=loss).build(16)
    assert all(p.shape != (30, 12) for p in module.parameters())
    assert "teacher" not in module.state_dict()
    summary = torch.randn(24, 16)
    targets = torch.tensor([1, 2, 3, 3, 5, 6] * 4)  # repeated targets in one batch
    first = module(summary, targets)
    assert first.ndim == 0 and torch.isfinite(first)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        module(summary, targets).backward()
        optimizer.step()
    last = module(summary, targets)
    assert last < 0.5 * first
    np.testing.assert_array_equal(module.teacher.numpy(), teacher)
    # The returned loss is already weighted.
    heavier = DistillationLoss("x", teacher, weight=1.0, loss=loss).build(16)
    heavier.load_state_dict(module.state_dict())
    assert heavier(summary, targets).item() == pytest.approx(2 * last.item(), rel=1e-5)


def test_prorec_distill_with_the_real_kmeans_base():
    from genrec.discovery import get_registry

    if ("quantizer", "kmeans") not in get_registry():
        pytest.skip("the kmeans quantizer is not registered")
    codes = check_quantizer(ProrecDistill(base="kmeans", levels=2, codebook_size=4))
    assert codes.shape[1] == 2 and codes.max() < 4


# ---------------------------------------------------------------- plugin wiring


def test_plugin_registers_both_components(register, registry):
    register(prorec_plugin, name="prorec")
    assert ("fuser", "prorec-align") in registry and ("quantizer", "prorec-distill") in registry
    fuser = registry.create("fuser", "prorec-align", epochs="3", align_weight="0.5", integrated="concat")
    assert (fuser.epochs, fuser.align_weight, fuser.integrated) == (3, 0.5, "concat")
    with pytest.raises(ConfigError, match="collaborative_model"):
        registry.create("fuser", "prorec-align", collaborative_model="gru")
    with pytest.raises(ConfigError, match="loss"):
        registry.get("quantizer", "prorec-distill").validate({"loss": "l2"})


def test_plugin_import_is_light():
    code = "import sys, genrec_plugins.prorec; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_aligned_teachers_train_with_the_sasrec_generator(bases):
    from genrec_plugins.sasrec.generator import SASRecGenerator

    data = tiny_recdata()
    rng = np.random.default_rng(0)
    semantic = ItemEmbeddings(rng.normal(size=(data.n_items, 24)).astype(np.float32), modality="semantic")
    fused = ProrecAlign(**FAST).fuse(data, {"semantic": semantic})
    quantizer = ProrecDistill(base="sign").fit(fused.vectors)
    aux = auxiliary_losses_of(quantizer, fused)
    generator = SASRecGenerator(dim=16, epochs=1, batch_size=64, device="cpu").fit(data, aux_losses=aux)
    assert np.isfinite(generator.result.history[0]["loss"])


def test_items_no_training_sequence_has_are_placed_like_new_items():
    data = tiny_recdata()
    train_items = np.concatenate(data.split.train)
    unseen = np.setdiff1d(np.arange(1, data.n_items + 1), train_items)
    for sequence in data.split.train[:3]:  # make a few items unseen: drop them from the training split
        unseen = np.union1d(unseen, sequence[:1])
    keep = ~np.isin(np.arange(1, data.n_items + 1), unseen)
    data.split.train = [s[~np.isin(s, unseen)] for s in data.split.train]
    rng = np.random.default_rng(1)
    semantic = ItemEmbeddings(rng.normal(size=(data.n_items, 24)).astype(np.float32), modality="semantic")
    fuser = ProrecAlign(**FAST)
    fused = fuser.fuse(data, {"semantic": semantic})
    placed = fuser.fuse_new({"semantic": semantic.vectors[unseen - 1]})
    assert np.allclose(fused.vectors[unseen - 1], placed, atol=1e-5)  # as a new item would be
    assert len({tuple(np.round(row, 4)) for row in fused.vectors[unseen - 1]}) == len(unseen)
    trained = ProrecAlign(**FAST, unseen_items="trained").fuse(data, {"semantic": semantic})
    assert np.allclose(trained.vectors[keep], fused.vectors[keep]) and not np.allclose(
        trained.vectors[unseen - 1], fused.vectors[unseen - 1]
    )
