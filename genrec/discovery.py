"""Finding and loading plugins: entry-point group ``genrec``, hook ``genrec_register``.

Built-in plugins load through the same path as third-party ones. A plugin that fails to import or to
register is recorded, not raised, so the CLI keeps working; ``GENREC_STRICT_PLUGINS=1`` makes it fatal.
``GENREC_LOAD_PLUGINS`` (comma-separated entry-point names) is an allowlist.
"""

from __future__ import annotations

import importlib.util
import os
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from genrec import hookspecs
from genrec.errors import PluginError
from genrec.registry import Registry

ENTRY_POINT_GROUP = "genrec"


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    components: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class Plugins:
    """A loaded registry and what each plugin did."""

    registry: Registry
    infos: list[PluginInfo]
    manager: pluggy.PluginManager

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos if info.error]


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def _strict() -> bool:
    return os.environ.get("GENREC_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def _allowlist() -> set[str] | None:
    raw = os.environ.get("GENREC_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def register_plugin(plugins: Plugins, plugin: ModuleType | Any, name: str, info: PluginInfo) -> None:
    """Register one plugin object and run its ``genrec_register`` hook, recording any failure."""
    try:
        plugins.manager.register(plugin, name=name)
        plugins.manager.check_pending()  # a hook implementation that names no genrec hook: a misspelt name
        impls = [i for i in plugins.manager.hook.genrec_register.get_hookimpls() if i.plugin is plugin]
        if not impls:
            raise PluginError("it has no genrec_register hook (is the function decorated with @genrec.hookimpl?)")
        before = {(c.kind, c.name) for c in plugins.registry}
        with plugins.registry.registering(name) as registry:
            for impl in impls:
                impl.function(registry=registry)
            added = [c for c in plugins.registry if (c.kind, c.name) not in before]
            for component in added:
                _check_factory_module(component)  # inside the block: a failure rolls the plugin back
        info.components = [f"{c.kind}:{c.name}" for c in added]
    except Exception as error:  # a broken plugin must not break the CLI
        if plugins.manager.is_registered(plugin):
            plugins.manager.unregister(plugin)
        _record_failure(plugins, info, error, "register")
        return
    plugins.infos.append(info)


def _record_failure(plugins: Plugins, info: PluginInfo, error: Exception, step: str) -> None:
    """Keep a plugin's failure to ``step`` (import, register) for ``genrec plugins``; fatal in strict mode."""
    info.error = f"{type(error).__name__}: {error}"
    if step == "import" and os.environ.get("GENREC_DEBUG"):
        info.error += "\n" + traceback.format_exc()
    plugins.infos.append(info)
    plugins.registry.failed_plugins.append(info.name)
    if _strict():
        raise PluginError(f"plugin {info.name!r} failed to {step}: {info.error}") from error


def _check_factory_module(component: Any) -> None:
    """A lazy ``"module:attribute"`` factory must name a module that exists (it is imported only when used)."""
    if callable(component.factory):
        return
    module = component.factory.partition(":")[0]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        found = False
    if not found:
        raise PluginError(f"{component.kind} {component.name!r}: its factory {component.factory!r} names no module")


def load_plugins(*, entry_points: bool = True) -> Plugins:
    """A registry filled by every installed plugin (or an empty one with ``entry_points=False``)."""
    plugins = Plugins(Registry(), [], new_manager())
    if not entry_points:
        return plugins
    allow = _allowlist()
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if allow is not None and entry_point.name not in allow:
            continue
        dist = entry_point.dist
        info = PluginInfo(
            name=entry_point.name,
            module=entry_point.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
        )
        try:
            module = entry_point.load()
        except Exception as error:
            _record_failure(plugins, info, error, "import")
            continue
        register_plugin(plugins, module, entry_point.name, info)
    return plugins


_cached: Plugins | None = None


def get_plugins(reload: bool = False) -> Plugins:
    """The process-wide plugins, loaded once."""
    global _cached
    if _cached is None or reload:
        _cached = load_plugins()
    return _cached


def get_registry() -> Registry:
    return get_plugins().registry
