"""The dataset directory format: every malformed case is a DataError naming the file and line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genrec.data.format import INTERACTIONS, ITEMS, read_dataset, write_dataset
from genrec.errors import DataError

ITEM_LINES = [
    {"item_id": 1, "title": "Rosy cream", "brand": "Aurora", "categories": ["Skin Care"]},
    {"item_id": 2, "title": "Blue polish", "brand": None, "categories": ["Makeup", "Nails"]},
    {"item_id": 3, "title": None, "description": "A brush.", "idgenrec_text": "soft brush"},
]
INTERACTION_LINES = ["1 1 2 3", "2 2 3", "3 3 1 2 1"]


def write_raw(directory: Path, items: list[str], interactions: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ITEMS).write_text("\n".join(items) + "\n", encoding="utf-8")
    (directory / INTERACTIONS).write_text("\n".join(interactions) + "\n", encoding="utf-8")
    return directory


def valid_item_lines() -> list[str]:
    return [json.dumps(record) for record in ITEM_LINES]


def test_valid_directory_reads(tmp_path: Path) -> None:
    dataset = read_dataset(write_raw(tmp_path / "shop", valid_item_lines(), INTERACTION_LINES))
    assert dataset.name == "shop" and dataset.n_items == 3 and dataset.n_users == 3
    assert [s.tolist() for s in dataset.sequences] == [[1, 2, 3], [2, 3], [3, 1, 2, 1]]
    assert dataset.items[2]["idgenrec_text"] == "soft brush"


def test_blank_lines_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / ITEMS).write_bytes(("\ufeff" + "\r\n".join(valid_item_lines()) + "\r\n\r\n").encode("utf-8"))
    (directory / INTERACTIONS).write_text("\n1 1 2\n\n2 3\n", encoding="utf-8")
    dataset = read_dataset(directory)
    assert dataset.n_items == 3 and [s.tolist() for s in dataset.sequences] == [[1, 2], [3]]


def item_case(line: int, text: str) -> list[str]:
    lines = valid_item_lines()
    lines[line - 1] = text
    return lines


ITEM_CASES = {
    "broken json": (item_case(2, '{"item_id": 2, "title": '), 2, "broken JSON"),
    "not an object": (item_case(2, "[2, 'x']".replace("'", '"')), 2, "expected a JSON object"),
    "missing item_id": (item_case(3, '{"title": "x"}'), 3, "'item_id' must be an integer"),
    "string item_id": (item_case(1, '{"item_id": "1"}'), 1, "'item_id' must be an integer"),
    "float item_id": (item_case(1, '{"item_id": 1.0}'), 1, "'item_id' must be an integer"),
    "bool item_id": (item_case(1, '{"item_id": true}'), 1, "'item_id' must be an integer"),
    "zero item_id": (item_case(1, '{"item_id": 0}'), 1, "must be >= 1"),
    "duplicate item_id": (item_case(3, '{"item_id": 2}'), 3, "duplicate item_id 2"),
    "non-contiguous ids": (item_case(3, '{"item_id": 7}'), 3, "contiguous"),
    "numeric title": (item_case(2, '{"item_id": 2, "title": 5}'), 2, "'title' must be a string"),
    "list brand": (item_case(2, '{"item_id": 2, "brand": ["a"]}'), 2, "'brand' must be a string"),
    "string categories": (item_case(1, '{"item_id": 1, "categories": "Makeup"}'), 1, "'categories'"),
    "categories of ints": (item_case(1, '{"item_id": 1, "categories": [1]}'), 1, "'categories'"),
}


@pytest.mark.parametrize("case", ITEM_CASES, ids=list(ITEM_CASES))
def test_malformed_items_name_file_and_line(tmp_path: Path, case: str) -> None:
    lines, line, message = ITEM_CASES[case]
    directory = write_raw(tmp_path / "d", lines, INTERACTION_LINES)
    with pytest.raises(DataError, match=message) as error:
        read_dataset(directory)
    assert error.value.path == directory / ITEMS and error.value.line == line
    assert str(error.value).startswith(f"{directory / ITEMS}:{line}: ")


INTERACTION_CASES = {
    "non-integer token": (["1 1 2", "2 x 3"], 2, "ids must be integers, got 'x'"),
    "float token": (["1 1 2.0"], 1, "ids must be integers"),
    "underscore token": (["1 1_0"], 1, "ids must be integers"),
    "non-ascii digit": (["1 1", "2 \u0663"], 2, "ids must be integers"),
    "superscript digit": (["1 1 \u00b2"], 1, "ids must be integers"),
    "unknown item id": (["1 1 2", "2 3", "3 4"], 3, "unknown item id 4"),
    "item id 0": (["1 0 2"], 1, "unknown item id 0"),
    "negative item id": (["1 2 -1"], 1, "unknown item id -1"),
    "user id 0": (["0 1 2"], 1, "user id must be >= 1"),
    "duplicated user": (["1 1 2", "2 3", "1 3"], 3, "user 1 already appears on line 1"),
    "empty history": (["1 1 2", "2"], 2, "empty history"),
}


@pytest.mark.parametrize("case", INTERACTION_CASES, ids=list(INTERACTION_CASES))
def test_malformed_interactions_name_file_and_line(tmp_path: Path, case: str) -> None:
    lines, line, message = INTERACTION_CASES[case]
    directory = write_raw(tmp_path / "d", valid_item_lines(), lines)
    with pytest.raises(DataError, match=message) as error:
        read_dataset(directory)
    assert error.value.path == directory / INTERACTIONS and error.value.line == line
    assert str(error.value).startswith(f"{directory / INTERACTIONS}:{line}: ")


@pytest.mark.parametrize("name", [ITEMS, INTERACTIONS])
def test_non_utf8_names_file_and_line(tmp_path: Path, name: str) -> None:
    directory = write_raw(tmp_path / "d", valid_item_lines(), INTERACTION_LINES)
    lines = (directory / name).read_bytes().split(b"\n")
    lines[1] = lines[1][:5] + b"\xff\xfe" + lines[1][5:]
    (directory / name).write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match="not UTF-8") as error:
        read_dataset(directory)
    assert error.value.path == directory / name and error.value.line == 2
    assert f"{name}:2:" in str(error.value)


@pytest.mark.parametrize("name", [ITEMS, INTERACTIONS])
def test_missing_file_is_named(tmp_path: Path, name: str) -> None:
    directory = write_raw(tmp_path / "d", valid_item_lines(), INTERACTION_LINES)
    (directory / name).unlink()
    with pytest.raises(DataError, match="missing") as error:
        read_dataset(directory)
    assert error.value.path == directory / name


@pytest.mark.parametrize("name", [ITEMS, INTERACTIONS])
def test_empty_file_is_an_error(tmp_path: Path, name: str) -> None:
    directory = write_raw(tmp_path / "d", valid_item_lines(), INTERACTION_LINES)
    (directory / name).write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no items|no users") as error:
        read_dataset(directory)
    assert error.value.path == directory / name


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a dataset directory") as error:
        read_dataset(tmp_path / "nowhere")
    assert error.value.path == tmp_path / "nowhere"


# --- properties -------------------------------------------------------------------------------------

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_ITEMS = "\n".join(valid_item_lines()).encode("utf-8") + b"\n"
VALID_INTERACTIONS = "\n".join(INTERACTION_LINES).encode("utf-8") + b"\n"

# One edit of a file's bytes: (position as a fraction of the length, bytes removed, bytes inserted).
edits = st.tuples(
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=0, max_value=12),
    st.one_of(
        st.binary(max_size=8),
        st.sampled_from([b"{", b"}", b'"', b"\n", b" ", b"0", b"-1", b"99", b"null", b"[", b",", b"\xff"]),
        st.text(max_size=6).map(lambda text: text.encode("utf-8")),
    ),
)


def mutate(data: bytes, changes: list[tuple[float, int, bytes]]) -> bytes:
    for fraction, removed, inserted in changes:
        at = int(fraction * len(data))
        data = data[:at] + inserted + data[at + removed :]
    return data


@SETTINGS
@given(
    item_edits=st.lists(edits, max_size=4),
    interaction_edits=st.lists(edits, max_size=4),
    drop=st.sampled_from([None, ITEMS, INTERACTIONS]),
)
def test_mutated_dataset_raises_only_data_error(
    item_edits: list[tuple[float, int, bytes]],
    interaction_edits: list[tuple[float, int, bytes]],
    drop: str | None,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / ITEMS).write_bytes(mutate(VALID_ITEMS, item_edits))
        (directory / INTERACTIONS).write_bytes(mutate(VALID_INTERACTIONS, interaction_edits))
        if drop:
            (directory / drop).unlink()
        try:
            dataset = read_dataset(directory)
        except DataError as error:
            assert error.path.parent == directory  # always names one of the dataset's files
            return
        # Whatever survived the mutations is a consistent dataset.
        assert drop is None
        assert all(len(s) and s.min() >= 1 and s.max() <= dataset.n_items for s in dataset.sequences)
        assert [item["item_id"] for item in dataset.items] == list(range(1, dataset.n_items + 1))


texts = st.one_of(st.none(), st.text(max_size=12))
item_records = st.fixed_dictionaries(
    {},
    optional={
        "title": texts,
        "brand": texts,
        "description": texts,
        "categories": st.one_of(st.none(), st.lists(st.text(max_size=8), max_size=3)),
        "asin": st.text(alphabet="ABCDEFGHIJ0123456789", min_size=10, max_size=10),
    },
)


@st.composite
def datasets(draw: st.DrawFn) -> tuple[list[list[int]], list[dict]]:
    items = draw(st.lists(item_records, min_size=1, max_size=8))
    ids = st.integers(min_value=1, max_value=len(items))
    sequences = draw(st.lists(st.lists(ids, min_size=1, max_size=10), min_size=1, max_size=8))
    return sequences, items


@SETTINGS
@given(data=datasets())
def test_write_read_round_trip(data: tuple[list[list[int]], list[dict]]) -> None:
    sequences, items = data
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_dataset(Path(tmp) / "shop", [np.asarray(s) for s in sequences], items)
        dataset = read_dataset(directory)
    assert [s.tolist() for s in dataset.sequences] == sequences
    assert all(s.dtype == np.int64 for s in dataset.sequences)
    assert dataset.items == [{**item, "item_id": i} for i, item in enumerate(items, start=1)]


# --- the real data ------------------------------------------------------------------------------------

BEAUTY = Path("/work/shared/data/beauty")


@pytest.mark.slow
def test_real_beauty_dataset() -> None:
    if not BEAUTY.is_dir():
        pytest.skip(f"the prepared Beauty data is not on this machine ({BEAUTY})")
    dataset = read_dataset(BEAUTY)
    assert (dataset.n_users, dataset.n_items, dataset.n_interactions) == (22_363, 12_101, 198_502)
    assert min(len(s) for s in dataset.sequences) == 5 and max(len(s) for s in dataset.sequences) == 204
    assert sum(item.get("title") is None for item in dataset.items) == 7
