"""The command line: help, listing, datasets, option validation — clear errors, never a traceback."""

import json

import pytest

from conftest import run_genrec


def _assert_clean_failure(result, *fragments: str) -> None:
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, output


def test_help_lists_the_command_groups():
    result = run_genrec("--help")
    assert result.returncode == 0
    for command in ("list", "plugins", "data", "recipe", "analyze", "store"):
        assert command in result.stdout


def test_list_filters_by_kind():
    result = run_genrec("list", "--kind", "recipe", "--json")
    kinds = {c["kind"] for c in json.loads(result.stdout)["components"]}
    assert kinds == {"recipe"}
    _assert_clean_failure(run_genrec("list", "--kind", "widget"), "--kind", "widget")


def test_data_stats_on_demo():
    result = run_genrec("data", "stats", "demo", "--json")
    stats = json.loads(result.stdout)
    assert stats["users"] == 600 and stats["items"] == 320 and stats["interactions"] > 3000


def test_malformed_dataset_names_file_and_line(tmp_path):
    (tmp_path / "items.jsonl").write_text('{"item_id": 1, "title": "a"}\n{"item_id": 2, "title": "b"\n')
    (tmp_path / "interactions.txt").write_text("1 1 2\n")
    _assert_clean_failure(run_genrec("data", "stats", str(tmp_path)), "items.jsonl:2", "broken JSON")
    (tmp_path / "items.jsonl").write_text('{"item_id": 1}\n{"item_id": 2}\n')
    (tmp_path / "interactions.txt").write_text("1 1 2\n2 2 x\n")
    _assert_clean_failure(run_genrec("data", "stats", str(tmp_path)), "interactions.txt:2", "'x'")


def test_unknown_dataset_says_where_it_looked(tmp_path):
    result = run_genrec(
        "data", "stats", "beauty", env={"GENREC_DATA_DIR": str(tmp_path), "GENREC_CACHE_DIR": str(tmp_path)}
    )
    _assert_clean_failure(result, "beauty", "GENREC_DATA_DIR", "genrec data prepare beauty")


def test_the_earlier_stage_name_embedder_still_works_in_flags_settings_and_config_files(tmp_path):
    old = {"stages": {"embedder": {"name": "tfidf", "options": {"dim": 12}}}}
    (tmp_path / "old.json").write_text(json.dumps(old))
    for args in (["--embedder", "tfidf", "--set", "embedder.dim=12"], ["--config", str(tmp_path / "old.json")]):
        result = run_genrec("recipe", "tiger", "--print-config", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        stages = json.loads(result.stdout)["stages"]
        assert "embedder" not in stages and stages["semantic"]["name"] == "tfidf"
        assert stages["semantic"]["options"]["dim"] == 12


def test_recipe_prints_its_resolved_config():
    result = run_genrec("recipe", "prorec", "--print-config", "--set", "generator.epochs=3")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    stages = config["stages"]
    assert stages["fuser"]["name"] == "prorec-align" and stages["quantizer"]["name"] == "prorec-distill"
    assert stages["generator"]["options"]["epochs"] == 3
    assert "collaborative" not in stages  # prorec-align trains its own collaborative model


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--set", "generator.bogus=1"], ["bogus", "generator"]),
        (["--set", "generator.epochs=many"], ["epochs", "many"]),
        (["--set", "nonsense"], ["STAGE.OPTION=VALUE"]),
        (["--set", "decoder.beam=3"], ["unknown stage 'decoder'"]),
        (["--quantizer", "nope"], ["unknown quantizer 'nope'", "rkmeans"]),
        (["--max-history", "0"], ["--max-history"]),
        (["--seed", "abc"], ["--seed"]),
    ],
)
def test_bad_recipe_options_fail_before_training(args, fragments):
    _assert_clean_failure(run_genrec("recipe", "tiger", "--print-config", *args), *fragments)


