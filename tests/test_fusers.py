"""The built-in fusers: semantic, collaborative and concat."""

from __future__ import annotations

import numpy as np
import pytest

import genrec_plugins.fusers as fusers_plugin
from genrec.contracts import ItemEmbeddings
from genrec.errors import ConfigError
from genrec.testing import check_fuser
from genrec_plugins.fusers.basic import CollaborativeFuser, ConcatFuser, SemanticFuser, l2_normalize


def inputs(n_items: int, semantic_dim: int = 12, collaborative_dim: int = 4) -> dict[str, ItemEmbeddings]:
    rng = np.random.default_rng(1)
    return {
        "semantic": ItemEmbeddings(rng.normal(size=(n_items, semantic_dim)).astype(np.float32), "semantic"),
        "collaborative": ItemEmbeddings(
            (5 * rng.normal(size=(n_items, collaborative_dim))).astype(np.float32), "collaborative"
        ),
    }


def test_plugin_registers_fusers(registry, register):
    register(fusers_plugin, name="fusers")
    assert registry.names("fuser") == ["collaborative", "concat", "semantic"]
    requires = {name: registry.get("fuser", name).load().requires for name in registry.names("fuser")}
    assert requires == {
        "semantic": ("semantic",),
        "collaborative": ("collaborative",),
        "concat": ("semantic", "collaborative"),
    }
    concat = registry.create("fuser", "concat", semantic_weight="0.5")
    assert concat.semantic_weight == 0.5 and concat.collaborative_weight == 1.0


@pytest.mark.parametrize("fuser", [SemanticFuser(), CollaborativeFuser(), ConcatFuser()], ids=type)
def test_conformance(fuser, tiny_recdata):
    fused = check_fuser(fuser, tiny_recdata)
    assert fused.modality == "fused"
    assert set(fused.views) == set(fuser.requires)  # it was given only what it requires


def test_single_modality_fusers_pass_their_input_through(tiny_recdata):
    given = inputs(tiny_recdata.n_items)
    semantic = SemanticFuser().fuse(tiny_recdata, given)
    np.testing.assert_array_equal(semantic.vectors, given["semantic"].vectors)
    only_collaborative = {"collaborative": given["collaborative"]}
    collaborative = CollaborativeFuser().fuse(tiny_recdata, only_collaborative)
    np.testing.assert_array_equal(collaborative.vectors, given["collaborative"].vectors)
    assert set(collaborative.views) == {"collaborative"}  # only the inputs it was given


def test_concat_normalises_each_part_then_weights_it(tiny_recdata):
    given = inputs(tiny_recdata.n_items)
    fused = ConcatFuser(semantic_weight=1.0, collaborative_weight=2.0).fuse(tiny_recdata, given)
    assert fused.dim == 16 and fused.vectors.dtype == np.float32
    semantic_part, collaborative_part = fused.vectors[:, :12], fused.vectors[:, 12:]
    np.testing.assert_allclose(np.linalg.norm(semantic_part, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(collaborative_part, axis=1), 2.0, atol=1e-5)
    np.testing.assert_allclose(collaborative_part, 2 * l2_normalize(given["collaborative"].vectors), atol=1e-6)
    np.testing.assert_array_equal(fused.views["semantic"], given["semantic"].vectors)


def test_fusers_report_missing_or_misshapen_inputs(tiny_recdata):
    given = inputs(tiny_recdata.n_items)
    with pytest.raises(ConfigError, match="collaborative embeddings"):
        ConcatFuser().fuse(tiny_recdata, {"semantic": given["semantic"]})
    with pytest.raises(ConfigError, match="semantic embeddings"):
        SemanticFuser().fuse(tiny_recdata, {"collaborative": given["collaborative"]})
    short = {"semantic": ItemEmbeddings(given["semantic"].vectors[:-1], "semantic")}
    with pytest.raises(ConfigError, match="rows for"):
        SemanticFuser().fuse(tiny_recdata, short)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"semantic_weight": -1.0}, "semantic_weight"),
        ({"collaborative_weight": float("nan")}, "collaborative_weight"),
        ({"semantic_weight": 0.0, "collaborative_weight": 0.0}, "both 0"),
    ],
)
def test_concat_weights_are_checked(options, name):
    with pytest.raises(ConfigError, match=name):
        ConcatFuser(**options)


def test_l2_normalize_keeps_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
