"""``genrec recommend|export|items add``: using a finished run (see :mod:`genrec.recommender`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from genrec.errors import ConfigError, DataError

RUN = typer.Argument(..., help="A finished run directory (holds results.json).")


def _histories(history: str | None, users: Path | None) -> list[list[str]]:
    if (history is None) == (users is None):
        raise ConfigError('give one of --history "ID ID ..." or --users FILE')
    if history is not None:
        return [history.split()]
    assert users is not None
    if not users.is_file():
        raise DataError(users, "no such file")
    lines = users.read_text(encoding="utf-8").splitlines()
    histories = [line.split() for line in lines]
    for number, row in enumerate(histories, start=1):
        if not row:
            raise DataError(users, "empty history (one history per line, item ids separated by spaces)", number)
    return histories


def recommend(
    run: Path = RUN,
    history: str | None = typer.Option(None, "--history", help='Item ids, oldest first: "ID ID ID".'),
    users: Path | None = typer.Option(None, "--users", help="A file of histories, one per line."),
    k: int = typer.Option(10, "--k", help="Items per history."),
    exclude_history: bool = typer.Option(False, "--exclude-history", help="Never recommend a history item."),
    internal: bool = typer.Option(False, "--internal", help="Ids are genrec's 1..n, not the dataset's own."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Recommend the next items for one history or a file of them."""
    from genrec.recommender import load

    histories = _histories(history, users)
    recommender = load(run)
    ids = "internal" if internal else "raw"
    given: list[list[str | int]] = [[int(i) if internal and i.isdigit() else i for i in h] for h in histories]
    ranked = recommender.recommend(given, k=k, exclude_history=exclude_history, ids=ids)
    if as_json:
        pairs = zip(given, ranked, strict=True)
        rows = [{"history": h, "items": [{"item": s.item, "score": s.score} for s in r]} for h, r in pairs]
        typer.echo(json.dumps(rows if users else rows[0], indent=2))
        return
    if not sys.stdout.isatty():  # pipes get plain tab-separated lines: user, rank, item, score, title
        for user, row in enumerate(ranked, start=1):
            for rank, scored in enumerate(row, start=1):
                title = _title(recommender, scored.item, ids)
                typer.echo(f"{user}\t{rank}\t{scored.item}\t{scored.score:.4f}\t{title}")
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for user, row in enumerate(ranked, start=1):
        title = f"history {user}: {' '.join(map(str, given[user - 1]))}" if users else "recommendations"
        table = Table(title=title)
        for column, justify in (("rank", "right"), ("item", "left"), ("title", "left"), ("score", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for rank, scored in enumerate(row, start=1):
            table.add_row(str(rank), str(scored.item), _title(recommender, scored.item, ids), f"{scored.score:.4f}")
        console.print(table)


def _title(recommender: Any, item: str | int, ids: str) -> str:
    internal = recommender.internal_id(item) if ids == "raw" else int(item)
    record = recommender.items[internal - 1]
    return str(record.get("title") or record.get("idgenrec_text") or "")


def export(
    run: Path = RUN,
    codes: Path | None = typer.Option(None, "--codes", help="Write raw id, internal id and code to this TSV."),
    embeddings: Path | None = typer.Option(None, "--embeddings", help="Write the quantized embeddings (.npy)."),
) -> None:
    """Export a run's item codes and the embeddings they were quantized from."""
    from genrec.artifacts import atomic_write_bytes, atomic_write_text
    from genrec.recommender import load, stage_dir

    if codes is None and embeddings is None:
        raise ConfigError("give --codes FILE, --embeddings FILE, or both")
    recommender = load(run)
    if codes is not None:
        table = recommender.codes()
        lines = ["raw_id\titem_id\tcode"] + [
            f"{recommender.raw_id(i)}\t{i}\t{' '.join(map(str, row))}" for i, row in enumerate(table.codes.tolist(), 1)
        ]
        atomic_write_text(codes, "\n".join(lines) + "\n")
        typer.echo(f"{len(table.codes)} codes -> {codes}", err=True)
    if embeddings is not None:
        import io

        import numpy as np

        from genrec.artifacts import load_arrays

        if "fuser" not in recommender.results["stages"]:
            raise ConfigError(f"run {run} has no fuser stage: it quantized no embeddings")
        vectors = load_arrays(stage_dir(run, recommender.results, "fuser") / "embeddings.npz")["vectors"]
        added = recommender.added_vectors()
        if len(added):
            vectors = np.concatenate([vectors, added])
        buffer = io.BytesIO()
        np.save(buffer, vectors.astype(np.float32), allow_pickle=False)
        atomic_write_bytes(embeddings, buffer.getvalue())
        shape = f"{vectors.shape[0]} x {vectors.shape[1]}"
        typer.echo(f"{shape} embeddings (row i: item_id i + 1) -> {embeddings}", err=True)


items_app = typer.Typer(help="A trained run's catalog: place new items without retraining.", no_args_is_help=True)


@items_app.command("add")
def add(
    run: Path = RUN,
    items: Path = typer.Argument(..., help="New items, one JSON object per line, in the dataset's item format."),
) -> None:
    """Place new items in a run's catalog without retraining (its own embedder, fuser and quantizer)."""
    from genrec.recommender import load, read_jsonl

    recommender = load(run)
    added = recommender.add_items(read_jsonl(items), source=str(items))
    typer.echo(f"added {len(added)} items to {run} ({recommender.n_items} in its catalog): {' '.join(added[:10])}")
