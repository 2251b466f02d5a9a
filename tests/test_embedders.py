"""The built-in embedders: item text templates, text (MiniLM, offline), tfidf and precomputed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import genrec_plugins.embedders as embedders_plugin
from genrec.contracts import RecData
from genrec.data.dataset import Dataset
from genrec.errors import ConfigError, DataError
from genrec.protocol import leave_one_out
from genrec.testing import check_embedder
from genrec_plugins.embedders import text as text_module
from genrec_plugins.embedders.item_text import AUTO_TEMPLATE, ItemTemplate, item_texts
from genrec_plugins.embedders.precomputed import PrecomputedCollaborativeEmbedder, PrecomputedEmbedder
from genrec_plugins.embedders.tfidf import TfidfEmbedder


def recdata_with_items(items: list[dict]) -> RecData:
    n = len(items)
    sequences = [np.array([(u + j) % n + 1 for j in range(4)], dtype=np.int64) for u in range(n)]
    dataset = Dataset("items", sequences, [{"item_id": i + 1, **item} for i, item in enumerate(items)])
    return RecData(dataset, leave_one_out(dataset, 20))


# --- registration ------------------------------------------------------------------------------------


def test_plugin_registers_embedders_with_their_modalities(registry, register):
    register(embedders_plugin, name="embedders")
    assert registry.names("embedder") == ["precomputed", "precomputed-collaborative", "text", "tfidf"]
    modalities = {name: registry.get("embedder", name).load().modality for name in registry.names("embedder")}
    assert modalities == {
        "precomputed": "semantic",
        "precomputed-collaborative": "collaborative",
        "text": "semantic",
        "tfidf": "semantic",
    }
    built = registry.create("embedder", "tfidf", dim="16", seed="3")
    assert (built.dim, built.seed) == (16, 3)
    assert registry.create("embedder", "text", normalize="false", batch_size="8").normalize is False


def test_plugin_modules_import_light():
    code = (
        "import sys, genrec_plugins.embedders, genrec_plugins.fusers;"
        "heavy = [m for m in ('torch', 'sklearn', 'sentence_transformers') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# --- item text -----------------------------------------------------------------------------------------


def test_auto_template_uses_title_then_brand_then_categories():
    item = {"title": "Silk Serum", "brand": "Aurora", "categories": ["Skin Care", "Face"], "idgenrec_text": "x"}
    assert ItemTemplate().render(item) == "Silk Serum. Brand: Aurora. Categories: Skin Care, Face."
    assert ItemTemplate("auto").source == "auto" and ItemTemplate().fields == ["name", "brand", "categories"]
    assert AUTO_TEMPLATE.startswith("{name}")


def test_auto_template_falls_back_to_idgenrec_text_and_drops_missing_fields():
    item = {"title": None, "brand": None, "categories": [], "description": None, "idgenrec_text": "tent stakes"}
    assert ItemTemplate().render(item) == "tent stakes."
    no_name = {"title": "", "brand": "Cedar", "categories": ["Camping"]}
    assert ItemTemplate().render(no_name) == "Brand: Cedar. Categories: Camping."


def test_user_template_drops_missing_fields_cleanly():
    template = ItemTemplate("{title}. Brand: {brand}. {categories}")
    full = {"title": "Lip Balm", "brand": "Bloom", "categories": ["Lips", "Balm"]}
    assert template.render(full) == "Lip Balm. Brand: Bloom. Lips, Balm"
    assert template.render({**full, "brand": None}) == "Lip Balm. Lips, Balm"
    assert template.render({**full, "title": None}) == "Brand: Bloom. Lips, Balm"
    assert template.render({"title": None, "brand": None, "categories": None}) == ""
    rendered = [template.render(r) for r in ({**full, "brand": None}, {"title": "T", "categories": None})]
    assert not any("None" in text for text in rendered)


def test_template_does_not_double_punctuation():
    item = {"title": "Gel, 2 oz.", "brand": "Halo", "categories": ["Hair"]}
    assert ItemTemplate().render(item) == "Gel, 2 oz. Brand: Halo. Categories: Hair."
    assert ItemTemplate("{title}!").render({"title": "Wow!"}) == "Wow!"


def test_template_accepts_dataset_fields_and_escaped_braces():
    items = [{"title": "Soap", "price": 3.5}, {"title": "Brush"}]
    assert item_texts(items, "{title} {{ {price} }}") == ["Soap { 3.5 }", "Brush }"]


@pytest.mark.parametrize("template", ["{title} by {maker}", "{title:>10}", "{title!r}", "{} {title}", "no fields"])
def test_bad_templates_name_the_option(template):
    with pytest.raises(ConfigError, match="'template'"):
        item_texts([{"title": "Soap"}], template)


def test_template_giving_no_text_at_all_is_an_error():
    with pytest.raises(ConfigError, match="empty text for every item"):
        item_texts([{"title": "Soap", "description": None}], "{description}")


def test_embedders_check_the_template(tiny_recdata):
    with pytest.raises(ConfigError, match="'template'"):  # syntax: when built
        text_module.TextEmbedder(template="{title:x}")
    embedder = TfidfEmbedder(template="{titel}")  # field names: against the dataset's item records
    with pytest.raises(ConfigError, match="'template': unknown field.*titel"):
        embedder.embed(tiny_recdata)


# --- tfidf ---------------------------------------------------------------------------------------------


def test_tfidf_conformance_and_topics(tiny_recdata):
    embeddings = check_embedder(TfidfEmbedder(dim=16), tiny_recdata)
    vectors = embeddings.vectors
    assert vectors.shape == (tiny_recdata.n_items, 16) and vectors.dtype == np.float32
    assert embeddings.modality == "semantic"
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Items of the same demo category share words, so they are closer than items of different ones.
    category = np.array([item["categories"][0] for item in tiny_recdata.dataset.items])
    similarity = vectors @ vectors.T
    same = category[:, None] == category[None, :]
    np.fill_diagonal(same, False)
    different = category[:, None] != category[None, :]
    assert similarity[same].mean() > similarity[different].mean() + 0.2


def test_tfidf_is_deterministic_and_clips_dim(tiny_recdata):
    first = TfidfEmbedder(dim=1000, seed=1).embed(tiny_recdata).vectors
    second = TfidfEmbedder(dim=1000, seed=1).embed(tiny_recdata).vectors
    np.testing.assert_array_equal(first, second)
    assert first.shape[1] < tiny_recdata.n_items  # clipped to what the 40 items allow


def test_tfidf_options_are_checked():
    with pytest.raises(ConfigError, match="'dim'"):
        TfidfEmbedder(dim=0)


# --- precomputed ---------------------------------------------------------------------------------------


def test_precomputed_conformance_for_both_modalities(tiny_recdata, tmp_path):
    rng = np.random.default_rng(0)
    array = rng.normal(size=(tiny_recdata.n_items, 6))
    np.save(tmp_path / "e.npy", array)
    semantic = check_embedder(PrecomputedEmbedder(path=str(tmp_path / "e.npy")), tiny_recdata)
    collaborative = check_embedder(PrecomputedCollaborativeEmbedder(path=str(tmp_path / "e.npy")), tiny_recdata)
    assert semantic.modality == "semantic" and collaborative.modality == "collaborative"
    assert semantic.vectors.dtype == np.float32
    np.testing.assert_allclose(semantic.vectors, array, rtol=1e-6)


def test_precomputed_drops_a_zero_padding_row(tiny_recdata, tmp_path):
    n = tiny_recdata.n_items
    array = np.vstack([np.zeros((1, 4)), np.arange(n * 4, dtype=np.float64).reshape(n, 4)])
    np.save(tmp_path / "padded.npy", array)
    vectors = PrecomputedEmbedder(path=str(tmp_path / "padded.npy")).embed(tiny_recdata).vectors
    np.testing.assert_array_equal(vectors, array[1:])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda n: np.ones((n + 1, 4)), "row 0 is not an all-zero padding row"),
        (lambda n: np.ones((n - 1, 4)), "expected one per item"),
        (lambda n: np.ones(n), "2-D"),
        (lambda n: np.full((n, 3), np.nan), "NaN"),
        (lambda n: np.array([["a"] * 3] * n), "numbers"),
        (lambda n: np.array([[{}]] * n, dtype=object), "readable"),
    ],
)
def test_precomputed_bad_files_are_data_errors_naming_the_file(tiny_recdata, tmp_path, make, message):
    path = tmp_path / "bad.npy"
    np.save(path, make(tiny_recdata.n_items), allow_pickle=True)
    with pytest.raises(DataError, match=message) as raised:
        PrecomputedEmbedder(path=str(path)).embed(tiny_recdata)
    assert "bad.npy" in str(raised.value)


def test_precomputed_missing_or_garbage_file(tiny_recdata, tmp_path):
    with pytest.raises(DataError, match="missing.npy"):
        PrecomputedEmbedder(path=str(tmp_path / "missing.npy")).embed(tiny_recdata)
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DataError, match="junk.npy"):
        PrecomputedEmbedder(path=str(tmp_path / "junk.npy")).embed(tiny_recdata)


# --- text (the packaged all-MiniLM-L6-v2) -------------------------------------------------------------


def test_packaged_weights_match_the_pinned_sha256():
    weights = text_module.packaged_model_dir() / "model.safetensors"
    text_module.verify_weights(weights, text_module.PACKAGED_WEIGHTS_SHA256)  # raises on mismatch
    assert text_module.resolve_model("all-MiniLM-L6-v2") == str(weights.parent)


def test_sha256_mismatch_is_detected(monkeypatch, tiny_recdata):
    monkeypatch.setattr(text_module, "PACKAGED_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(DataError, match="sha256 .* does not match the pinned 0000"):
        text_module.TextEmbedder().embed(tiny_recdata)


def test_text_embedder_loads_minilm_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    data = recdata_with_items(
        [
            {"title": "Hydrating face cream for dry skin"},
            {"title": "Moisturizing facial lotion for dry skin"},
            {"title": "Heavy duty car engine oil"},
            {"title": "Red lipstick, long wear matte"},
        ]
    )
    embeddings = check_embedder(text_module.TextEmbedder(template="{title}", device="cpu"), data)
    vectors = embeddings.vectors
    assert vectors.shape == (4, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert similarity[0, 1] > similarity[0, 3]
    assert "HF_HUB_OFFLINE" not in os.environ  # the offline switch is only held during the load


def test_text_embedder_never_downloads_a_hub_name(tiny_recdata):
    with pytest.raises(ConfigError, match="Hugging Face cache"):
        text_module.TextEmbedder(model="genrec-tests/no-such-model").embed(tiny_recdata)


def test_text_embedder_rejects_a_missing_directory_and_bad_options(tmp_path):
    with pytest.raises(ConfigError, match="'model'"):
        text_module.TextEmbedder(model=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="'batch_size'"):
        text_module.TextEmbedder(batch_size=0)


# --- real data -----------------------------------------------------------------------------------------


def _shared_data() -> Path:
    return Path(os.environ.get("GENREC_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


@pytest.mark.slow
def test_text_embedder_on_real_beauty_items():
    from genrec.data.format import read_items

    path = _shared_data() / "beauty" / "items.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    items = read_items(path)[:300]
    texts = item_texts(items)
    assert all(texts) and not any("None" in text for text in texts)
    data = recdata_with_items([{k: v for k, v in item.items() if k != "item_id"} for item in items])
    vectors = check_embedder(text_module.TextEmbedder(), data).vectors
    assert vectors.shape == (300, 384)
    # Items of one brand are closer to each other than random pairs of items.
    brands = np.array([item.get("brand") or "" for item in items])
    similarity = vectors @ vectors.T
    same = (brands[:, None] == brands[None, :]) & (brands[:, None] != "")
    np.fill_diagonal(same, False)
    assert same.any()
    assert similarity[same].mean() > similarity[~same].mean()


class CountingEncoder:
    """Stands in for a sentence-transformers model: a text's vector is its length, and calls are counted."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def encode(self, texts, **options):  # noqa: ANN001, ANN003, ANN201
        if self.fail_after is not None and self.calls == self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    def get_embedding_dimension(self) -> int:
        return 2


def test_an_interrupted_text_stage_resumes_from_its_last_finished_chunk(tiny_recdata, monkeypatch, tmp_path):
    monkeypatch.setattr(text_module, "CHUNK", 8)  # 40 items: 5 chunks
    monkeypatch.setattr(text_module, "resolve_model", lambda model: model)
    tiny_recdata.workdir = tmp_path / "work"
    embedder = text_module.TextEmbedder(device="cpu")
    interrupted = CountingEncoder(fail_after=3)
    monkeypatch.setattr(text_module, "_load", lambda model, device: interrupted)
    with pytest.raises(KeyboardInterrupt):
        embedder.embed(tiny_recdata)
    assert len(list((tmp_path / "work" / "text-chunks").glob("*.npy"))) == 3
    resumed = CountingEncoder()
    monkeypatch.setattr(text_module, "_load", lambda model, device: resumed)
    vectors = embedder.embed(tiny_recdata).vectors
    assert resumed.calls == 2  # only the two chunks that were not finished
    expected = CountingEncoder().encode(item_texts(tiny_recdata.dataset.items, "auto"))
    assert np.array_equal(vectors, expected)
