"""The artifact store: every stage output on disk, written atomically, keyed by its inputs.

A stage's output lives in ``<root>/<stage>/<key>/`` with a ``manifest.json`` (component, options,
input keys, genrec version). The key is a hash of the manifest, so an unchanged stage is found and
reused, and a killed run resumes from the last finished stage. A directory only appears once it is
complete (written in a temporary directory, then renamed); a file lock serialises runs sharing a store.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MANIFEST = "manifest.json"
WORK = ".work-"  # prefix of a training stage's checkpoint directory


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any) -> Path:
    return atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextlib.contextmanager
def atomic_directory(target: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``target`` in one rename."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def save_arrays(path: str | Path, **arrays: np.ndarray) -> Path:
    """Arrays to an ``.npz`` (no pickled objects), atomically."""
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{name: np.asarray(a) for name, a in arrays.items()})
    return atomic_write_bytes(path, buffer.getvalue())


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(directory: Path) -> dict[str, str]:
    """sha256 of every file under ``directory`` (the manifest aside), by relative path."""
    return {
        str(path.relative_to(directory)): file_sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class StoreEntry:
    """One directory of the store: a stage's ``output``, its kept ``checkpoints``, or an ``unfinished``
    build left by a killed process."""

    stage: str
    kind: str
    path: Path
    size: int
    component: str = ""


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@dataclass(frozen=True)
class Artifact:
    stage: str
    key: str
    path: Path
    manifest: dict[str, Any]
    reused: bool


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path_for(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def workdir(self, stage: str, key: str) -> Path:
        """Where a training stage keeps its checkpoints (kept after publishing; see ``clean``)."""
        return self.root / stage / f"{WORK}{key}"

    @staticmethod
    @contextlib.contextmanager
    def holding(lock: Any, what: str) -> Iterator[None]:
        """Hold ``lock``; while another process holds it, say so and who, then wait for it."""
        from filelock import Timeout

        owner = Path(lock.lock_file + ".owner")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            from genrec.console import log

            try:
                holder = owner.read_text().strip()
            except FileNotFoundError:  # not written yet, or its holder just released the lock
                holder = "another process"
            log(f"waiting for {what}: {holder} is building it (lock {lock.lock_file})")
            lock.acquire()
        try:
            owner.write_text(f"process {os.getpid()} on {os.uname().nodename}\n")
            yield
        finally:
            owner.unlink(missing_ok=True)
            lock.release()

    def work_lock(self, stage: str, key: str):  # noqa: ANN201 - a filelock.FileLock
        return self.lock(stage, f"work-{key}")

    def lock(self, stage: str, key: str):  # noqa: ANN201 - a filelock.FileLock
        from filelock import FileLock

        lock_path = self.root / stage / f".{key}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        return FileLock(str(lock_path))

    @staticmethod
    def _full_manifest(stage: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        from genrec import __version__

        return {**manifest, "stage": stage, "genrec_version": __version__}

    def stage_key(self, stage: str, manifest: Mapping[str, Any]) -> str:
        return digest(self._full_manifest(stage, manifest))

    def stage(
        self,
        stage: str,
        manifest: Mapping[str, Any],
        build: Callable[[Path], None],
    ) -> Artifact:
        """Reuse the stage output for ``manifest`` if complete, else ``build(tmpdir)`` it atomically."""
        manifest = self._full_manifest(stage, manifest)
        key = digest(manifest)
        path = self.path_for(stage, key)
        with self.holding(self.lock(stage, key), f"the {stage} stage {key}"):
            if (path / MANIFEST).is_file():
                return Artifact(stage, key, path, json.loads((path / MANIFEST).read_text()), True)
            with atomic_directory(path) as tmp:
                build(tmp)
                # Not part of the key: what the build wrote, so a loader can tell a changed file.
                files = {"files": file_hashes(tmp)}
                (tmp / MANIFEST).write_text(json.dumps({**manifest, **files}, indent=2, default=_json_default) + "\n")
        return Artifact(stage, key, path, manifest, False)

    def entries(self) -> list[StoreEntry]:
        """Every directory of the store, by stage and kind."""
        found = []
        for stage_dir in sorted(p for p in self.root.glob("*") if p.is_dir()):
            for path in sorted(p for p in stage_dir.iterdir() if p.is_dir()):
                if (path / MANIFEST).is_file():
                    component = json.loads((path / MANIFEST).read_text()).get("component", "")
                    found.append(StoreEntry(stage_dir.name, "output", path, _size(path), component))
                elif path.name.startswith(WORK):
                    found.append(StoreEntry(stage_dir.name, "checkpoints", path, _size(path)))
                elif path.name.startswith("."):  # atomic_directory's temporary or replaced directory
                    found.append(StoreEntry(stage_dir.name, "unfinished", path, _size(path)))
        return found

    def _lock_of(self, entry: StoreEntry):  # noqa: ANN202 - a filelock.FileLock
        name = entry.path.name
        if entry.kind == "checkpoints":
            return self.work_lock(entry.stage, name.removeprefix(WORK))
        return self.lock(entry.stage, name[1:].split(".")[0])  # .<key>.<random>.tmp or .<key>.old-<pid>

    def clean(self, delete: bool = True) -> tuple[list[StoreEntry], list[StoreEntry]]:
        """Delete kept checkpoints and unfinished builds that no running process holds (with
        ``delete=False`` only find them); return (deleted, in use). Stage outputs are never deleted."""
        from filelock import Timeout

        removed, busy = [], []
        for entry in (e for e in self.entries() if e.kind != "output"):
            try:
                with self._lock_of(entry).acquire(timeout=0):
                    if delete:
                        shutil.rmtree(entry.path)
                removed.append(entry)
            except Timeout:
                busy.append(entry)
        return removed, busy


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """A torch checkpoint (tensors and plain Python values only), written atomically."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)