def test_prorec_ablation_flags_are_checked():
    _assert_clean_failure(run_genrec("recipe", "prorec", "--concat", "--semantic-only", "--print-config"), "--concat")
    result = run_genrec("recipe", "prorec", "--no-distill", "--print-config")
    options = json.loads(result.stdout)["stages"]["quantizer"]["options"]
    assert options["collaborative_weight"] == 0 and options["semantic_weight"] == 0
    result = run_genrec("recipe", "prorec", "--collaborative-only", "--print-config")
    stages = json.loads(result.stdout)["stages"]
    assert stages["fuser"]["name"] == "collaborative" and "semantic" not in stages
    # the recipe's base quantizer serves PRORec and the source ablations alike; --quantizer overrides it
    assert stages["quantizer"]["name"] == "rkmeans"
    result = run_genrec("recipe", "prorec", "--print-config")
    assert json.loads(result.stdout)["stages"]["quantizer"]["options"]["base"] == "rkmeans"
    result = run_genrec("recipe", "prorec", "--concat", "--quantizer", "kmeans", "--print-config")
    assert json.loads(result.stdout)["stages"]["quantizer"]["name"] == "kmeans"
    # --set may tune what a flag leaves alone, never undo what it sets
    _assert_clean_failure(
        run_genrec("recipe", "prorec", "--no-align", "--set", "fuser.align_weight=0.1", "--print-config"),
        "fuser.align_weight",
        "--no-align",
    )
    result = run_genrec("recipe", "prorec", "--no-align", "--set", "fuser.temperature=0.2", "--print-config")
    assert json.loads(result.stdout)["stages"]["fuser"]["options"]["temperature"] == 0.2


@pytest.mark.slow
def test_beauty_stats_match_the_published_counts(shared_data):
    result = run_genrec("data", "stats", "beauty", env={"GENREC_DATA_DIR": str(shared_data)})
    assert result.returncode == 0, result.stderr
    for figure in ("22,363", "12,101", "198,502"):
        assert figure in result.stdout


def test_store_clean_shows_first_and_deletes_with_yes(tmp_path):
    kept = tmp_path / "generator" / ".work-abc"
    kept.mkdir(parents=True)
    (kept / "last.pt").write_bytes(b"x" * 1000)
    listed = json.loads(run_genrec("store", "list", "--store-dir", str(tmp_path), "--json").stdout)
    assert [(e["stage"], e["kind"], e["size"]) for e in listed] == [("generator", "checkpoints", 1000)]

    shown = run_genrec("store", "clean", "--store-dir", str(tmp_path))
    assert shown.returncode == 0 and "would delete" in shown.stdout and kept.exists()
    deleted = run_genrec("store", "clean", "--store-dir", str(tmp_path), "--yes")
    assert deleted.returncode == 0 and "deleted 1 directory" in deleted.stdout and not kept.exists()
    _assert_clean_failure(run_genrec("store", "list", "--store-dir", str(tmp_path / "none")), "--store-dir")


def test_version_and_show():
    from genrec import __version__

    assert run_genrec("--version").stdout.strip() == f"genrec {__version__}"
    shown = run_genrec("show", "causal", "--json")
    assert shown.returncode == 0, shown.stderr
    payload = json.loads(shown.stdout)
    options = {o["name"]: o for o in payload["options"]}
    assert payload["kind"] == "generator" and options["epochs"]["default"] == 30 and options["epochs"]["type"] == "int"
    assert "causal" in payload["doc"]
    table = run_genrec("show", "quantizer/kmeans")
    assert table.returncode == 0 and "codebook_size" in table.stdout
    missing = run_genrec("show", "nope")
    assert missing.returncode == 2 and "no component 'nope'" in missing.stdout + missing.stderr


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("generator.epochs=0", "'epochs' must be at least 1"),
        ("generator.dropout=1.5", "'dropout' must be in [0, 1)"),
        ("quantizer.codebook_size=0", "'codebook_size' must be at least 1"),
        ("generator.device=gpu", "'gpu' is not a torch device"),
    ],
)
def test_bad_values_fail_before_any_stage_runs(tmp_path, setting, fragment):
    result = run_genrec("recipe", "tiger", "--data", "demo", "--run-dir", str(tmp_path / "run"), "--set", setting)
    assert result.returncode == 2 and fragment in result.stdout + result.stderr
    assert not (tmp_path / "store").exists()  # nothing was built


