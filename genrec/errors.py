"""Errors that genrec reports to users as one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path


class GenrecError(Exception):
    """Base class: the CLI prints the message and exits non-zero."""


class DataError(GenrecError):
    """A dataset file is malformed; the message names the file and line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None):
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class ConfigError(GenrecError):
    """An option is unknown or has a bad value; the message names the option."""


class PluginError(GenrecError):
    """A plugin failed to import or register, or two plugins clash."""


class ComponentError(GenrecError):
    """A component's output breaks its contract (NaN vectors, ids outside the catalog); the message names
    the stage and the component."""


class TrainingError(GenrecError):
    """Training cannot go on (for example, the loss became NaN)."""


def require_at_least(owner: str, minimum: float, **values: float) -> None:
    """Raise a ConfigError naming the first option below ``minimum`` (``owner`` names the component)."""
    for name, value in values.items():
        if value < minimum:
            raise ConfigError(f"{owner} option {name!r} must be at least {minimum}, got {value}")
