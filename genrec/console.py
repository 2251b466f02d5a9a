"""Console output: one rich console on stderr for logs and progress, so stdout stays for results."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console

T = TypeVar("T")
console = Console(stderr=True, highlight=False)
if not console.is_terminal:  # logs and CI: wide enough that tables keep their column names
    console.width = max(console.width, 120)


def log(message: str) -> None:
    console.log(message, _stack_offset=2)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """A transient progress bar on a terminal; a plain pass-through elsewhere (CI logs, pipes)."""
    if not console.is_terminal:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=description, total=total, console=console, transient=True)
