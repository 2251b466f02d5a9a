"""Choosing the torch device: ``auto`` is CUDA when available, else the CPU; anything else is checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genrec.errors import ConfigError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str, option: str = "option 'device'", auto: str | None = None) -> torch.device:
    """The torch device for option value ``device``; ``option`` names the option in errors.

    ``auto`` is the run's device (the recipe's ``--device``), which a component's ``"auto"`` follows;
    without one, ``"auto"`` is CUDA when available, else the CPU.
    """
    import torch

    if device == "auto":
        if auto is not None:
            return resolve_device(auto, option)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"{option}: {device!r} is not a torch device") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option}: CUDA was asked for but is not available")
    return resolved
