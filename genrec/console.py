"""Console output: one rich console on stderr for logs and progress, so stdout stays for results."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console

T = TypeVar("T")
console = Console(stderr=True, highlight=False, log_path=False)
if not console.is_terminal:  # logs and CI: wide enough that tables keep their column names
    console.width = max(console.width, 120)
_copies: list[Console] = []  # run logs (log.txt) that every line also goes to
_epoch_sinks: list[tuple[Path, str, Any]] = []  # (metrics.jsonl, stage, TensorBoard writer or None)


def log(message: str) -> None:
    console.log(message)
    for copy in _copies:
        copy.log(message)


def echo(renderable: Any) -> None:
    """Print a table or line on the console, and into the run logs."""
    console.print(renderable)
    for copy in _copies:
        copy.print(renderable)


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[None]:
    """Append everything logged meanwhile to ``path`` (plain text), as the console shows it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        copy = Console(file=handle, width=120, log_path=False, highlight=False, color_system=None)
        _copies.append(copy)
        try:
            yield
        finally:
            _copies.remove(copy)


@contextlib.contextmanager
def epoch_records(path: Path, stage: str) -> Iterator[None]:
    """Append each epoch the shared loop finishes meanwhile to ``path`` as a JSON line of ``stage``; when
    the ``tensorboard`` package is installed, also as scalars under ``<path's folder>/tensorboard``."""
    writer = _tensorboard(path.parent / "tensorboard")
    sink = (path, stage, writer)
    _epoch_sinks.append(sink)
    try:
        yield
    finally:
        _epoch_sinks.remove(sink)
        if writer is not None:
            writer.close()


def _tensorboard(directory: Path) -> Any:
    """torch's SummaryWriter when ``tensorboard`` is installed (``pip install tensorboard``), else None."""
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(directory))


def epoch_line(stage: str, record: Mapping[str, Any]) -> str:
    """One epoch record as a metrics.jsonl line: stage, 1-based epoch, loss, validation metrics, seconds."""
    return json.dumps({"stage": stage, **record, "epoch": int(record["epoch"]) + 1}, default=float)


def record_epoch(record: Mapping[str, Any]) -> None:
    for path, stage, writer in _epoch_sinks:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(epoch_line(stage, record) + "\n")
        if writer is not None:
            epoch = int(record["epoch"]) + 1
            writer.add_scalar(f"{stage}/loss", float(record["loss"]), epoch)
            for name, value in (record.get("valid") or {}).items():
                writer.add_scalar(f"{stage}/valid/{name}", float(value), epoch)
            writer.add_scalar(f"{stage}/seconds", float(record["seconds"]), epoch)
            writer.flush()


def progress(items: Iterable[T], description: str, total: int | None = None, completed: int = 0) -> Iterator[T]:
    """A transient progress bar on a terminal (``completed`` of ``total`` done before ``items``); a plain
    pass-through elsewhere (CI logs, pipes)."""
    if not console.is_terminal:
        yield from items
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:  # "312/1046 0:04:10": done, total, left
        yield from bar.track(items, total=total, completed=completed, description=description)
