"""genrec: a modular plugin toolkit for generative recommendation with semantic IDs."""

from genrec.contracts import (
    AuxiliaryLoss,
    Embedder,
    Fuser,
    Generator,
    ItemCodes,
    ItemEmbeddings,
    Quantizer,
    RecData,
)
from genrec.errors import ComponentError, ConfigError, DataError, GenrecError, PluginError
from genrec.hookspecs import hookimpl
from genrec.recommender import Recommender, Scored, load
from genrec.registry import Registry

__version__ = "0.1.0"


def run_recipe(name: str, data: str = "demo", settings: dict | None = None, **flags: object) -> dict:
    """Run a recipe from Python, as ``genrec recipe NAME`` would (see :func:`genrec.recipe_command.run_recipe`)."""
    from genrec.recipe_command import run_recipe as run

    return run(name, data, settings, **flags)


def load_dataset(name: str):  # noqa: ANN201 - a genrec.data.Dataset
    """A dataset by name (``demo``, ``beauty``, ...) or directory, validated."""
    from genrec.data import load_dataset as load_data

    return load_data(name)


__all__ = [
    "AuxiliaryLoss",
    "ConfigError",
    "DataError",
    "Embedder",
    "Fuser",
    "Generator",
    "ComponentError",
    "GenrecError",
    "ItemCodes",
    "ItemEmbeddings",
    "PluginError",
    "Quantizer",
    "RecData",
    "Recommender",
    "Registry",
    "Scored",
    "__version__",
    "hookimpl",
    "load",
    "load_dataset",
    "run_recipe",
]
