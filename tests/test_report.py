"""genrec report: grouping by configuration, mean ± std over seeds, paired tests, and --seeds."""

import json

import numpy as np
import pytest

from conftest import run_genrec
from genrec.errors import DataError
from genrec.evaluation import encode_ranks, metrics_of_ranks
from genrec.report import Run, compare, comparisons, group_runs, load_runs, markdown, summarize


def _run(tmp_path, name: str, seed: int, dim: int, ranks: np.ndarray) -> Run:
    metrics = metrics_of_ranks(ranks)
    results = {
        "recipe": "sasrec",
        "data": {"name": "demo", "fingerprint": "f"},
        "config": {
            "recipe": "sasrec",
            "seed": seed,
            "max_history": 20,
            "stages": {"generator": {"name": "sasrec", "options": {"dim": dim}}},
        },  # fmt: skip
        "valid": metrics,
        "test": metrics,
        "protocol": {"max_history": 20, "exclude_history": False},
        "per_user": encode_ranks(valid=ranks, test=ranks),
        "training": {"valid_curve": [0.1, 0.2]},
    }
    directory = tmp_path / name
    directory.mkdir()
    (directory / "results.json").write_text(json.dumps(results))
    return load_runs([directory])[0]


def test_groups_are_labelled_by_what_differs_and_summarized_over_seeds(tmp_path) -> None:
    rng = np.random.default_rng(0)
    good = [_run(tmp_path, f"g{s}", s, 64, rng.choice([1, 2, 0], size=500, p=[0.5, 0.3, 0.2])) for s in (0, 1, 2)]
    poor = [_run(tmp_path, f"p{s}", s, 32, rng.choice([1, 2, 0], size=500, p=[0.2, 0.3, 0.5])) for s in (0, 1)]
    groups = group_runs([*good, *poor])
    assert list(groups) == ["sasrec on demo generator.dim=64", "sasrec on demo generator.dim=32"]
    values = [run.results["test"]["ndcg@10"] for run in good]
    mean, std = summarize(groups["sasrec on demo generator.dim=64"], "test")["ndcg@10"]
    assert mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values, ddof=1))
    (pair,) = comparisons(groups)
    assert pair.difference > 0.2 and pair.p_bootstrap < 0.01 and pair.p_ttest < 0.01 and pair.users == 500
    same = compare(("a", good), ("b", good))
    assert same is not None and same.difference == 0 and same.p_bootstrap == 1.0 and same.p_ttest == 1.0
    text = markdown(groups, [pair])
    assert "| sasrec on demo generator.dim=64 | 0,1,2 |" in text and "p (bootstrap)" in text


def test_settings_only_newer_runs_record_give_way_to_the_runs_names(tmp_path) -> None:
    ranks = np.ones(10, dtype=np.int64)
    old = _run(tmp_path, "old-seed0", 0, 64, ranks)
    new = _run(tmp_path, "new-seed0", 0, 64, ranks)
    new.results["config"]["stages"]["generator"]["options"]["rerank"] = True  # an option the old run predates
    assert list(group_runs([old, new])) == ["sasrec on demo [old]", "sasrec on demo [new]"]
    seeds = [_run(tmp_path, f"s{seed}", seed, 64, ranks) for seed in (0, 1)]
    assert list(group_runs([*seeds, old])) == ["sasrec on demo"]  # one configuration, whatever the names


def test_the_protocol_option_labels_its_groups_and_keeps_them_unpaired(tmp_path) -> None:
    ranks = np.ones(10, dtype=np.int64)
    standard = _run(tmp_path, "standard", 0, 64, ranks)
    excluded = _run(tmp_path, "excluded", 0, 64, ranks)
    excluded.results["config"]["exclude_history"] = True  # recorded only when on
    excluded.results["protocol"]["exclude_history"] = True
    groups = group_runs([standard, excluded])
    assert list(groups) == ["sasrec on demo exclude_history=False", "sasrec on demo exclude_history=True"]
    assert comparisons(groups) == []


def test_runs_on_different_splits_are_not_paired(tmp_path) -> None:
    first = _run(tmp_path, "a", 0, 64, np.ones(10, dtype=np.int64))
    second = _run(tmp_path, "b", 0, 32, np.ones(12, dtype=np.int64))
    with pytest.raises(DataError, match="the splits differ"):
        compare(("a", [first]), ("b", [second]))


def test_report_command_writes_markdown_and_curves(tmp_path) -> None:
    runs = []
    for seed in (0, 1):
        run_dir = tmp_path / f"seed{seed}"
        result = run_genrec("recipe", "sasrec", "--data", "demo", "--seed", str(seed), "--run-dir", str(run_dir),
                            "--store-dir", str(tmp_path / "store"), "--set", "generator.epochs=2")  # fmt: skip
        assert result.returncode == 0, result.stderr
        runs.append(str(run_dir))
    result = run_genrec("report", *runs, "--markdown", str(tmp_path / "r.md"), "--plot", str(tmp_path / "c.png"))
    assert result.returncode == 0, result.stderr
    assert "mean ± std" in result.stdout and (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    assert "| sasrec on demo | 0,1 |" in (tmp_path / "r.md").read_text()
    missing = run_genrec("report", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "not a finished run" in missing.stdout + missing.stderr


def test_seeds_run_one_directory_per_seed_and_summarize(tmp_path) -> None:
    result = run_genrec("recipe", "sasrec", "--data", "demo", "--seeds", "0,1", "--run-dir", str(tmp_path / "sas"),
                        "--set", "generator.epochs=1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test over seeds 0, 1" in result.stdout + result.stderr
    seeds = [json.loads((tmp_path / "sas" / f"seed{s}" / "results.json").read_text())["config"]["seed"] for s in (0, 1)]
    assert seeds == [0, 1]
    bad = run_genrec("recipe", "sasrec", "--data", "demo", "--seeds", "0,x")
    assert bad.returncode == 2 and "comma-separated integers" in bad.stdout + bad.stderr
