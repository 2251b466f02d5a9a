"""The hooks a genrec plugin may implement (pluggy)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from genrec.registry import Registry

PROJECT = "genrec"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def genrec_register(registry: Registry) -> None:
    """Add components to the registry with ``registry.add(kind, name, factory, description=...)``.

    Kinds are ``embedder``, ``fuser``, ``quantizer``, ``generator`` and ``recipe``. ``factory`` is a
    callable taking keyword options, or a lazy ``"module:attribute"`` string so that plugin modules
    import no heavy library until a component is built.
    """
