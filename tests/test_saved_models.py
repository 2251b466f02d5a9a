"""A finished run as a product: genrec.load, recommend, export, new items, and their errors."""

import json
import shutil

import numpy as np
import pytest

import genrec
from conftest import run_genrec
from genrec.data import load_dataset
from genrec.errors import ConfigError, DataError
from genrec.evaluation import evaluate
from genrec.protocol import leave_one_out

QUICK = ["--set", "generator.epochs=3", "--set", "quantizer.codebook_size=16"]


def _recipe(recipe: str, root, *args: str):
    run_dir = root / recipe
    result = run_genrec(
        "recipe", recipe, "--data", "demo", "--run-dir", str(run_dir), "--store-dir", str(root / "store"), *args
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {
        "prorec": _recipe("prorec", root, *QUICK, "--set", "fuser.epochs=3"),
        "tiger": _recipe("tiger", root, *QUICK),
    }


@pytest.fixture
def prorec_run(runs, tmp_path):
    """A private copy of the prorec run directory (items added to it stay in the test)."""
    copy = tmp_path / "prorec"
    shutil.copytree(runs["prorec"], copy)
    results = json.loads((copy / "results.json").read_text())
    return copy, results


def test_a_loaded_run_gives_the_test_metrics_it_reported(runs):
    results = json.loads((runs["prorec"] / "results.json").read_text())
    recommender = genrec.load(runs["prorec"])
    split = leave_one_out(load_dataset("demo"), results["config"]["max_history"])
    metrics = evaluate(recommender.generator.recommend, split.test_histories, split.test_targets)
    assert metrics == pytest.approx(results["test"], abs=1e-9)
    # The API in raw ids gives the generator's own ranking, best first, with falling scores.
    histories = [[str(i) for i in row[row > 0]] for row in split.test_histories[:5]]
    ranked = recommender.recommend(histories, k=10)
    expected = recommender.generator.recommend(split.test_histories[:5], 10)
    assert [[int(s.item) for s in row] for row in ranked] == expected.tolist()
    assert all(row[0].score >= row[-1].score for row in ranked)


def test_exclude_history_never_returns_a_history_item(runs):
    recommender = genrec.load(runs["prorec"])
    history = [int(s.item) for s in recommender.recommend([[1, 2]], k=5, ids="internal")[0][:3]]
    ranked = recommender.recommend([history], k=10, exclude_history=True, ids="internal")[0]
    assert len({s.item for s in ranked}) == 10 and not {s.item for s in ranked} & set(history)


def test_codes_and_items_describe_the_catalog(runs):
    recommender = genrec.load(runs["tiger"])
    codes = recommender.codes()
    assert codes.codes.shape == (recommender.n_items, codes.levels)
    assert len({tuple(row) for row in codes.codes.tolist()}) == recommender.n_items
    assert recommender.items[4]["item_id"] == 5 and recommender.items[4]["title"]


def test_recommend_command_prints_a_table_json_and_plain_lines(runs, tmp_path):
    run = str(runs["prorec"])
    plain = run_genrec("recommend", run, "--history", "1 2 3", "--k", "3")
    assert plain.returncode == 0, plain.stderr
    lines = [line.split("\t") for line in plain.stdout.strip().splitlines()]
    assert [row[1] for row in lines] == ["1", "2", "3"] and all(row[4] for row in lines)  # rank, then a title
    as_json = json.loads(run_genrec("recommend", run, "--history", "1 2 3", "--k", "3", "--json").stdout)
    assert [item["item"] for item in as_json["items"]] == [row[2] for row in lines]
    users = tmp_path / "users.txt"
    users.write_text("1 2 3\n4\n")
    batch = json.loads(run_genrec("recommend", run, "--users", str(users), "--k", "2", "--json").stdout)
    assert [len(row["items"]) for row in batch] == [2, 2]
    first, alone = batch[0]["items"], as_json["items"][:2]
    assert [item["item"] for item in first] == [item["item"] for item in alone]
    # A batch of two users pads and reduces in another order than one user alone: scores agree to float32.
    assert [item["score"] for item in first] == pytest.approx([item["score"] for item in alone], rel=1e-5)


def test_export_writes_codes_and_embeddings(runs, tmp_path):
    result = run_genrec(
        "export", str(runs["prorec"]), "--codes", str(tmp_path / "c.tsv"), "--embeddings", str(tmp_path / "e.npy")
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in (tmp_path / "c.tsv").read_text().splitlines()]
    recommender = genrec.load(runs["prorec"])
    assert rows[0] == ["raw_id", "item_id", "code"] and len(rows) == recommender.n_items + 1
    assert [int(c) for c in rows[7][2].split()] == recommender.codes().codes[6].tolist()
    vectors = np.load(tmp_path / "e.npy", allow_pickle=False)
    assert vectors.shape[0] == recommender.n_items and np.isfinite(vectors).all()


def test_new_items_are_placed_with_the_runs_own_components(prorec_run):
    run_dir, results = prorec_run
    recommender = genrec.load(run_dir)
    n = recommender.n_items
    new = [
        {"item_id": 5001, "title": "Aurora gentle serum 250 ml", "brand": "Aurora", "categories": ["Skin Care"]},
        {"item_id": 5002, "title": "Cedar gel nail file", "brand": "Cedar", "categories": ["Nails"]},
    ]
    assert recommender.add_items(new) == ["5001", "5002"]
    again = genrec.load(run_dir)  # what was added is kept in the run directory
    assert again.n_items == n + 2 and again.internal_id("5002") == n + 2
    codes = again.codes().codes
    assert len({tuple(row) for row in codes.tolist()}) == n + 2  # every code still names one item
    # Their codes are the quantizer's codes of the fuser's placement of the embedder's vectors.
    from genrec.recommender import load_component

    embedder, fuser, quantizer = (load_component(run_dir, results, s) for s in ("semantic", "fuser", "quantizer"))
    raw = quantizer.encode(fuser.fuse_new({"semantic": embedder.embed_new(new)}))
    assert np.array_equal(codes[n:, :-1], raw)
    # ... and recommend can return them.
    everything = again.recommend([["1", "5001"]], k=again.n_items)[0]
    assert {"5001", "5002"} <= {s.item for s in everything}


def test_a_copy_of_an_item_lands_in_its_code_group(runs, tmp_path):
    run_dir = tmp_path / "tiger"
    shutil.copytree(runs["tiger"], run_dir)
    recommender = genrec.load(run_dir)
    original = recommender.items[9]
    recommender.add_items([{**original, "item_id": 7000}])
    codes = recommender.codes().codes
    assert codes[-1, :-1].tolist() == codes[9, :-1].tolist() and codes[-1, -1] != codes[9, -1]


def test_bad_input_gives_one_line_and_writes_nothing(prorec_run, tmp_path):
    run_dir, _ = prorec_run
    run = str(run_dir)
    for args, fragment in (
        (["--history", "1 99999"], "unknown item id '99999'"),
        (["--history", " "], "history 1 is empty"),
        ([], "give one of --history"),
    ):
        result = run_genrec("recommend", run, *args)
        assert result.returncode == 2 and fragment in result.stdout + result.stderr, result.stdout + result.stderr
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    result = run_genrec("recommend", str(unfinished), "--history", "1")
    assert result.returncode == 1 and "not a finished run" in result.stdout + result.stderr
    clash = tmp_path / "clash.jsonl"
    clash.write_text('{"item_id": 5, "title": "x"}\n')
    result = run_genrec("items", "add", run, str(clash))
    assert result.returncode == 1 and "clash.jsonl:1: item id '5' clashes" in result.stdout + result.stderr
    assert not (run_dir / "added").exists()
    with pytest.raises(DataError, match="no 'item_id'"):
        genrec.load(run_dir).add_items([{"title": "no id"}])
    with pytest.raises(ConfigError, match="must be in 1"):
        genrec.load(run_dir).recommend([["1"]], k=0)


def _own_store(run_dir, results, tmp_path):
    """Point the run directory at a private copy of its store."""
    store = tmp_path / "store"
    shutil.copytree(results["store"], store)
    stages = {s: {**e, "path": str(store / s / e["key"])} for s, e in results["stages"].items()}
    (run_dir / "results.json").write_text(json.dumps({**results, "stages": stages, "store": str(store)}))
    return store


def test_a_run_of_an_earlier_release_with_its_embedder_stage_loads_and_places_new_items(prorec_run, tmp_path):
    """Before the semantic stage had its name, results and store called it ``embedder``."""
    run_dir, results = prorec_run
    store = _own_store(run_dir, results, tmp_path)
    (store / "semantic").rename(store / "embedder")
    old = json.loads((run_dir / "results.json").read_text())
    entry = old["stages"].pop("semantic")
    old["stages"]["embedder"] = {**entry, "path": str(tmp_path / "moved")}  # found by the store's old folder
    old["config"]["stages"] = {("embedder" if s == "semantic" else s): v for s, v in old["config"]["stages"].items()}
    (run_dir / "results.json").write_text(json.dumps(old))
    recommender = genrec.load(run_dir)
    assert recommender.results["config"]["stages"]["semantic"]["name"] == "text"
    assert recommender.add_items([{"item_id": 9001, "title": "Aurora serum"}]) == ["9001"]


def test_a_changed_weights_file_is_refused(prorec_run, tmp_path):
    run_dir, results = prorec_run
    store = _own_store(run_dir, results, tmp_path)
    weights = store / "generator" / results["stages"]["generator"]["key"] / "fitted" / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    result = run_genrec("recommend", str(run_dir), "--history", "1")
    assert result.returncode == 1 and "weights.safetensors: sha256 does not match" in result.stdout + result.stderr


def test_store_clean_keeps_the_trained_model(runs, tmp_path):
    results = json.loads((runs["tiger"] / "results.json").read_text())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    store = _own_store(run_dir, results, tmp_path)
    cleaned = run_genrec("store", "clean", "--yes", "--store-dir", str(store))
    assert cleaned.returncode == 0, cleaned.stderr
    assert not [p for p in store.glob("generator/.work-*") if p.is_dir()]  # the checkpoints are gone ...
    assert len(genrec.load(run_dir).recommend([["1", "2"]], k=5)[0]) == 5  # ... the model is not


def test_the_python_example_of_the_docs_runs(runs, tmp_path, monkeypatch):
    from conftest import ROOT

    page = (ROOT / "docs" / "using-a-run.md").read_text()
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copytree(runs["prorec"], tmp_path / "runs" / "demo")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/using-a-run.md", "exec"), {})
    assert genrec.load("runs/demo").internal_id("9101") == genrec.load("runs/demo").n_items


def test_new_items_follow_their_nearest_trained_item(prorec_run):
    run_dir, _ = prorec_run
    recommender = genrec.load(run_dir)
    n = recommender.n_items
    recommender.add_items([{"item_id": 6001, "title": "Aurora gentle serum 250 ml", "brand": "Aurora"}])
    proxy = int(genrec.load(run_dir)._proxies[0])  # kept with the added items
    assert 1 <= proxy <= n
    history, k = [[1, 2, 3]], recommender.n_items  # the whole catalogue: the proxy is surely ranked
    generated = [s.item for s in recommender.recommend(history, k=k, ids="internal", new_items="generated")[0]]
    followed = recommender.recommend(history, k=k, ids="internal")[0]
    items = [s.item for s in followed]
    # A new item is ranked where the generator put it or right after its proxy, whichever is higher.
    if generated.index(n + 1) < generated.index(proxy):
        assert items == generated
    else:
        at = items.index(proxy)
        assert items[at + 1] == n + 1 and followed[at + 1].score == followed[at].score
        assert [i for i in items if i != n + 1] == [i for i in generated if i != n + 1]


def test_followers_are_placed_after_their_proxy_unless_already_higher():
    from genrec.recommender import _followed

    ranked = np.array([[5, 7, 9, 2], [8, 6, 1, 3]])
    scores = np.array([[-1.0, -2.0, -3.0, -4.0], [-1.0, -2.0, -3.0, -4.0]])
    followers = {7: [11], 6: [8]}  # 11 follows 7; 8 follows 6, but row 2 already ranks 8 first
    items, new_scores = _followed(ranked, scores, followers, excluded=np.array([[0, 0], [0, 0]]))
    assert items.tolist() == [[5, 7, 11, 9], [8, 6, 1, 3]]
    assert new_scores[0].tolist() == [-1.0, -2.0, -2.0, -3.0]
    excluded, _ = _followed(ranked, scores, followers, excluded=np.array([[11, 0], [0, 0]]))
    assert excluded[0].tolist() == [5, 7, 9, 2]  # a history item never comes back as a follower
