"""``genrec analyze domination``: how much of each fused embedding each source explains."""

from __future__ import annotations

import functools
from pathlib import Path

import typer

app = typer.Typer(help="Analyses of embeddings and codes.", no_args_is_help=True)


@app.command("domination")
def domination(
    data: str = typer.Option("demo", "--data", help="Dataset name or directory."),
    fusers: str = typer.Option("concat,prorec-align", "--fusers", help="Comma-separated fusers to compare."),
    semantic: str = typer.Option(
        "text", "--semantic-embedder", "--embedder", help="Semantic embedder (the source E_S)."
    ),
    collaborative: str = typer.Option("sasrec", "--collaborative-embedder", help="Collaborative source E_C."),
    quantizer: str = typer.Option("kmeans", "--quantizer", help="Quantizer for the code-agreement figures."),
    k: int = typer.Option(10, "--k", help="Neighbours per item."),
    seed: int = typer.Option(0, "--seed"),
    store_dir: Path = typer.Option(Path("runs/store"), "--store-dir", help="Artifact store shared with recipes."),
    out: Path = typer.Option(Path("runs/analysis"), "--out", help="Where to write the JSON table and the PNG."),
) -> None:
    """Measure semantic domination: kNN overlap and code agreement of fused embeddings with each source."""
    from genrec.analysis import domination_report, plot_domination
    from genrec.artifacts import atomic_write_json
    from genrec.config import PipelineConfig, StageSpec
    from genrec.console import console
    from genrec.discovery import get_registry
    from genrec.pipeline import Pipeline

    registry = get_registry()
    names = [name.strip() for name in fusers.split(",") if name.strip()]
    for name in names:
        registry.get("fuser", name)
    quantizer_component = registry.get("quantizer", quantizer)

    def quantize(vectors):  # noqa: ANN001, ANN202 - numpy in, numpy out
        return quantizer_component.build(seed=seed).fit(vectors).encode(vectors)

    @functools.cache  # one pipeline (and one data load) per fuser, the sources' included
    def pipeline_for(fuser: str) -> Pipeline:
        config = PipelineConfig(
            recipe="analysis",
            data=data,
            semantic=StageSpec(semantic),
            collaborative=StageSpec(collaborative),
            fuser=StageSpec(fuser),
            quantizer=StageSpec(quantizer),
            generator=StageSpec("tiger"),
            seed=seed,
            store_dir=store_dir,
            run_dir=out,
        )
        pipeline = Pipeline(config, registry)
        pipeline.prepare()
        return pipeline

    # Every fuser is compared with the same two sources: the text embeddings, and a collaborative model
    # trained on its own (no alignment).
    sources, _ = pipeline_for("concat").embed()
    reports = {}
    for name in names:
        fused, _, _ = pipeline_for(name).fuse()
        reports[name] = domination_report(fused, sources["semantic"], sources["collaborative"], quantize=quantize, k=k)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"domination-{Path(data).name}.json", {"data": data, "k": k, "reports": reports})
    plot_domination(reports, out / f"domination-{Path(data).name}.png")

    from rich.table import Table

    table = Table(title=f"semantic domination on {data} (k={k})")
    table.add_column("fuser")
    columns = sorted({key for report in reports.values() for key in report if isinstance(report[key], float)})
    for column in columns:
        table.add_column(column, justify="right")
    for name, report in reports.items():
        table.add_row(name, *(f"{report[c]:.3f}" for c in columns))
    console.print(table)
    console.print(f"written: {out / f'domination-{Path(data).name}.json'} and .png")