def test_a_third_party_value_error_is_one_config_error():
    from genrec.config import check_values
    from genrec.errors import ConfigError
    from genrec.registry import Registry

    class Picky:
        def __init__(self, size: int = 1):
            if size > 3:
                raise ValueError(f"size must be at most 3, got {size}")

    registry = Registry()
    registry.add("quantizer", "picky", Picky)
    with pytest.raises(ConfigError, match="quantizer 'picky': size must be at most 3, got 5"):
        check_values(registry.get("quantizer", "picky"), {"size": 5}, "quantizer 'picky'")


def test_config_files_round_trip_and_flags_win(tmp_path):
    printed = run_genrec("recipe", "prorec", "--print-config", "--set", "generator.epochs=3")
    (tmp_path / "c.json").write_text(printed.stdout)
    again = run_genrec("recipe", "prorec", "--config", str(tmp_path / "c.json"), "--print-config")
    assert json.loads(again.stdout) == json.loads(printed.stdout)
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(json.loads(printed.stdout)))
    overridden = run_genrec("recipe", "prorec", "--config", str(tmp_path / "c.yaml"), "--seed", "4", "--set",
                            "generator.epochs=5", "--print-config")  # fmt: skip
    config = json.loads(overridden.stdout)
    assert config["seed"] == 4 and config["stages"]["generator"]["options"]["epochs"] == 5
    wrong = run_genrec("recipe", "tiger", "--config", str(tmp_path / "c.yaml"))
    assert wrong.returncode == 1 and "is a config of recipe 'prorec'" in wrong.stdout + wrong.stderr
    (tmp_path / "bad.yaml").write_text("stages: [1, 2\n")
    bad = run_genrec("recipe", "prorec", "--config", str(tmp_path / "bad.yaml"))
    assert bad.returncode == 1 and "bad.yaml" in bad.stdout + bad.stderr


def test_results_as_json_on_stdout_and_no_evaluable_users_is_an_error(tmp_path):
    result = run_genrec("recipe", "sasrec", "--data", "demo", "--run-dir", str(tmp_path / "run"), "--json",
                        "--set", "generator.epochs=1")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)["test"]) >= {"ndcg@10", "recall@10"}
    data = tmp_path / "tiny"
    data.mkdir()
    (data / "interactions.txt").write_text("1 1 2\n2 2 1\n")
    (data / "items.jsonl").write_text('{"item_id": 1, "title": "a"}\n{"item_id": 2, "title": "b"}\n')
    empty = run_genrec("recipe", "sasrec", "--data", str(data), "--run-dir", str(tmp_path / "r2"))
    assert empty.returncode == 1 and "no user has the 3 or more items" in empty.stdout + empty.stderr


def test_command_modules_do_not_import_the_app():
    import ast
    from pathlib import Path

    import genrec.cli

    folder = Path(genrec.cli.__file__).parent
    for path in folder.glob("*.py"):
        if path.name in ("app.py", "__init__.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.module not in ("genrec.cli.app", "genrec.cli"), f"{path.name} imports {node.module}"


def test_usage_and_option_errors_read_alike_and_exit_2_failed_work_exits_1(tmp_path):
    flag = run_genrec("recipe", "sasrec", "--bogus")
    option = run_genrec("recipe", "sasrec", "--set", "generator.epochs=0")
    for result in (flag, option):
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "No such option: --bogus (genrec recipe sasrec --help lists the options)" in flag.stdout + flag.stderr
    (tmp_path / "bad.yaml").write_text("recipe: [unclosed\n")
    failed = run_genrec("recipe", "sasrec", "--config", str(tmp_path / "bad.yaml"))
    assert failed.returncode == 1 and "error: " in failed.stdout + failed.stderr
