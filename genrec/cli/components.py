"""``genrec list`` and ``genrec plugins``."""

from __future__ import annotations

import json

import typer

from genrec.contracts import KINDS


def list_components(
    kind: str | None = typer.Option(None, "--kind", help=f"Only this kind: {', '.join(KINDS)}."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List every registered component: kind, name, providing plugin, description."""
    from genrec.discovery import get_plugins

    if kind is not None and kind not in KINDS:
        raise typer.BadParameter(f"{kind!r} is not one of {', '.join(KINDS)}", param_hint="--kind")
    plugins = get_plugins()
    rows = [c for c in plugins.registry if kind is None or c.kind == kind]
    if as_json:
        payload = {
            "components": [
                {"kind": c.kind, "name": c.name, "plugin": c.plugin, "description": c.description} for c in rows
            ],
            "failures": [{"plugin": f.name, "error": f.error} for f in plugins.failures],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="genrec components")
    for column in ("kind", "name", "plugin", "description"):
        table.add_column(column)
    for c in rows:
        table.add_row(c.kind, c.name, c.plugin, c.description)
    console = Console()
    console.print(table)
    for failure in plugins.failures:
        console.print(f"[red]plugin {failure.name!r} failed to load:[/red] {failure.error}", highlight=False)


def list_plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every installed plugin: its version, what it registered, its load error if any."""
    from genrec.discovery import get_plugins

    infos = get_plugins().infos
    if as_json:
        typer.echo(json.dumps([vars(info) for info in infos], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="genrec plugins")
    for column in ("plugin", "distribution", "version", "components", "error"):
        table.add_column(column)
    for info in infos:
        table.add_row(
            info.name,
            info.distribution or "",
            info.version or "",
            ", ".join(info.components),
            f"[red]{info.error}[/red]" if info.error else "",
        )
    Console().print(table)


def show(
    component: str = typer.Argument(..., help="A component name, or KIND/NAME when names repeat across kinds."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """A component's documentation and its options: type, default, description."""
    import inspect

    from genrec.discovery import get_registry
    from genrec.docstrings import option_docs, summary
    from genrec.errors import ConfigError

    kind, _, name = component.rpartition("/")
    found = [c for c in get_registry() if c.name == name and (not kind or c.kind == kind)]
    if not found:
        raise ConfigError(f"no component {component!r} (genrec list shows them all)")
    if len(found) > 1:
        kinds = ", ".join(f"{c.kind}/{c.name}" for c in found)
        raise ConfigError(f"{name!r} names {len(found)} components: give one of {kinds}")
    (entry,) = found
    factory = entry.load()
    doc = summary(factory) or entry.description
    described = option_docs(factory)
    options = []
    for option, parameter in entry.options().items():
        annotation = parameter.annotation
        type_name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
        required = parameter.default is inspect.Parameter.empty
        options.append({"name": option, "type": type_name, "default": None if required else parameter.default,
                        "required": required, "doc": described.get(option, "")})  # fmt: skip
    if as_json:
        payload = {"kind": entry.kind, "name": entry.name, "plugin": entry.plugin, "doc": doc, "options": options}
        typer.echo(json.dumps(payload, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{entry.kind} {entry.name}[/bold] (plugin {entry.plugin})", highlight=False)
    console.print(doc, highlight=False)
    table = Table(title="options (--set STAGE.OPTION=VALUE)")
    for column in ("option", "type", "default", "description"):
        table.add_column(column)
    for option in options:
        default = "(required)" if option["required"] else repr(option["default"])
        table.add_row(option["name"], option["type"], default, option["doc"])
    console.print(table)
