"""The registry of components, and the building of a component from a name and options."""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from genrec.contracts import KINDS
from genrec.errors import ConfigError, PluginError

Factory = Callable[..., Any] | str


@dataclass
class Component:
    kind: str
    name: str
    factory: Factory
    description: str = ""
    plugin: str = "<unknown>"

    def load(self) -> Callable[..., Any]:
        """The factory itself; a ``"module:attribute"`` string is imported now, not at registration."""
        if callable(self.factory):
            return self.factory
        module_name, _, attribute = self.factory.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r}: cannot load {self.factory!r}: {error}"
            ) from error

    def options(self) -> dict[str, inspect.Parameter]:
        """The keyword options the factory accepts, with their defaults and annotations."""
        signature = inspect.signature(self.load())
        return {
            name: parameter
            for name, parameter in signature.parameters.items()
            if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD) and name != "self"
        }

    def defaults(self) -> dict[str, Any]:
        return {
            name: (None if p.default is inspect.Parameter.empty else p.default) for name, p in self.options().items()
        }

    def validate(self, options: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Check option names and coerce string values to the annotated types."""
        accepted = self.options()
        factory = self.load()
        hints = _type_hints(factory)
        label = where or f"{self.kind} {self.name!r}"
        result: dict[str, Any] = {}
        for key, value in options.items():
            if key not in accepted:
                known = ", ".join(sorted(accepted)) or "none"
                raise ConfigError(f"{label}: unknown option {key!r} (accepted: {known})")
            result[key] = _coerce(value, hints.get(key), accepted[key].default, f"{label} option {key!r}")
        missing = [name for name, p in accepted.items() if p.default is inspect.Parameter.empty and name not in result]
        if missing:
            raise ConfigError(f"{label}: missing required option(s) {', '.join(missing)}")
        return result

    def build(self, **options: Any) -> Any:
        return self.load()(**self.validate(options))


def _type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # unresolvable annotations only lose coercion, not validation
        return {}


def _coerce(value: Any, annotation: Any, default: Any, label: str) -> Any:
    if not isinstance(value, str):
        return value
    if annotation is None and default not in (inspect.Parameter.empty, None):
        annotation = type(default)
    choices = _literal_choices(annotation)
    if choices is not None:
        if value not in choices:
            raise ConfigError(f"{label}: {value!r} is not one of {', '.join(map(str, choices))}")
        return value
    for candidate in _union_members(annotation):
        if candidate is type(None):
            if value.lower() in ("none", "null"):
                return None
            continue
        try:
            if candidate is bool:
                lowered = value.lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if candidate in (int, float, str):
                return candidate(value)
            if typing.get_origin(candidate) is tuple or candidate is tuple:
                return tuple(int(part) for part in value.split(","))
        except ValueError:
            continue
    if annotation in (None, Any, str) or str in _union_members(annotation):
        return value
    raise ConfigError(f"{label}: cannot read {value!r} as {getattr(annotation, '__name__', annotation)}")


def _union_members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _literal_choices(annotation: Any) -> tuple[Any, ...] | None:
    for member in _union_members(annotation):
        if typing.get_origin(member) is typing.Literal:
            return typing.get_args(member)
    return None


class Registry:
    """Components by (kind, name). Plugins add to it from their ``genrec_register`` hook."""

    def __init__(self) -> None:
        self._components: dict[tuple[str, str], Component] = {}
        self._current_plugin = "<direct>"
        self.failed_plugins: list[str] = []  # plugins that failed to load: an unknown name may be theirs

    def add(self, kind: str, name: str, factory: Factory, *, description: str = "") -> Component:
        if kind not in KINDS:
            raise PluginError(f"plugin {self._current_plugin!r}: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        if not callable(factory) and not (isinstance(factory, str) and ":" in factory):
            raise PluginError(
                f"plugin {self._current_plugin!r}: {kind} {name!r} needs a callable or 'module:attribute'"
            )
        existing = self._components.get((kind, name))
        if existing is not None:
            raise PluginError(
                f"{kind} {name!r} is registered twice: by plugin {existing.plugin!r} "
                f"and by plugin {self._current_plugin!r}"
            )
        component = Component(kind, name, factory, description, self._current_plugin)
        self._components[(kind, name)] = component
        return component

    def get(self, kind: str, name: str) -> Component:
        try:
            return self._components[(kind, name)]
        except KeyError:
            known = ", ".join(self.names(kind)) or "none"
            failed = ""
            if self.failed_plugins:
                names = ", ".join(repr(p) for p in self.failed_plugins)
                failed = f"; plugin(s) {names} failed to load, see genrec plugins"
            raise ConfigError(f"unknown {kind} {name!r} (available: {known}{failed})") from None

    def create(self, kind: str, name: str, **options: Any) -> Any:
        return self.get(kind, name).build(**options)

    def names(self, kind: str) -> list[str]:
        return sorted(name for (k, name) in self._components if k == kind)

    def __iter__(self) -> Iterator[Component]:
        return iter(sorted(self._components.values(), key=lambda c: (KINDS.index(c.kind), c.name)))

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._components

    def __len__(self) -> int:
        return len(self._components)

    def remove_plugin(self, plugin: str) -> None:
        for key in [key for key, c in self._components.items() if c.plugin == plugin]:
            del self._components[key]

    def registering(self, plugin: str) -> _Registering:
        return _Registering(self, plugin)


class _Registering:
    """Attributes components added inside the block to ``plugin``; on error, removes them all."""

    def __init__(self, registry: Registry, plugin: str):
        self.registry, self.plugin = registry, plugin

    def __enter__(self) -> Registry:
        self.registry._current_plugin = self.plugin
        return self.registry

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is not None:
            self.registry.remove_plugin(self.plugin)
        self.registry._current_plugin = "<direct>"
