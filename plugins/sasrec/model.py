"""SASRec: a causal transformer over item-id sequences, scored against its own (tied) item embeddings.

Histories are (batch, L) item ids, left-padded with 0. Positions are right-aligned: the most recent
item always sits at position ``max_len - 1``, so prepending padding never changes what a real item
sees. Longer histories keep their last ``max_len`` items.

Attention is causal and never looks at padding keys; every position may also attend to itself, so a
padding query (or an all-padding history) has one key to attend and never produces NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genrec.attention import attention


class _Block(nn.Module):
    """A pre-norm transformer block: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.attn_norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(batch, length, 3, self.heads, dim // self.heads).unbind(2)
        dropout = self.dropout if self.training else 0.0
        attended = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, dropout=dropout)
        x = x + self.drop(self.out(attended.transpose(1, 2).reshape(batch, length, dim)))
        return x + self.drop(self.ffn(self.ffn_norm(x)))


class SASRec(nn.Module):
    """Self-attentive sequential recommendation with full-catalog scores against tied embeddings."""

    def __init__(
        self,
        n_items: int,
        dim: int = 64,
        layers: int = 2,
        heads: int = 2,
        dropout: float = 0.3,
        max_len: int = 20,
    ):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.n_items = n_items
        self.dim = dim
        self.max_len = max_len
        self.item_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.position_embedding = nn.Embedding(max_len, dim)
        self.input_norm = nn.LayerNorm(dim)
        self.input_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(dim, heads, dropout) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        # Small normal weights keep the first tied-embedding logits near zero (a flat softmax).
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()

    def encode_all(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item ids -> (B, L', dim) causal states, L' = min(L, max_len)."""
        histories = histories[:, -self.max_len :]
        length = histories.shape[1]
        positions = torch.arange(self.max_len - length, self.max_len, device=histories.device)
        x = self.input_drop(self.input_norm(self.item_embedding(histories) + self.position_embedding(positions)))
        real = histories != 0
        causal = torch.ones(length, length, dtype=torch.bool, device=histories.device).tril()
        diagonal = torch.eye(length, dtype=torch.bool, device=histories.device)
        mask = (causal & (real[:, None, :] | diagonal))[:, None]  # (B, 1, L, L): True = may attend
        for block in self.blocks:
            x = block(x, mask)
        return self.final_norm(x)

    def encode(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded item ids -> (B, dim): the state at the last position."""
        return self.encode_all(histories)[:, -1]

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., n_items + 1) scores; column 0 is padding and callers mask it."""
        return states @ self.item_embedding.weight.T

    def target_states(self, histories: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The states that predict the given targets, flattened: ((N, dim), (N,) item ids).

        ``targets`` is (B,) for the item after the last position, or (B, L) with the next item at every
        position (0 = no target there).
        """
        if targets.dim() == 1:
            return self.encode(histories), targets
        states = self.encode_all(histories)
        targets = targets[:, -states.shape[1] :]
        keep = targets != 0
        return states[keep], targets[keep]

    def next_item_loss(self, histories: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Full-softmax cross-entropy of the next item: ``targets`` (B,) or (B, L) as in ``target_states``."""
        states, items = self.target_states(histories, targets)
        return full_softmax_loss(self, states, items)


def full_softmax_loss(model: SASRec, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    # Scoring against rows 1..n only leaves padding out of the softmax without an -inf column.
    logits = (states @ model.item_embedding.weight[1:].T).float()
    return F.cross_entropy(logits, items - 1)


def sampled_bce_loss(model: SASRec, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the target against one uniformly sampled other item."""
    offsets = torch.randint(1, model.n_items, items.shape, device=items.device)
    negatives = (items - 1 + offsets) % model.n_items + 1  # uniform over the items other than the target
    table = model.item_embedding
    positive = (states * table(items)).sum(-1).float()
    negative = (states * table(negatives)).sum(-1).float()
    return F.softplus(-positive).mean() + F.softplus(negative).mean()
