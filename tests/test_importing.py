"""genrec data import: CSV/TSV interactions with string ids and item metadata, into the dataset layout."""

import json

import pytest

from conftest import ROOT, run_genrec
from genrec.data import load_dataset
from genrec.data.importing import import_dataset, k_core
from genrec.errors import DataError
from genrec.recommender import raw_id_field

EXAMPLE = ROOT / "docs" / "examples" / "import"


def test_the_example_imports_sorted_by_time_with_its_ids_kept(tmp_path):
    result = run_genrec("data", "import", str(EXAMPLE / "interactions.csv"), "--items", str(EXAMPLE / "items.csv"),
                        "--out", str(tmp_path / "mine"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    dataset = load_dataset(str(tmp_path / "mine"))
    raw = [item["raw_id"] for item in dataset.items]
    assert raw_id_field(dataset.items) == "raw_id"
    # alice bought B00B (Jan 1), B00A (Jan 3), B00C (Jan 5): time order, not file order
    assert [raw[i - 1] for i in dataset.sequences[0]] == ["B00B", "B00A", "B00C"]
    assert dataset.items[raw.index("B00A")]["categories"] == ["Skin Care", "Face"]
    users = (tmp_path / "mine" / "users.tsv").read_text().splitlines()
    assert users == ["user_id\traw_id", "1\talice", "2\tbob", "3\tcarol"]
    assert json.loads((tmp_path / "mine" / "import.json").read_text())["interactions"] == 10


def test_k_core_leaves_only_users_and_items_with_k_interactions():
    sequences = {"u1": ["a", "b", "c"], "u2": ["a", "b"], "u3": ["a", "b", "d"], "u4": ["d"]}
    kept = k_core(sequences, 2)
    # c goes (one interaction), so does u4 (one item); then d has one interaction left and goes too
    assert kept == {"u1": ["a", "b"], "u2": ["a", "b"], "u3": ["a", "b"]}
    assert k_core(kept, 2) == kept


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("user,item\nu,a\n", "interactions.csv:1: no column 'timestamp'"),
        ("user,item,timestamp\nu,a,yesterday\n", "interactions.csv:2: time 'yesterday'"),
        ("user,item,timestamp\nu,a,1,extra\n", "interactions.csv:2: 4 fields where the header has 3"),
        ("user,item,timestamp\n,a,1\n", "interactions.csv:2: empty 'user'"),
        ("", "interactions.csv:1: empty"),
    ],
)
def test_bad_interaction_files_name_file_and_line(tmp_path, content, fragment):
    (tmp_path / "interactions.csv").write_text(content)
    with pytest.raises(DataError, match=fragment.replace("(", r"\(")):
        import_dataset(tmp_path / "interactions.csv", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_duplicate_item_metadata_is_an_error(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"item": "a", "title": "x"}\n{"item": "a", "title": "y"}\n')
    with pytest.raises(DataError, match="items.jsonl:2: item 'a' appears twice"):
        import_dataset(EXAMPLE / "interactions.csv", tmp_path / "out", items=tmp_path / "items.jsonl")
