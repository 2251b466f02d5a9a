"""Recipes registered by plugins become subcommands of ``genrec recipe``."""

from __future__ import annotations

import typer


def add_recipes(recipe_app: typer.Typer) -> None:
    from genrec.discovery import get_registry

    registry = get_registry()
    for name in registry.names("recipe"):
        component = registry.get("recipe", name)
        recipe_app.command(name=name, help=component.description or None)(component.load())
