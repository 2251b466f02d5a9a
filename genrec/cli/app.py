"""The Typer application and its command groups."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="genrec",
    help="Generative recommendation with semantic IDs: plugins, recipes, datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: statistics and preparation.", no_args_is_help=True)
recipe_app = typer.Typer(help="Run a recipe (genrec list --kind recipe).", no_args_is_help=True)
analyze_app = typer.Typer(help="Analyses of embeddings and codes.", no_args_is_help=True)
store_app = typer.Typer(help="The artifact store: list it, reclaim checkpoint space.", no_args_is_help=True)


def _version(value: bool) -> None:
    if value:
        from genrec import __version__

        typer.echo(f"genrec {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Generative recommendation with semantic IDs: plugins, recipes, datasets."""


items_app = typer.Typer(help="A trained run's catalog: place new items without retraining.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(recipe_app, name="recipe")
app.add_typer(analyze_app, name="analyze")
app.add_typer(store_app, name="store")
app.add_typer(items_app, name="items")

from genrec.cli import analyze, components, data, report, store, use  # noqa: E402,F401  (commands register on import)
