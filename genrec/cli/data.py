"""``genrec data stats|prepare``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="Datasets: statistics and preparation.", no_args_is_help=True)


@app.command("stats")
def stats(
    name: str = typer.Argument(..., help="demo, beauty, sports, toys, or a dataset directory."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Validate a dataset and print its statistics."""
    from genrec.data import load_dataset

    figures = load_dataset(name).stats()
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"dataset {figures['name']}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if key != "name":
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)


@app.command("prepare")
def prepare(
    name: str = typer.Argument(..., help="beauty, sports or toys."),
    root: Path | None = typer.Option(None, "--root", help="Where to write <name>/ (default: the genrec cache)."),
    base_url: str | None = typer.Option(None, "--base-url", help="Mirror of the Amazon 2014 raw files."),
) -> None:
    """Download the public Amazon 2014 raw files (with checksums) and prepare the dataset layout."""
    from genrec.data.amazon import prepare_dataset
    from genrec.data.resolve import AMAZON

    if name not in AMAZON:
        raise typer.BadParameter(f"{name!r} is not one of {', '.join(AMAZON)}", param_hint="NAME")
    directory = prepare_dataset(name, root=root, base_url=base_url)
    typer.echo(f"prepared {name} in {directory}")


@app.command("import")
def import_(
    interactions: Path = typer.Argument(..., help="CSV or TSV with a header: user, item and time columns."),
    out: Path = typer.Option(..., "--out", help="The dataset directory to write."),
    items: Path | None = typer.Option(None, "--items", help="Item metadata: CSV/TSV or JSON lines, by item id."),
    user: str = typer.Option("user", "--user-column", help="The user id column."),
    item: str = typer.Option("item", "--item-column", help="The item id column (in both files)."),
    time: str = typer.Option(
        "timestamp", "--time-column", help="Time column (numbers or ISO dates); '' for file order."
    ),
    kcore: int = typer.Option(0, "--kcore", help="Keep only users and items with at least this many interactions."),
    separator: str | None = typer.Option(
        None, "--separator", help="Field separator (default: tab if the header has one, else comma)."
    ),
) -> None:
    """Import interactions with string ids into genrec's dataset layout (original ids kept as raw_id)."""
    from genrec.data.importing import import_dataset

    if kcore < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--kcore")
    done = import_dataset(interactions, out, items, user, item, time or None, kcore, separator)
    typer.echo(
        f"{done.directory}: {done.users:,} users, {done.items:,} items, {done.interactions:,} interactions"
        + (f" ({done.dropped:,} dropped by the {kcore}-core filter)" if kcore > 1 else "")
    )
