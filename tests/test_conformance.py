"""Every built-in component through its kind's named checks (one test id per component and check), and
every option of every built-in documented in its docstring, with its table on the docs page up to date."""

import tempfile
from pathlib import Path

import numpy as np

from conftest import ROOT
from genrec.discovery import get_registry
from genrec.docstrings import option_docs, tabled_components, update_tables
from genrec.testing import parametrize_with_checks

_VECTORS = Path(tempfile.mkdtemp(prefix="genrec-conformance-")) / "vectors.npy"
np.save(_VECTORS, np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32))  # the tiny catalog's 40 items

TRAINING = {"epochs": 1, "device": "cpu"}
SMALL_TIGER = {**TRAINING, "layers_encoder": 1, "layers_decoder": 1, "d_model": 32, "heads": 2, "head_dim": 16,
               "ffn": 64, "warmup_steps": 0, "bf16": False}  # fmt: skip
# Small but real options for each built-in, so that every check runs in seconds.
OPTIONS = {
    ("embedder", "precomputed"): {"path": str(_VECTORS)},
    ("embedder", "precomputed-collaborative"): {"path": str(_VECTORS)},
    ("embedder", "sasrec"): {**TRAINING, "dim": 16},
    ("embedder", "text"): {"device": "cpu"},
    ("embedder", "tfidf"): {"dim": 8},
    ("fuser", "collaborative"): {},
    ("fuser", "concat"): {},
    ("fuser", "prorec-align"): {**TRAINING, "dim": 16},
    ("fuser", "semantic"): {},
    ("quantizer", "kmeans"): {"levels": 2, "codebook_size": 4},
    ("quantizer", "prorec-distill"): {"levels": 2, "codebook_size": 8},
    ("quantizer", "rkmeans"): {"levels": 2, "codebook_size": 8},
    ("quantizer", "rqvae"): {"levels": 2, "codebook_size": 8, "epochs": 3, "device": "cpu"},
    ("generator", "causal"): SMALL_TIGER,
    ("generator", "sasrec"): {**TRAINING, "dim": 16},
    ("generator", "tiger"): SMALL_TIGER,
}
KINDS = ("embedder", "fuser", "quantizer", "generator")
REGISTRY = get_registry()
BUILT = [REGISTRY.create(kind, name, **OPTIONS[(kind, name)]) for kind, name in OPTIONS]
PAGES = sorted((ROOT / "docs" / "components").glob("*.md"))


def test_every_registered_built_in_is_checked() -> None:
    registered = {(c.kind, c.name) for c in REGISTRY if c.kind in KINDS}
    assert registered == set(OPTIONS)


@parametrize_with_checks(BUILT)
def test_built_in_conformance(component, check) -> None:
    check(component)


def test_every_option_of_every_built_in_is_documented_in_its_docstring() -> None:
    missing = [
        f"{c.kind} {c.name}: {option}"
        for c in REGISTRY
        if c.kind in KINDS
        for option in c.options()
        if not option_docs(c.load()).get(option)
    ]
    assert not missing, f"options without a description in a Parameters section: {missing}"


def test_every_built_in_has_one_option_table_in_the_docs_and_each_is_up_to_date() -> None:
    tabled = [name for page in PAGES for name in tabled_components(page)]
    documented = {f"{c.kind}/{c.name}" for c in REGISTRY if c.kind in KINDS and c.options()}
    assert sorted(tabled) == sorted(documented)
    stale = [page.name for page in PAGES if update_tables(page, REGISTRY, check=True)]
    assert not stale, f"run python -m genrec.docstrings docs/components/*.md: stale tables in {stale}"
