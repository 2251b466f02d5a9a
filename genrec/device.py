"""Choosing the torch device: ``auto`` is CUDA when available, else the CPU; anything else is checked."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genrec.errors import ConfigError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str, owner: str = "device") -> torch.device:
    """The torch device for option value ``device``; ``owner`` names the option in errors."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as error:
        raise ConfigError(f"{owner} option 'device': {device!r} is not a torch device") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{owner} option 'device': CUDA was asked for but is not available")
    return resolved
