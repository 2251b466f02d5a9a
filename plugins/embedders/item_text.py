"""Item records -> text, through a small template language shared by the text embedders.

A template is a ``str.format``-style string over the item's fields, for example
``"{title}. Brand: {brand}. {categories}"``. Each placeholder owns the literal text just before it
(back to the previous placeholder): when the field is missing or empty, the placeholder and that text
are both dropped, and when the leading fields are missing the first kept field loses its leading
separator. So with no brand the example gives ``"<title>. <categories>"``, with no title
``"Brand: <brand>. <categories>"``; a missing value never shows up as ``None``. Lists (``categories``)
are joined with ``", "``.

Fields: ``title``, ``brand``, ``categories``, ``description``, ``idgenrec_text``, ``asin``, ``item_id``,
and ``name`` (the title, or ``idgenrec_text`` when there is no title). Any other name must be a field of
the dataset's item records. ``"auto"`` stands for ``AUTO_TEMPLATE``.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from genrec.errors import ConfigError

AUTO_TEMPLATE = "{name}. Brand: {brand}. Categories: {categories}."
STANDARD_FIELDS = ("title", "brand", "categories", "description", "idgenrec_text", "asin", "item_id", "name")
_LEADING_SEPARATORS = " \t\n.,;:|-/"
_PUNCTUATION = ".!?,;:"


class ItemTemplate:
    """A parsed template; ``render(item)`` turns one item record into text."""

    def __init__(self, template: str = "auto", option: str = "template"):
        self.source = template
        self.option = option  # the option name that errors report
        text = AUTO_TEMPLATE if template == "auto" else template
        self.parts, self.suffix = self._parse(text)
        if not self.parts:
            raise ConfigError(f"option {option!r}: template {template!r} has no {{field}} placeholder")

    def _parse(self, text: str) -> tuple[list[tuple[str, str]], str]:
        try:
            pieces = list(string.Formatter().parse(text))
        except ValueError as error:
            raise ConfigError(f"option {self.option!r}: cannot parse template {text!r}: {error}") from None
        parts: list[tuple[str, str]] = []  # (text before the placeholder, field name)
        pending = ""  # literal text not yet owned by a placeholder (escaped braces split it up)
        for literal, field, spec, conversion in pieces:
            pending += literal
            if field is None:
                continue
            if not field.isidentifier():
                raise ConfigError(
                    f"option {self.option!r}: placeholder {{{field}}} in {text!r} must be a field name, "
                    f"such as {{title}}"
                )
            if spec or conversion:
                raise ConfigError(
                    f"option {self.option!r}: placeholder {{{field}}} in {text!r} takes no format spec or conversion"
                )
            parts.append((pending, field))
            pending = ""
        return parts, pending

    @property
    def fields(self) -> list[str]:
        return [field for _, field in self.parts]

    def check_fields(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Fields outside the standard ones must exist in at least one item record."""
        extra = {f for f in self.fields if f not in STANDARD_FIELDS}
        if not extra:
            return
        present = set().union(*(item.keys() for item in items)) if items else set()
        unknown = sorted(extra - present)
        if unknown:
            known = ", ".join(sorted(set(STANDARD_FIELDS) | present))
            raise ConfigError(
                f"option {self.option!r}: unknown field(s) {', '.join(unknown)} in template {self.source!r} "
                f"(known: {known})"
            )

    def render(self, item: Mapping[str, Any]) -> str:
        text = ""
        for index, (literal, field) in enumerate(self.parts):
            value = _value(item, field)
            if not value:
                continue
            if not text and index > 0:  # earlier fields are missing: their separator goes too
                literal = literal.lstrip(_LEADING_SEPARATORS)
            text += _join(text, literal) + value
        return (text + _join(text, self.suffix)).strip() if text else ""


def _join(before: str, literal: str) -> str:
    """``literal`` without a leading punctuation mark that ``before`` already ends with ("Gel." + ". ")."""
    if literal and before and literal[0] in _PUNCTUATION and before.rstrip()[-1] in _PUNCTUATION:
        return literal[1:]
    return literal


def _value(item: Mapping[str, Any], field: str) -> str:
    if field == "name":
        return _value(item, "title") or _value(item, "idgenrec_text")
    value = item.get(field)
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(text for text in (str(v).strip() for v in value if v is not None) if text)
    return str(value).strip()


def item_texts(items: Sequence[Mapping[str, Any]], template: str = "auto", option: str = "template") -> list[str]:
    """The text of every item (``items[i]`` is item ``i + 1``); fails if the template renders nothing at all."""
    parsed = ItemTemplate(template, option)
    parsed.check_fields(items)
    texts = [parsed.render(item) for item in items]
    if texts and not any(texts):
        raise ConfigError(
            f"option {option!r}: template {template!r} gives empty text for every item "
            f"(fields used: {', '.join(parsed.fields)})"
        )
    return texts
