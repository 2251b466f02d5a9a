"""``genrec store list|clean``: what the artifact store holds, and reclaiming the space of checkpoints."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import typer

from genrec.artifacts import ArtifactStore, StoreEntry

STORE_DIR = typer.Option(Path("runs/store"), "--store-dir", help="Artifact store.")


def _open(store_dir: Path) -> ArtifactStore:
    if not store_dir.is_dir():
        raise typer.BadParameter(f"no artifact store at {store_dir}", param_hint="--store-dir")
    return ArtifactStore(store_dir)


def _megabytes(entries: Iterable[StoreEntry]) -> str:
    return f"{sum(e.size for e in entries) / 1e6:,.1f} MB"


app = typer.Typer(help="The artifact store: list it, reclaim checkpoint space.", no_args_is_help=True)


@app.command("list")
def list_entries(
    store_dir: Path = STORE_DIR,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every stage output, kept checkpoint directory and unfinished build, with its size."""
    entries = _open(store_dir).entries()
    if as_json:
        rows = [{**vars(e), "path": str(e.path)} for e in entries]
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{store_dir}: {len(entries)} directories, {_megabytes(entries)}")
    for column in ("stage", "kind", "component"):
        table.add_column(column)
    table.add_column("directory", no_wrap=True)
    table.add_column("size", justify="right")
    for e in entries:
        table.add_row(e.stage, e.kind, e.component, e.path.name, _megabytes([e]))
    Console().print(table)


@app.command("clean")
def clean(
    store_dir: Path = STORE_DIR,
    yes: bool = typer.Option(False, "--yes", help="Delete; without it, only show what would go."),
) -> None:
    """Delete kept training checkpoints and unfinished builds; stage outputs stay.

    A run whose checkpoints are deleted trains that stage from the start if run again (an interrupted
    one, or a longer one that would have continued a finished shorter one). What a running process
    holds is left alone.
    """
    removed, busy = _open(store_dir).clean(delete=yes)
    verb = "deleted" if yes else "would delete"
    for e in removed:
        typer.echo(f"{verb} {e.path} ({e.kind}, {_megabytes([e])})")
    for e in busy:
        typer.echo(f"in use, kept {e.path}")
    count = f"{len(removed)} director{'y' if len(removed) == 1 else 'ies'}"
    typer.echo(f"{verb} {count}, {_megabytes(removed)}" + ("" if yes else "; run with --yes"))
