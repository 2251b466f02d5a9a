"""The modality adaptation layer: semantic embeddings -> the collaborative space.

``A(e) = (1 + g(e)) * LN(W e + b) + h(e)``: a linear projection, a layer norm without its own affine
parameters, and an adaptive scale ``g`` and shift ``h`` computed from the input. ``g`` and ``h`` start at
zero, so an untrained layer is the plain normalised projection. Their biases play the role of a layer
norm's affine parameters, which is why the norm itself carries none.
"""

from __future__ import annotations

import torch
from torch import nn


class AdaptationLayer(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, eps: float = 1e-5):
        super().__init__()
        self.project = nn.Linear(in_dim, out_dim)
        self.norm = nn.LayerNorm(out_dim, eps=eps, elementwise_affine=False)
        self.scale = nn.Linear(in_dim, out_dim)  # g
        self.shift = nn.Linear(in_dim, out_dim)  # h
        for layer in (self.scale, self.shift):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        normalised = self.norm(self.project(embeddings))
        return (1 + self.scale(embeddings)) * normalised + self.shift(embeddings)
