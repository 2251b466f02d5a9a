"""Scaled dot-product attention for the models of every plugin, fast on CPU and on CUDA.

On CUDA this is ``torch.nn.functional.scaled_dot_product_attention`` (fused kernels). On CPU the
sequences of recommendation models are short (tens of tokens), and there the fused kernel's backward
pass, in bf16 above all, cost more than all the matmuls of a TIGER training step. Three plain ops are
4x faster under bf16 autocast (``benchmarks/attention.py``), which makes a whole TIGER bf16 training
step about 1.6x faster.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["attention"]


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
    dropout: float = 0.0,
) -> torch.Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over (..., T, d) queries and (..., S, d) keys and values.

    ``mask`` is boolean, broadcastable to (..., T, S), True where a query may attend; ``causal`` lets
    query ``i`` see keys ``0..i`` (queries and keys aligned at the start). ``dropout`` acts on the
    attention weights. Every query must be allowed at least one key.
    """
    if q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        t, s = scores.shape[-2:]
        mask = _causal(t, s, q.device) if mask is None else mask & _causal(t, s, q.device)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # Softmax in float32 (also under bf16 autocast), weights back in the values' dtype.
    weights = torch.softmax(scores.float(), dim=-1).to(v.dtype)
    if dropout > 0.0:
        weights = F.dropout(weights, dropout)
    return torch.matmul(weights, v)


def _causal(t: int, s: int, device: torch.device) -> torch.Tensor:
    return torch.ones(t, s, dtype=torch.bool, device=device).tril()
