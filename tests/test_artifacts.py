"""The artifact store: atomic writes, reuse by key, locking, safe loading."""

import errno
import os
import threading

import numpy as np
import pytest
import torch

from genrec.artifacts import (
    ArtifactStore,
    atomic_directory,
    atomic_write_bytes,
    load_arrays,
    load_checkpoint,
    save_arrays,
    save_checkpoint,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_write_for_lack_of_space_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"good")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(target, b"x" * 1000)
    monkeypatch.undo()
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temporary file left behind


def test_atomic_directory_leaves_nothing_on_error(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out") as tmp:
        (tmp / "part").write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_store_reuses_a_stage_with_the_same_manifest(tmp_path):
    store = ArtifactStore(tmp_path)
    calls = []

    def build(directory):
        calls.append(directory)
        (directory / "out.txt").write_text("result")

    first = store.stage("quantizer", {"component": "rkmeans", "options": {"levels": 3}}, build)
    second = store.stage("quantizer", {"component": "rkmeans", "options": {"levels": 3}}, build)
    third = store.stage("quantizer", {"component": "rkmeans", "options": {"levels": 4}}, build)
    assert len(calls) == 2
    assert not first.reused and second.reused and second.path == first.path
    assert third.path != first.path
    assert (first.path / "out.txt").read_text() == "result"
    assert first.manifest["component"] == "rkmeans" and "genrec_version" in first.manifest


def test_a_failed_stage_leaves_no_artifact(tmp_path):
    store = ArtifactStore(tmp_path)

    def build(directory):
        (directory / "partial").write_text("x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.stage("fuser", {"component": "concat"}, build)
    rerun = store.stage("fuser", {"component": "concat"}, lambda d: (d / "ok").write_text("y"))
    assert not rerun.reused and (rerun.path / "ok").exists() and not (rerun.path / "partial").exists()


def test_concurrent_runs_build_a_stage_once(tmp_path):
    store = ArtifactStore(tmp_path)
    built = []

    def build(directory):
        built.append(1)
        (directory / "value").write_text("v")

    threads = [threading.Thread(target=store.stage, args=("embedder", {"component": "text"}, build)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1


def test_arrays_round_trip_without_pickle(tmp_path):
    save_arrays(tmp_path / "a.npz", x=np.arange(6).reshape(2, 3), y=np.ones(2, np.float32))
    loaded = load_arrays(tmp_path / "a.npz")
    assert loaded["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and loaded["y"].dtype == np.float32
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        np.load(tmp_path / "objects.npy", allow_pickle=False)


def test_checkpoints_load_with_weights_only(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"w": torch.ones(2), "epoch": 3, "history": [{"loss": 0.5}]})
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["epoch"] == 3 and torch.equal(state["w"], torch.ones(2))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="[Ww]eights only|weights_only"):
        load_checkpoint(tmp_path / "evil.pt")


def _store_with_leftovers(root):
    """A store with one published output, one kept checkpoint directory and one killed build."""
    store = ArtifactStore(root)
    output = store.stage("generator", {"component": "tiger"}, lambda tmp: (tmp / "metrics.json").write_text("{}"))
    save_checkpoint(root / "generator" / ".work-abc" / "last.pt", {"epoch": 3})
    killed = root / "generator" / ".0123456789abcdef.x1y2.tmp"
    killed.mkdir()
    return store, output.path, root / "generator" / ".work-abc", killed


def test_clean_deletes_checkpoints_and_killed_builds_never_outputs(tmp_path):
    store, output, checkpoints, killed = _store_with_leftovers(tmp_path)
    kinds = {e.path: e.kind for e in store.entries()}
    assert kinds == {output: "output", checkpoints: "checkpoints", killed: "unfinished"}

    found, busy = store.clean(delete=False)
    assert {e.path for e in found} == {checkpoints, killed} and busy == []
    assert checkpoints.exists() and killed.exists()

    removed, busy = store.clean()
    assert {e.path for e in removed} == {checkpoints, killed} and busy == []
    assert not checkpoints.exists() and not killed.exists()
    assert (output / "metrics.json").is_file()


def test_clean_keeps_what_a_running_build_holds(tmp_path):
    store, _, checkpoints, killed = _store_with_leftovers(tmp_path)
    # a training run holds its checkpoint lock; a build holds its stage key's lock
    with store.lock("generator", "work-abc"), store.lock("generator", "0123456789abcdef"):
        removed, busy = store.clean()
    assert removed == [] and {e.path for e in busy} == {checkpoints, killed}
    assert checkpoints.exists() and killed.exists()


def test_a_run_waiting_for_another_runs_stage_says_who_holds_it(tmp_path):
    import subprocess
    import sys
    import time

    script = (
        "import sys, time\n"
        "from genrec.artifacts import ArtifactStore\n"
        "store = ArtifactStore(sys.argv[1])\n"
        "def build(tmp):\n"
        "    time.sleep(float(sys.argv[2])); (tmp / 'x').write_text('1')\n"
        "print(store.stage('s', {'a': 1}, build).reused)\n"
    )
    first = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), "3"], stdout=subprocess.PIPE, text=True)
    lock = tmp_path / "s"
    deadline = time.time() + 20
    while not any(lock.glob("*.owner")) and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-c", script, str(tmp_path), "0"], capture_output=True, text=True)
    assert first.communicate(timeout=30)[0].strip() == "False" and second.stdout.strip() == "True"
    assert f"process {first.pid}" in second.stderr and "is building it" in second.stderr
    assert not any(lock.glob("*.owner"))  # released with the lock
