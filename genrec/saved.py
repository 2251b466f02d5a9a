"""Fitted state on disk: tensors in safetensors files (no pickle), plain values in JSON.

Every component with fitted state saves it with ``save(directory)`` and restores it into an instance
built with the same options with ``load(directory)`` (see docs/writing-a-plugin.md). These helpers are
what they use; the artifact store records every file's sha256, and :func:`verify_files` checks them
before a saved run is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from genrec.artifacts import MANIFEST, atomic_write_bytes, atomic_write_json, file_sha256
from genrec.errors import DataError

FITTED = "fitted"  # the subdirectory of a stage output that holds its component's fitted state
ITEMS = "items.jsonl"  # the generator stage's catalog: one JSON object per item, in internal id order


def write_items(path: Path, items: list[dict[str, Any]], first_id: int = 1) -> Path:
    """Item records as JSON lines, numbered ``first_id``, ``first_id + 1``, ... in their ``item_id``."""
    numbered = enumerate(items, start=first_id)
    lines = (json.dumps({**record, "item_id": i}, ensure_ascii=False) for i, record in numbered)
    return atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))


def save_fitted(component: Any, directory: Path) -> None:
    """``component.save(directory)`` when it has fitted state to save; a component without ``save`` is
    rebuilt from its options alone."""
    if callable(getattr(component, "save", None)):
        directory.mkdir(parents=True, exist_ok=True)
        component.save(directory)


def load_fitted(component: Any, directory: Path, where: str) -> Any:
    """Restore what :func:`save_fitted` saved into ``component`` (built with the same options)."""
    if callable(getattr(component, "load", None)):
        if not Path(directory).is_dir():
            raise DataError(
                directory,
                f"{where} has no saved fitted state: the stage was built by a genrec that did not save it; "
                "rebuild the run with --no-resume",
            )
        component.load(Path(directory))
    return component


def save_tensors(path: str | Path, tensors: Mapping[str, Any]) -> Path:
    """Named arrays or tensors to one safetensors file, atomically."""
    from safetensors.numpy import save

    arrays = {name: np.ascontiguousarray(_as_numpy(value)) for name, value in tensors.items()}
    return atomic_write_bytes(path, save(arrays))


def load_tensors(path: str | Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "the saved weights are missing")
    try:
        return load_file(str(path))
    except Exception as error:  # a truncated or foreign file
        raise DataError(path, f"not a readable safetensors file ({error})") from None


def save_module(path: str | Path, module: Any, skip: tuple[str, ...] = ()) -> Path:
    """A torch module's parameters and persistent buffers (less names starting with ``skip``)."""
    state = {k: v for k, v in module.state_dict().items() if not k.startswith(skip)}
    return save_tensors(path, state)


def load_module(path: str | Path, module: Any) -> Any:
    """Load :func:`save_module`'s file into ``module`` (same architecture, every tensor matched)."""
    import torch

    device = next(iter(module.parameters())).device
    state = {name: torch.from_numpy(array.copy()).to(device) for name, array in load_tensors(path).items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise DataError(Path(path), f"weights do not fit the model its options describe: {error}") from None
    return module


def save_json(path: str | Path, payload: Any) -> Path:
    return atomic_write_json(path, payload)


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing")
    return json.loads(path.read_text())


def verify_files(directory: Path) -> dict[str, Any]:
    """The stage's manifest, after checking every recorded file against its sha256."""
    manifest_path = Path(directory) / MANIFEST
    if not manifest_path.is_file():
        raise DataError(directory, "not a finished stage output (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    for name, expected in manifest.get("files", {}).items():
        path = Path(directory) / name
        if not path.is_file():
            raise DataError(path, "missing from its stage output")
        if file_sha256(path) != expected:
            raise DataError(path, "sha256 does not match the stage's manifest: the file was changed or damaged")
    return manifest


def _as_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)
