"""Shared fixtures for genrec's own tests (plugin authors get theirs from genrec.testing)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def pip_install_target(source: Path, target: Path) -> Path:
    """Install a plugin package with pip into ``target`` (no index, no network), as a user would."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    return target


def run_genrec(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run the installed ``genrec`` command in a subprocess."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from genrec.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(autouse=True, scope="session")
def one_thread_per_worker():
    """Tests run on 2 cores with 2 workers: more threads per process only oversubscribe the cores."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "beauty" / "interactions.txt").is_file():
        pytest.skip(f"the real Amazon data is not at {SHARED_DATA}")
    return SHARED_DATA
