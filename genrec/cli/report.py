"""``genrec report RUN...``: runs grouped by configuration, mean ± std over seeds, paired tests."""

from __future__ import annotations

from pathlib import Path

import typer


def report(
    runs: list[Path] = typer.Argument(..., help="Finished run directories (or their results.json)."),
    metric: str = typer.Option("ndcg@10", "--metric", help="The test metric of the paired tests."),
    markdown_path: Path | None = typer.Option(None, "--markdown", help="Also write the report as Markdown."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the validation curves as a PNG."),
) -> None:
    """Mean ± std over seeds per configuration, on validation and test, and paired per-user tests."""
    from rich.console import Console
    from rich.table import Table

    from genrec.artifacts import atomic_write_text
    from genrec.errors import ConfigError
    from genrec.report import (
        METRICS,
        cell,
        check_ranks,
        comparisons,
        format_p,
        group_runs,
        load_runs,
        markdown,
        summarize,
    )

    if metric not in METRICS:
        raise ConfigError(f"--metric {metric!r}: one of {', '.join(METRICS)}")
    loaded = load_runs(runs)
    for run in loaded:
        check_ranks(run)
    groups = group_runs(loaded)
    pairs = comparisons(groups, metric)
    console = Console()
    for split in ("valid", "test"):
        table = Table(title=f"{split}: mean ± std over seeds")
        table.add_column("configuration", overflow="fold")
        table.add_column("seeds", justify="right")
        for name in METRICS:  # recall@10 -> R@10
            table.add_column(f"{name[0].upper()}@{name.split('@')[1]}", justify="right")
        for label, group in groups.items():
            summary = summarize(group, split)
            cells = [cell(summary, m, len(group)) for m in METRICS]
            table.add_row(label, str(len(group)), *cells)
        console.print(table)
    if pairs:
        table = Table(title=f"paired tests on test {metric} (per user, seeds averaged)")
        for name in ("first", "second", "difference", "p (bootstrap)", "p (t-test)", "users"):
            table.add_column(name, justify="left" if name in ("first", "second") else "right")
        for c in pairs:
            table.add_row(c.first, c.second, f"{c.difference:+.4f}", format_p(c.p_bootstrap), f"{c.p_ttest:.2g}",
                          str(c.users))  # fmt: skip
        console.print(table)
    if markdown_path is not None:
        atomic_write_text(markdown_path, markdown(groups, pairs))
        console.print(f"markdown: {markdown_path}")
    if plot is not None:
        from genrec.report import plot_curves

        plot_curves(groups, plot)
        console.print(f"curves: {plot}")
