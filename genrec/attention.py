"""Scaled dot-product attention for the models of every plugin, fast on CPU and on CUDA.

Mostly this is ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels). In bf16 on CPU,
though, the fused kernel's backward pass cost more than all the matmuls of a TIGER training step: there
three plain ops (:func:`plain_attention`) are 4x faster (``benchmarks/attention.py``), which makes a
whole TIGER bf16 training step 1.6x faster. In float32 on CPU the fused kernel is the faster one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["attention", "plain_attention"]


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    dropout: float = 0.0,
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over (..., T, d) queries and (..., S, d) keys and values.

    ``mask`` is boolean, broadcastable to (..., T, S), True where a query may attend, or a float bias
    added to the scores (-inf where a query may not attend); ``causal`` lets
    query ``i`` see keys ``0..i`` (queries and keys aligned at the start). ``dropout`` acts on the
    attention weights. Every query must be allowed at least one key.
    """
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)  # a float bias in the queries' dtype, as the fused kernel wants
    if q.device.type == "cpu" and _bf16(q):
        return plain_attention(q, k, v, mask, causal, dropout)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)


def plain_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    dropout: float = 0.0,
) -> torch.Tensor:
    """:func:`attention` as two matmuls and a softmax."""
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        t, s = scores.shape[-2:]
        mask = _causal(t, s, q.device) if mask is None else mask & _causal(t, s, q.device)
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))
    elif mask is not None:
        scores = scores + mask
    # Softmax in float32 (also under bf16 autocast), weights back in the values' dtype.
    weights = torch.softmax(scores.float(), dim=-1).to(v.dtype)
    if dropout > 0.0:
        weights = F.dropout(weights, dropout)
    return torch.matmul(weights, v)


def _bf16(q: torch.Tensor) -> bool:
    autocast = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return q.dtype == torch.bfloat16 or autocast


def _causal(t: int, s: int, device: torch.device) -> torch.Tensor:
    return torch.ones(t, s, dtype=torch.bool, device=device).tril()
