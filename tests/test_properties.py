"""Property-based tests: malformed embeddings files and CLI options always give a clear error."""

import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genrec.config import PipelineConfig, StageSpec, parse_settings, resolve_config
from genrec.discovery import get_registry
from genrec.errors import ConfigError, DataError
from genrec_plugins.embedders.precomputed import load_item_vectors

N_ITEMS = 7


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


VALID = _npy_bytes(np.arange(N_ITEMS * 3, dtype=np.float32).reshape(N_ITEMS, 3) + 1)


@st.composite
def damaged_npy(draw) -> bytes:
    """A valid file with random bytes flipped, truncated or appended, or a random other array."""
    choice = draw(st.integers(0, 3))
    data = bytearray(VALID)
    if choice == 0:
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif choice == 1:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif choice == 2:
        data += draw(st.binary(min_size=1, max_size=64))
    else:
        shape = draw(st.lists(st.integers(0, 9), min_size=0, max_size=3))
        dtype = draw(st.sampled_from(["float32", "float64", "int64", "bool", "U3", "complex64"]))
        data = bytearray(_npy_bytes(np.zeros(shape, dtype=dtype)))
    return bytes(data)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_npy())
def test_embeddings_loader_gives_vectors_or_a_data_error_naming_the_file(content):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "vectors.npy"
        path.write_bytes(content)
        try:
            vectors = load_item_vectors(path, N_ITEMS)
        except DataError as error:
            assert "vectors.npy" in str(error)
        else:
            assert vectors.shape[0] == N_ITEMS and vectors.dtype == np.float32
            assert np.isfinite(vectors).all()


option_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    stage=st.sampled_from(["generator", "quantizer", "fuser", "embedder", "collaborative", "decoder", ""]),
    option=st.sampled_from(["epochs", "levels", "codebook_size", "lr", "dropout", "template", "bogus", ""]),
    value=option_text,
    separator=st.sampled_from(["=", ":", ""]),
)
def test_any_set_option_is_accepted_or_rejected_with_a_config_error(stage, option, value, separator):
    setting = f"{stage}.{option}{separator}{value}"
    config = PipelineConfig(
        recipe="tiger",
        data="demo",
        semantic=StageSpec("text"),
        collaborative=StageSpec("sasrec"),
        fuser=StageSpec("semantic"),
        quantizer=StageSpec("rkmeans"),
        generator=StageSpec("tiger"),
    )
    try:
        resolved = resolve_config(config, get_registry(), parse_settings([setting]))
    except ConfigError as error:
        message = str(error)
        assert setting in message or repr(option) in message or option in message or stage in message
    else:
        assert resolved.record()["stages"][stage]["options"][option] is not None or value.lower() in ("none", "null")


@pytest.mark.parametrize("value", ["-3", "0"])
def test_out_of_range_numbers_are_caught_when_the_component_is_built(value):
    with pytest.raises((ConfigError, ValueError)):
        get_registry().create("quantizer", "rkmeans", levels=value)
