"""Contrastive and cosine losses between paired rows of two matrices, computed in float32."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(
    queries: torch.Tensor,
    keys: torch.Tensor,
    temperature: float = 0.1,
    symmetric: bool = True,
    ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """In-batch InfoNCE: row ``i`` of ``queries`` and row ``i`` of ``keys`` are a positive pair.

    Every other row of the batch is a negative. ``ids`` (one per row) marks rows that stand for the same
    item: such pairs are left out of the negatives instead of being pushed apart. ``symmetric`` averages
    the query->key and key->query directions. Rows are L2-normalised, so the logits are cosine / tau.
    """
    if queries.shape != keys.shape or queries.ndim != 2:
        raise ValueError(f"queries {tuple(queries.shape)} and keys {tuple(keys.shape)} must be equal (n, d)")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    q = F.normalize(queries.float(), dim=-1, eps=1e-8)
    k = F.normalize(keys.float(), dim=-1, eps=1e-8)
    logits = q @ k.T / temperature
    if ids is not None:
        same = ids.view(-1, 1) == ids.view(1, -1)
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same, float("-inf"))
    labels = torch.arange(len(q), device=q.device)
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, labels)) / 2
    return loss


def cosine_loss(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean of ``1 - cos(prediction, target)`` over rows: 0 when every pair points the same way."""
    cos = F.cosine_similarity(predictions.float(), targets.float(), dim=-1, eps=1e-8)
    return (1 - cos).mean()
