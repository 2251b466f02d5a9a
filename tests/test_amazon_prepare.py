"""Preparing an Amazon dataset from raw files served by a local HTTP server (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from genrec.data import amazon
from genrec.data.amazon import prepare_dataset
from genrec.data.format import read_dataset
from genrec.data.resolve import resolve_dataset_dir
from genrec.errors import ConfigError, DataError

REVIEWS = "reviews_Beauty_5.json.gz"
META = "meta_Beauty.json.gz"

# File order: users appear as ub, ua, uc. ua has a time tie (A and C at 200): A stays before C.
REVIEW_ROWS = [
    ("ub", "B", 300),
    ("ua", "A", 200),
    ("ub", "A", 100),
    ("ua", "C", 200),
    ("uc", "C", 50),
    ("ua", "B", 100),
    ("uc", "D", 60),
]
# Python literals with single quotes, as upstream publishes them; D has no metadata, Z is never reviewed.
META_LINES = [
    "{'asin': 'A', 'title': 'Rosy Cream', 'brand': 'Aurora', 'price': 9.99, 'description': 'A cream.', "
    "'categories': [['Beauty', 'Skin Care', 'Face'], ['Beauty', 'Skin Care', 'Body']]}",
    "{'asin': 'Z', 'title': 'Never reviewed', 'categories': [['Beauty', 'Other']]}",
    "{'asin': 'B', 'title': 'Blue Polish', 'categories': [['Beauty', 'Makeup', 'Nails']], 'salesRank': {'Beauty': 5}}",
    "{'asin': 'C', 'title': \"Kid's Shampoo\", 'brand': '', 'categories': [['Beauty']], "
    "'related': {'also_bought': ['A']}}",
]


def review_lines(rows: list[tuple[str, str, int]]) -> list[str]:
    return [
        json.dumps({"reviewerID": u, "asin": a, "unixReviewTime": t, "overall": 5.0, "reviewText": "ok"})
        for u, a, t in rows
    ]


def write_gz(path: Path, lines: list[str]) -> None:
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))


@dataclass
class Upstream:
    directory: Path  # the files behind ``url``
    url: str = ""
    requests: list[str] = field(default_factory=list)
    ranges: list[str] = field(default_factory=list)  # Range headers received
    honour_ranges: bool = False  # like http.server, ignore ranges unless told

    def write(self, reviews: list[str] | None = None, meta: list[str] | None = None) -> None:
        write_gz(self.directory / REVIEWS, review_lines(REVIEW_ROWS) if reviews is None else reviews)
        write_gz(self.directory / META, META_LINES if meta is None else meta)


@pytest.fixture
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstream]:
    """The raw fixture files behind http://127.0.0.1:<port>/files/, counting requests; a private cache."""
    monkeypatch.setenv("GENREC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("GENREC_DATA_DIR", raising=False)
    root = tmp_path / "upstream"
    source = Upstream(root / "files")  # a sub-path, to check that the base URL is joined correctly
    source.directory.mkdir(parents=True)
    source.write()

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
            source.requests.append(self.path)
            wanted = self.headers.get("Range")
            if wanted:
                source.ranges.append(wanted)
            if wanted and source.honour_ranges:  # "bytes=N-": send the rest of the file
                data = Path(self.translate_path(self.path)).read_bytes()[int(wanted[6:-1]) :]
                self.send_response(206)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    source.url = f"http://127.0.0.1:{server.server_address[1]}/files"
    try:
        yield source
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def raw_cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "raw"


def test_prepare_writes_sorted_numbered_dataset(upstream: Upstream, tmp_path: Path) -> None:
    directory = prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert directory == tmp_path / "data" / "beauty"

    dataset = read_dataset(directory)
    # users by first appearance (ub, ua, uc); items by first appearance in the time-sorted sequences
    assert [s.tolist() for s in dataset.sequences] == [[1, 2], [2, 1, 3], [3, 4]]
    assert [item["asin"] for item in dataset.items] == ["A", "B", "C", "D"]
    a, b, c, d = dataset.items
    assert a == {
        "item_id": 1,
        "asin": "A",
        "title": "Rosy Cream",
        "brand": "Aurora",
        "categories": ["Skin Care", "Face", "Body"],  # top level dropped, duplicates merged
        "description": "A cream.",
    }
    assert b["categories"] == ["Makeup", "Nails"] and b["brand"] is None
    assert c["title"] == "Kid's Shampoo" and c["brand"] is None and c["categories"] == []
    assert d["title"] is None and d["categories"] == []  # no metadata upstream

    users = (directory / "users.tsv").read_text(encoding="utf-8").splitlines()
    assert users == ["user_id\treviewerID", "1\tub", "2\tua", "3\tuc"]
    stats = json.loads((directory / "stats.json").read_text(encoding="utf-8"))
    assert (stats["users"], stats["items"], stats["interactions"]) == (3, 4, 7)
    assert stats["items_without_metadata"] == 1
    assert not any(p.name.startswith(".") for p in directory.parent.iterdir())  # no temp dirs left


def test_checksums_recorded_on_first_use(upstream: Upstream, tmp_path: Path) -> None:
    prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    for name in (REVIEWS, META):
        expected = hashlib.sha256((upstream.directory / name).read_bytes()).hexdigest()
        assert (raw_cache(tmp_path) / name).read_bytes() == (upstream.directory / name).read_bytes()
        record = (raw_cache(tmp_path) / f"{name}.sha256").read_text(encoding="utf-8")
        assert record.split() == [expected, name]
    assert not list(raw_cache(tmp_path).glob("*.part"))
    stats = json.loads((tmp_path / "data" / "beauty" / "stats.json").read_text(encoding="utf-8"))
    assert set(stats["source"]["sha256"]) == {REVIEWS, META}


def test_default_root_is_where_names_resolve(upstream: Upstream, tmp_path: Path) -> None:
    directory = prepare_dataset("beauty", base_url=upstream.url)
    assert directory == tmp_path / "cache" / "data" / "beauty"
    assert resolve_dataset_dir("beauty") == directory


def test_second_run_reuses_the_cache(upstream: Upstream, tmp_path: Path) -> None:
    prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert sorted(upstream.requests) == [f"/files/{META}", f"/files/{REVIEWS}"]
    first = (tmp_path / "data" / "beauty" / "interactions.txt").read_text()
    prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert len(upstream.requests) == 2  # nothing downloaded again
    assert (tmp_path / "data" / "beauty" / "interactions.txt").read_text() == first


def test_corrupted_cache_file_is_detected(upstream: Upstream, tmp_path: Path) -> None:
    prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    write_gz(raw_cache(tmp_path) / REVIEWS, review_lines(REVIEW_ROWS[:-1]))
    with pytest.raises(DataError, match="checksum mismatch") as error:
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert error.value.path == raw_cache(tmp_path) / REVIEWS
    assert REVIEWS in str(error.value)
    assert len(upstream.requests) == 2


def test_known_checksum_mismatch_rejects_download(
    upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(amazon.KNOWN_SHA256, REVIEWS, "0" * 64)
    with pytest.raises(DataError, match=f"{REVIEWS}: checksum mismatch"):
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert not (raw_cache(tmp_path) / REVIEWS).exists()  # a bad download is not kept
    assert not (raw_cache(tmp_path) / f"{REVIEWS}.sha256").exists()  # nor trusted
    assert not (tmp_path / "data" / "beauty").exists()


def test_stale_partial_download_is_replaced(upstream: Upstream, tmp_path: Path) -> None:
    raw_cache(tmp_path).mkdir(parents=True)
    (raw_cache(tmp_path) / f"{REVIEWS}.part").write_bytes(b"garbage from an interrupted run")
    # The server ignores the byte range and sends the whole file, which must replace the part file.
    directory = prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert upstream.ranges == [f"bytes={len(b'garbage from an interrupted run')}-"]
    assert read_dataset(directory).n_interactions == len(REVIEW_ROWS)
    assert (raw_cache(tmp_path) / REVIEWS).read_bytes() == (upstream.directory / REVIEWS).read_bytes()


def test_partial_download_resumes_with_a_range_request(upstream: Upstream, tmp_path: Path) -> None:
    upstream.honour_ranges = True
    whole = (upstream.directory / REVIEWS).read_bytes()
    raw_cache(tmp_path).mkdir(parents=True)
    (raw_cache(tmp_path) / f"{REVIEWS}.part").write_bytes(whole[:10])
    prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert upstream.ranges == ["bytes=10-"]
    assert (raw_cache(tmp_path) / REVIEWS).read_bytes() == whole


def test_missing_upstream_file_is_a_data_error(upstream: Upstream, tmp_path: Path) -> None:
    (upstream.directory / META).unlink()
    with pytest.raises(DataError, match="HTTP 404") as error:
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert error.value.path.name == META
    assert not (raw_cache(tmp_path) / META).exists()


def test_malformed_meta_line_names_file_and_line(upstream: Upstream, tmp_path: Path) -> None:
    upstream.write(meta=[META_LINES[0], META_LINES[1], "{'asin': 'B', 'title': 'unterminated", META_LINES[3]])
    with pytest.raises(DataError) as error:
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert f"{META}:3:" in str(error.value) and error.value.line == 3
    assert not (tmp_path / "data" / "beauty").exists()


def test_malformed_review_line_names_file_and_line(upstream: Upstream, tmp_path: Path) -> None:
    lines = review_lines(REVIEW_ROWS)
    lines[1] = lines[1].replace('"unixReviewTime": 200', '"unixReviewTime": "soon"')
    upstream.write(reviews=lines)
    with pytest.raises(DataError, match="unixReviewTime") as error:
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert f"{REVIEWS}:2:" in str(error.value)
    upstream.write(reviews=[*review_lines(REVIEW_ROWS[:3]), "{broken"])
    shutil.rmtree(raw_cache(tmp_path))  # a new upstream file: forget the cached one
    with pytest.raises(DataError, match=f"{REVIEWS}:4: broken JSON"):
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)


def test_meta_code_is_never_executed(upstream: Upstream, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    payload = f"__import__('os').system('touch {marker}')"
    upstream.write(meta=[META_LINES[0], payload, META_LINES[2]])
    with pytest.raises(DataError, match="malformed") as error:
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert f"{META}:2:" in str(error.value)
    assert not marker.exists()
    # Also when the call hides inside an otherwise valid-looking record.
    upstream.write(meta=[f"{{'asin': 'A', 'title': {payload}}}"])
    shutil.rmtree(raw_cache(tmp_path))
    with pytest.raises(DataError, match=f"{META}:1: malformed"):
        prepare_dataset("beauty", root=tmp_path / "data", base_url=upstream.url)
    assert not marker.exists()


def test_categories_drop_the_top_level() -> None:
    assert amazon._categories([["Toys & Games", "Puzzles"], ["Toys & Games"], ["Baby", "Toys"]], Path("m"), 1) == [
        "Puzzles",
        "Toys",
    ]
    with pytest.raises(DataError, match="m:7"):
        amazon._categories(["Beauty"], Path("m"), 7)


def test_build_sequences_is_a_stable_time_sort() -> None:
    users, asins, sequences = amazon.build_sequences([("u", "x", 5), ("u", "y", 1), ("u", "z", 5), ("v", "y", 0)])
    assert users == ["u", "v"] and asins == ["y", "x", "z"]
    assert [s.tolist() for s in sequences] == [[1, 2, 3], [1]]
    assert all(s.dtype == np.int64 for s in sequences)


def test_unknown_dataset_name() -> None:
    with pytest.raises(ConfigError, match="beauty, sports, toys"):
        prepare_dataset("movies")
    assert amazon.raw_files("toys") == ("reviews_Toys_and_Games_5.json.gz", "meta_Toys_and_Games.json.gz")
    assert amazon.raw_files("sports")[0] == "reviews_Sports_and_Outdoors_5.json.gz"


def test_cli_prepare_then_stats(upstream: Upstream, tmp_path: Path) -> None:
    from conftest import run_genrec

    env = {"GENREC_CACHE_DIR": str(tmp_path / "cache")}
    prepared = run_genrec("data", "prepare", "beauty", "--base-url", upstream.url, env=env)
    assert prepared.returncode == 0, prepared.stderr
    assert str(tmp_path / "cache" / "data" / "beauty") in prepared.stdout
    stats = run_genrec("data", "stats", "beauty", "--json", env=env)  # found in the cache by name
    assert stats.returncode == 0, stats.stderr
    assert '"users": 3' in stats.stdout and '"items": 4' in stats.stdout
    refused = run_genrec("data", "prepare", "demo", env=env)
    assert refused.returncode != 0 and "NAME" in refused.stderr + refused.stdout
