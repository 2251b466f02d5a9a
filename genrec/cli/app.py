"""The Typer application: every command and group, gathered from the modules that define them.

Dependencies point one way: this module imports the command modules; they import no part of it.
"""

from __future__ import annotations

import typer

from genrec.cli import analyze, components, data, report, store, use

app = typer.Typer(
    name="genrec",
    help="Generative recommendation with semantic IDs: plugins, recipes, datasets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
recipe_app = typer.Typer(help="Run a recipe (genrec list --kind recipe).", no_args_is_help=True)


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


app.command("list")(components.list_components)
app.command("plugins")(components.list_plugins)
app.command("show")(components.show)
app.command("report")(report.report)
app.command("recommend")(use.recommend)
app.command("export")(use.export)
app.add_typer(data.app, name="data")
app.add_typer(recipe_app, name="recipe")
app.add_typer(analyze.app, name="analyze")
app.add_typer(store.app, name="store")
app.add_typer(use.items_app, name="items")
