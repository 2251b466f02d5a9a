"""Faults: a recipe killed mid-training resumes to the same result; interrupted writes leave nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_genrec

ARGS = [
    "--data",
    "demo",
    "--set",
    "generator.epochs=5",
    "--set",
    "generator.dim=32",
    "--set",
    "generator.patience=10",
    "--set",
    "generator.batch_size=128",
]


def _command(run_dir, store):
    return [
        sys.executable,
        "-c",
        "from genrec.cli import main; main()",
        "recipe",
        "sasrec",
        *ARGS,
        "--run-dir",
        str(run_dir),
        "--store-dir",
        str(store),
    ]


def _wait_for_checkpoint(store, process, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(store.glob("generator/.work-*/**/last.pt")):
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended before its first checkpoint: {process.stderr.read()}")
        time.sleep(0.2)
    pytest.fail("no checkpoint appeared")


@pytest.fixture(scope="module")
def expected(tmp_path_factory):
    """The metrics of an uninterrupted run with the same seed."""
    root = tmp_path_factory.mktemp("reference")
    reference = run_genrec(
        "recipe", "sasrec", *ARGS, "--run-dir", str(root / "run"), "--store-dir", str(root / "store")
    )
    assert reference.returncode == 0, reference.stderr
    return json.loads((root / "run" / "results.json").read_text())


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_training_resumes_to_the_same_metrics(tmp_path, sig, expected):
    store, run_dir = tmp_path / "store", tmp_path / "run"
    process = subprocess.Popen(_command(run_dir, store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(store, process)
    os.kill(process.pid, sig)
    process.wait(timeout=60)
    assert process.returncode != 0
    if sig == signal.SIGTERM:
        assert "run the same command again to resume" in process.stderr.read()
    assert not (run_dir / "results.json").exists()
    assert not list(store.glob("generator/*/manifest.json"))  # no half-finished stage was published

    resumed = run_genrec("recipe", "sasrec", *ARGS, "--run-dir", str(run_dir), "--store-dir", str(store))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    results = json.loads((run_dir / "results.json").read_text())
    assert results["training"]["epochs_run"] == expected["training"]["epochs_run"]  # counted across the kill
    for split in ("valid", "test"):
        for metric, value in expected[split].items():
            assert results[split][metric] == pytest.approx(value, abs=1e-6), (split, metric)


def test_a_longer_run_continues_a_finished_shorter_one(tmp_path, expected):
    store, shorter = tmp_path / "store", [*ARGS, "--set", "generator.epochs=3"]
    first = run_genrec("recipe", "sasrec", *shorter, "--run-dir", str(tmp_path / "short"), "--store-dir", str(store))
    assert first.returncode == 0, first.stderr
    longer = run_genrec("recipe", "sasrec", *ARGS, "--run-dir", str(tmp_path / "long"), "--store-dir", str(store))
    assert longer.returncode == 0, longer.stderr
    assert "resumed from" in longer.stderr and "at epoch 3" in longer.stderr
    results = json.loads((tmp_path / "long" / "results.json").read_text())
    assert results["training"]["epochs_run"] == expected["training"]["epochs_run"]
    for split in ("valid", "test"):
        for metric, value in expected[split].items():
            assert results[split][metric] == pytest.approx(value, abs=1e-6), (split, metric)
