"""One smoke test per recipe on demo data (RecBole style), through the real command line."""

import json

import numpy as np
import pytest

from conftest import run_genrec
from genrec.artifacts import load_arrays

# Small but real settings so each recipe trains for a few epochs in seconds.
QUICK_TIGER = ["--set", "generator.epochs=3", "--set", "generator.valid_users=100"]
QUICK_QUANTIZER = ["--set", "quantizer.codebook_size=16"]
QUICK_ALIGN = ["--set", "fuser.epochs=3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One artifact store for the module, so the text embeddings are computed once."""
    return tmp_path_factory.mktemp("store")


def _run(recipe: str, run_dir, store, *args: str) -> dict:
    result = run_genrec("recipe", recipe, "--data", "demo", "--run-dir", str(run_dir), "--store-dir", str(store), *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((run_dir / "results.json").read_text())


def _check_results(results: dict) -> None:
    for split in ("valid", "test"):
        assert set(results[split]) == {f"{m}@{k}" for k in (5, 10, 20) for m in ("recall", "ndcg")}
        assert all(0.0 <= v <= 1.0 for v in results[split].values())
    assert results["protocol"]["max_history"] == 20
    assert results["timings"]["generator"] > 0
    training = results["training"]
    assert 1 <= training["best_epoch"] <= training["epochs_run"] == len(training["valid_curve"])
    assert training["seconds"] > 0
    assert results["config"]["seed"] == 0


def test_sasrec_recipe(tmp_path, store):
    results = _run("sasrec", tmp_path / "run", store, "--set", "generator.epochs=4")
    _check_results(results)
    assert results["test"]["ndcg@10"] > results["baselines"]["most_popular"]["test"]["ndcg@10"]


def test_tiger_recipe(tmp_path, store):
    results = _run("tiger", tmp_path / "run", store, *QUICK_TIGER, *QUICK_QUANTIZER)
    _check_results(results)
    assert results["config"]["stages"]["semantic"]["name"] == "text"
    codes = results["codes"]
    assert 0.0 <= codes["collision_rate"] <= 1.0 and codes["largest_group"] >= 1
    # the same command again reuses every stage
    again = _run("tiger", tmp_path / "run", store, *QUICK_TIGER, *QUICK_QUANTIZER)
    assert all(stage["reused"] for stage in again["stages"].values())
    for name, stage in again["stages"].items():  # what building took is still reported
        assert stage["build_seconds"] == results["stages"][name]["build_seconds"] > 0
    assert again["test"] == results["test"]


def test_prorec_recipe(tmp_path, store):
    results = _run("prorec", tmp_path / "run", store, *QUICK_TIGER, *QUICK_QUANTIZER, *QUICK_ALIGN)
    _check_results(results)
    assert results["config"]["stages"]["fuser"]["name"] == "prorec-align"
    assert results["auxiliary_losses"]  # the distillation losses reached the generator
    fuser_training = results["stages"]["fuser"]["training"]  # the alignment model's own training record
    assert fuser_training["epochs_run"] >= 1 and len(fuser_training["valid_curve"]) == fuser_training["epochs_run"]


def test_prorec_recipe_with_the_causal_generator(tmp_path, store):
    results = _run(
        "prorec", tmp_path / "run", store, "--generator", "causal", *QUICK_TIGER, *QUICK_QUANTIZER, *QUICK_ALIGN
    )
    _check_results(results)
    assert results["config"]["stages"]["generator"]["name"] == "causal"
    assert results["auxiliary_losses"]  # distillation works with the causal generator too
    assert results["test"]["ndcg@10"] > results["baselines"]["most_popular"]["test"]["ndcg@10"]


def test_swapping_a_stage_by_name(tmp_path, store):
    results = _run("tiger", tmp_path / "run", store, "--quantizer", "kmeans", *QUICK_TIGER, *QUICK_QUANTIZER)
    assert results["config"]["stages"]["quantizer"]["name"] == "kmeans"


def test_same_seed_gives_the_same_codes_and_metrics(tmp_path):
    runs = []
    for name in ("a", "b"):
        results = _run(
            "tiger",
            tmp_path / name,
            tmp_path / f"store-{name}",
            "--semantic-embedder",
            "tfidf",
            *QUICK_TIGER,
            *QUICK_QUANTIZER,
        )
        codes_dir = results["stages"]["quantizer"]["path"]
        runs.append((results, load_arrays(f"{codes_dir}/codes.npz")["codes"]))
    (first, codes_a), (second, codes_b) = runs
    np.testing.assert_array_equal(codes_a, codes_b)
    assert first["valid"] == second["valid"] and first["test"] == second["test"]


def test_stages_that_do_not_depend_on_the_seed_are_shared_by_every_seed(tmp_path, store):
    quick = ("--semantic-embedder", "tfidf", *QUICK_TIGER, *QUICK_QUANTIZER)
    first = _run("tiger", tmp_path / "s0", store, "--seed", "0", *quick)
    second = _run("tiger", tmp_path / "s1", store, "--seed", "1", *quick)
    for stage in ("semantic", "fuser"):  # tfidf and the semantic fuser declare seeded = False
        assert second["stages"][stage]["key"] == first["stages"][stage]["key"] and second["stages"][stage]["reused"]
    for stage in ("quantizer", "generator"):
        assert second["stages"][stage]["key"] != first["stages"][stage]["key"]
        assert not second["stages"][stage]["reused"]


def test_runs_that_read_one_training_out_differently_train_it_once(tmp_path, store):
    """``prorec-align``'s ``integrated`` and ``causal``'s ``rerank`` are applied after training: a run that
    changes only them continues the finished training of the first instead of training again."""
    quick = ("--semantic-embedder", "tfidf", "--generator", "causal", *QUICK_TIGER, *QUICK_QUANTIZER, *QUICK_ALIGN)
    first = _run("prorec", tmp_path / "first", store, *quick)

    def run_again(name: str, *changed: str) -> tuple[dict, str]:
        result = run_genrec(
            "recipe", "prorec", "--data", "demo", "--run-dir", str(tmp_path / name), "--store-dir", str(store),
            *quick, *changed,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads((tmp_path / name / "results.json").read_text()), " ".join(result.stderr.split())

    concat, log = run_again("concat", "--set", "fuser.integrated=concat")
    assert concat["stages"]["fuser"]["key"] != first["stages"]["fuser"]["key"]  # another output...
    assert "/prorec-align/" in log and "at epoch 3" in log  # ...from the same training, continued
    assert concat["stages"]["fuser"]["training"] == first["stages"]["fuser"]["training"]
    fused = [load_arrays(f"{run['stages']['fuser']['path']}/embeddings.npz") for run in (first, concat)]
    np.testing.assert_array_equal(fused[0]["view_collaborative"], fused[1]["view_collaborative"])
    assert fused[1]["vectors"].shape[1] == 2 * fused[0]["vectors"].shape[1]  # [E_C, A(E_S)], read out anew

    reranked, log = run_again("rerank", "--set", "generator.rerank=true")
    assert all(reranked["stages"][s]["reused"] for s in ("semantic", "fuser", "quantizer"))
    assert not reranked["stages"]["generator"]["reused"] and "/causal/" in log and "at epoch 3" in log
    assert reranked["training"]["valid_curve"] == first["training"]["valid_curve"]
    assert "rerank" in reranked["training"]["selected"]  # the hybrid's weight, chosen on the same weights


def test_the_exclude_history_protocol_is_recorded_and_keyed_apart(tmp_path, store):
    standard = _run("sasrec", tmp_path / "standard", store, "--set", "generator.epochs=2")
    excluded = _run("sasrec", tmp_path / "excluded", store, "--set", "generator.epochs=2", "--exclude-history")
    assert excluded["protocol"]["exclude_history"] is True and standard["protocol"]["exclude_history"] is False
    assert excluded["stages"]["generator"]["key"] != standard["stages"]["generator"]["key"]
    assert not excluded["stages"]["generator"]["reused"]


def test_run_directory_keeps_per_epoch_metrics_and_the_console_log(tmp_path, store):
    args = ("--set", "generator.epochs=2", "--set", "generator.dim=16")  # a model no other test trains
    results = _run("sasrec", tmp_path / "run", store, *args)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2] and all(line["stage"] == "generator" for line in lines)
    assert [round(line["valid"]["ndcg@10"], 5) for line in lines] == results["training"]["valid_curve"]
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "epoch 2/2" in log and "sasrec on demo" in log
    # Reused by a second run, the stage's history still fills the new run's metrics.jsonl.
    _run("sasrec", tmp_path / "again", store, *args)
    assert (tmp_path / "again" / "metrics.jsonl").read_text() == (tmp_path / "run" / "metrics.jsonl").read_text()


def test_a_plugin_component_brings_its_own_profile_for_a_dataset_and_set_wins(capsys):
    import inspect
    import json

    from genrec.discovery import get_registry
    from genrec_plugins.quantizers.rkmeans import ResidualKMeans

    class SmallOnDemo(ResidualKMeans):
        """Residual k-means that knows its size for the demo data."""

        profiles = {"demo": {"levels": 2, "codebook_size": 5}}

    registry = get_registry()
    with registry.registering("small-plugin") as plugin_registry:
        plugin_registry.add("quantizer", "small-on-demo", SmallOnDemo)
    try:
        command = registry.get("recipe", "tiger").load()
        kwargs = {k: getattr(p.default, "default", p.default) for k, p in inspect.signature(command).parameters.items()}
        command(**{**kwargs, "quantizer": "small-on-demo", "print_config": True, "set": ["quantizer.levels=3"]})
    finally:
        registry.remove_plugin("small-plugin")
    options = json.loads(capsys.readouterr().out)["stages"]["quantizer"]["options"]
    assert options["codebook_size"] == 5 and options["levels"] == 3
