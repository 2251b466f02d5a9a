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
from genrec.errors import ConfigError, DataError, GenrecError, PluginError
from genrec.hookspecs import hookimpl
from genrec.recommender import Recommender, Scored, load
from genrec.registry import Registry

__version__ = "0.1.0"

__all__ = [
    "AuxiliaryLoss",
    "ConfigError",
    "DataError",
    "Embedder",
    "Fuser",
    "Generator",
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
]
