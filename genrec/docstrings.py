"""Option documentation from a component's docstring, and the option tables of the docs built from it.

A component documents its options the numpydoc way, in a ``Parameters`` section of its (class)
docstring; names that share one description share one entry::

    Parameters
    ----------
    levels, codebook_size : int
        How many codebooks, and the codes in each.

``genrec show`` prints these descriptions, and each built-in's table in ``docs/components/*.md`` is
generated from them: the docstring is the one source. A subclass inherits the entries of its bases
for the options it does not document again. ``python -m genrec.docstrings FILE.md ...`` rewrites the
tables between ``<!-- options: KIND/NAME -->`` and ``<!-- end options -->``.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*(?::.*)?$")
BLOCK = re.compile(r"(<!-- options: (\S+) -->\n)(.*?)(<!-- end options -->)", re.DOTALL)


def parameter_entries(obj: Callable[..., Any]) -> list[tuple[tuple[str, ...], str]]:
    """The ``Parameters`` entries of ``obj``'s docstring and its bases': (names, one-line description in
    Markdown), in the order written, an entry of ``obj`` itself overriding its bases' for the same names."""
    entries: list[tuple[tuple[str, ...], str]] = []
    documented: set[str] = set()
    for owner in inspect.getmro(obj) if inspect.isclass(obj) else (obj,):
        for names, text in _own_entries(owner.__doc__ or ""):
            fresh = tuple(name for name in names if name not in documented)
            if fresh:
                entries.append((fresh, text))
                documented.update(fresh)
    return entries


def option_docs(obj: Callable[..., Any]) -> dict[str, str]:
    """Each documented option's description."""
    return {name: text for names, text in parameter_entries(obj) for name in names}


def summary(obj: Callable[..., Any]) -> str:
    """The docstring without its ``Parameters`` section, in Markdown's single backticks."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    section = _parameters_section(lines)
    if section is not None:
        lines = lines[: section.start] + lines[section.stop :]
    return "\n".join(lines).strip().replace("``", "`")


def option_table(component: Any) -> str:
    """The Markdown table of a registered component's options (option, default, description), in the
    order of its signature."""
    options = component.options()
    order = {name: index for index, name in enumerate(options)}
    entries = [(tuple(n for n in names if n in options), text) for names, text in parameter_entries(component.load())]
    rows = ["| option | default | description |", "|---|---|---|"]
    for names, text in sorted((e for e in entries if e[0]), key=lambda e: order[e[0][0]]):  # signature order
        defaults = ", ".join(_default(options[name]) for name in names)
        rows.append(f"| {', '.join(f'`{n}`' for n in names)} | {defaults} | {text} |")
    return "\n".join(rows) + "\n"


def update_tables(path: Path, registry: Any, check: bool = False) -> bool:
    """Regenerate the option tables of a Markdown file; with ``check``, only say whether one is stale."""
    text = path.read_text()

    def table(match: re.Match[str]) -> str:
        kind, _, name = match.group(2).partition("/")
        return match.group(1) + option_table(registry.get(kind, name)) + match.group(4)

    updated = BLOCK.sub(table, text)
    if updated != text and not check:
        path.write_text(updated)
    return updated != text


def tabled_components(path: Path) -> list[str]:
    """The ``KIND/NAME`` of every option table in a Markdown file."""
    return [match.group(2) for match in BLOCK.finditer(path.read_text())]


def _own_entries(doc: str) -> list[tuple[tuple[str, ...], str]]:
    lines = inspect.cleandoc(doc).splitlines()
    section = _parameters_section(lines)
    if section is None:
        return []
    entries: list[tuple[tuple[str, ...], list[str]]] = []
    for line in lines[section.start + 2 : section.stop]:
        if line and not line[0].isspace():
            match = ENTRY.match(line)
            if match:
                entries.append((tuple(n.strip() for n in match.group(1).split(",")), []))
        elif line.strip() and entries:
            entries[-1][1].append(line.strip())
    return [(names, " ".join(text).replace("``", "`")) for names, text in entries]


def _parameters_section(lines: list[str]) -> slice | None:
    """The lines of the ``Parameters`` section, its header included, up to the next section or the end."""
    for start in range(len(lines) - 1):
        if lines[start].strip() == "Parameters" and _is_header(lines, start):
            stop = start + 2
            while stop < len(lines) and not _is_header(lines, stop):
                stop += 1
            return slice(start, stop)
    return None


def _is_header(lines: list[str], index: int) -> bool:
    """A numpydoc section header: a word line underlined with dashes."""
    return index + 1 < len(lines) and bool(lines[index].strip()) and set(lines[index + 1].strip()) == {"-"}


def _default(parameter: inspect.Parameter) -> str:
    if parameter.default is inspect.Parameter.empty:
        return "(required)"
    if parameter.default is None:
        return "none"
    if isinstance(parameter.default, str):
        return f"`{parameter.default}`" if parameter.default else '`""`'
    if isinstance(parameter.default, bool):
        return str(parameter.default).lower()
    if isinstance(parameter.default, tuple):
        return f"`{','.join(map(str, parameter.default))}`"
    return str(parameter.default)


if __name__ == "__main__":
    from genrec.discovery import get_registry

    for argument in sys.argv[1:]:
        if update_tables(Path(argument), get_registry()):
            print(f"updated {argument}")
