"""The ``genrec`` pytest plugin: fixtures for plugin authors (and for genrec's own tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from genrec.contracts import RecData
from genrec.data.dataset import Dataset
from genrec.discovery import PluginInfo, Plugins, load_plugins, register_plugin
from genrec.registry import Registry


@pytest.fixture
def tiny_dataset() -> Dataset:
    """A small synthetic dataset (60 users, 40 items) with item titles and sequential signal."""
    from genrec.testing.checks import tiny_dataset as make

    return make()


@pytest.fixture
def tiny_recdata(tmp_path: Any) -> RecData:
    """The tiny dataset with its leave-one-out split, seed 0, CPU, and a scratch work directory."""
    from genrec.testing.checks import tiny_recdata as make

    data = make()
    data.workdir = tmp_path / "work"
    return data


@pytest.fixture
def genrec_plugins() -> Plugins:
    """A fresh, empty registry: no installed plugin is loaded automatically."""
    return load_plugins(entry_points=False)


@pytest.fixture
def registry(genrec_plugins: Plugins) -> Registry:
    return genrec_plugins.registry


@pytest.fixture
def register(genrec_plugins: Plugins) -> Callable[..., PluginInfo]:
    """``register(plugin_object, name=...)`` runs a plugin's ``genrec_register`` into the fresh registry."""

    def _register(plugin: Any, name: str | None = None) -> PluginInfo:
        plugin_name = name or getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name=plugin_name, module=plugin_name)
        register_plugin(genrec_plugins, plugin, plugin_name, info)
        return info

    return _register
