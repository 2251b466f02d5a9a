"""TIGER's encoder-decoder transformer over semantic-ID tokens.

Tokens: 0 is padding, 1 begins a decoded code, and code ``c`` of level ``l`` is ``2 + offset[l] + c``
(one vocabulary, each level in its own range), shared by encoder and decoder. The encoder reads the
history's item codes flattened (``levels`` tokens per item), with a learned position counted from the
most recent token backwards, so left padding of any width leaves positions unchanged. The decoder
reads ``[begin, c_0, ..., c_{t-1}]`` and predicts level ``t`` with that level's own output head.

Attention has ``heads`` heads of ``head_dim`` each; the inner width ``heads * head_dim`` need not equal
``d_model`` (the TIGER default is 6 heads of 64 over d_model 128, as in its T5 configuration). Layers are
pre-norm; dropout acts on the embeddings and the residual branches only: not on attention weights,
and not on the wide feed-forward hidden layer, whose random masks cost a fifth of a CPU training step.
Attention is :func:`genrec.attention.attention`.

Decoder hidden states are shaped ``(users, width, positions, d_model)``: ``width`` rows (beams) per
user share one encoder memory, and cross-attention runs them as one query block per user.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genrec.attention import attention

PAD, BEGIN, FIRST_CODE = 0, 1, 2

KV = tuple[torch.Tensor, torch.Tensor]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, T, heads * hd) -> (N, heads, T, hd)."""
    n, t, _ = x.shape
    return x.view(n, t, heads, -1).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(N, heads, T, hd) -> (N, T, heads * hd)."""
    n, h, t, d = x.shape
    return x.transpose(1, 2).reshape(n, t, h * d)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, ffn: int):
        super().__init__()
        self.up = nn.Linear(d_model, ffn)
        self.down = nn.Linear(ffn, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.relu(self.up(x)))


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, d_model)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
        past: KV | None = None,
    ) -> tuple[torch.Tensor, KV]:
        """``x`` (N, T, d); ``mask`` (N, 1, 1, S) True = attend; ``past`` cached keys/values (N, h, P, hd)."""
        q, k, v = (_heads(part, self.heads) for part in self.qkv(x).chunk(3, dim=-1))
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        # With a cache the queries are the newest positions and may see everything before them.
        out = attention(q, k, v, mask, causal=causal and past is None)
        return self.out(_merge(out)), (k, v)


class CrossAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(d_model, heads * head_dim)
        self.kv = nn.Linear(d_model, 2 * heads * head_dim)
        self.out = nn.Linear(heads * head_dim, d_model)

    def memory(self, memory: torch.Tensor) -> KV:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return _heads(k, self.heads), _heads(v, self.heads)

    def forward(self, x: torch.Tensor, memory: KV, mask: torch.Tensor | None) -> torch.Tensor:
        """``x`` (users, Q, d) queries of all rows of a user; ``memory`` (users, h, S, hd)."""
        out = attention(_heads(self.q(x), self.heads), *memory, mask)
        return self.out(_merge(out))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, ffn: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attention = SelfAttention(d_model, heads, head_dim)
        self.ffn = FeedForward(d_model, ffn)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x), mask)[0])
        return x + self.dropout(self.ffn(self.norm2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, ffn: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.attention = SelfAttention(d_model, heads, head_dim)
        self.cross = CrossAttention(d_model, heads, head_dim)
        self.ffn = FeedForward(d_model, ffn)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory: KV, memory_mask: torch.Tensor | None, past: KV | None = None
    ) -> tuple[torch.Tensor, KV]:
        """``x`` (users, width, T, d): self-attention per row, cross-attention per user."""
        users, width, positions, d = x.shape
        rows = x.view(users * width, positions, d)
        attended, cache = self.attention(self.norm1(rows), causal=True, past=past)
        rows = rows + self.dropout(attended)
        grouped = rows.view(users, width * positions, d)
        grouped = grouped + self.dropout(self.cross(self.norm2(grouped), memory, memory_mask))
        grouped = grouped + self.dropout(self.ffn(self.norm3(grouped)))
        return grouped.view(users, width, positions, d), cache


class TigerModel(nn.Module):
    def __init__(
        self,
        codebook_sizes: Sequence[int],
        max_history: int,
        layers_encoder: int = 4,
        layers_decoder: int = 4,
        d_model: int = 128,
        heads: int = 6,
        head_dim: int = 64,
        ffn: int = 1024,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.codebook_sizes = tuple(int(s) for s in codebook_sizes)
        self.levels = len(self.codebook_sizes)
        self.max_history = max_history
        self.d_model = d_model
        offsets = [FIRST_CODE]
        for size in self.codebook_sizes[:-1]:
            offsets.append(offsets[-1] + size)
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.long), persistent=False)
        vocabulary = FIRST_CODE + sum(self.codebook_sizes)
        self.tokens = nn.Embedding(vocabulary, d_model, padding_idx=PAD)
        self.encoder_positions = nn.Embedding(self.encoder_length(max_history), d_model)
        self.decoder_positions = nn.Embedding(self.levels, d_model)
        self.encoder = nn.ModuleList(
            EncoderLayer(d_model, heads, head_dim, ffn, dropout) for _ in range(layers_encoder)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(d_model, heads, head_dim, ffn, dropout) for _ in range(layers_decoder)
        )
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.heads = nn.ModuleList(nn.Linear(d_model, size) for size in self.codebook_sizes)
        self.dropout = nn.Dropout(dropout)
        for embedding in (self.tokens, self.encoder_positions, self.decoder_positions):
            nn.init.normal_(embedding.weight, std=0.02)
        with torch.no_grad():
            self.tokens.weight[PAD].zero_()

    def encoder_length(self, max_history: int) -> int:
        """Encoder positions: ``levels`` tokens per history item."""
        return max_history * self.levels

    def code_tokens(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., t) codes of levels 0..t-1 -> their vocabulary tokens."""
        return codes + self.offsets[: codes.shape[-1]]

    def encode(self, history_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(users, S) left-padded tokens -> memory (users, S, d) and its mask (users, 1, 1, S) or None."""
        users, length = history_tokens.shape
        positions = torch.arange(length - 1, -1, -1, device=history_tokens.device)
        x = self.dropout(self.tokens(history_tokens) + self.encoder_positions(positions))
        valid = history_tokens != PAD
        mask: torch.Tensor | None = None
        if not bool(valid.all()):
            # A user with no history would attend to nothing (NaN): let it see its padding instead.
            valid = valid | ~valid.any(dim=1, keepdim=True)
            mask = valid[:, None, None, :]
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def memories(self, memory: torch.Tensor) -> list[KV]:
        """Each decoder layer's cross-attention keys and values, computed once per user."""
        return [layer.cross.memory(memory) for layer in self.decoder]

    def decode(
        self,
        tokens: torch.Tensor,
        start: int,
        memories: list[KV],
        memory_mask: torch.Tensor | None,
        past: list[KV] | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """Decoder tokens (users, width, T) at positions ``start..start+T-1`` -> final states and caches."""
        return self.decode_embedded(self.tokens(tokens), start, memories, memory_mask, past)

    def decode_embedded(
        self,
        x: torch.Tensor,
        start: int,
        memories: list[KV],
        memory_mask: torch.Tensor | None,
        past: list[KV] | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """:meth:`decode` of decoder inputs already embedded, (users, width, T, d)."""
        positions = torch.arange(start, start + x.shape[-2], device=x.device)
        x = self.dropout(x + self.decoder_positions(positions))
        caches: list[KV] = []
        for index, layer in enumerate(self.decoder):
            x, cache = layer(x, memories[index], memory_mask, None if past is None else past[index])
            caches.append(cache)
        return self.decoder_norm(x), caches

    def forward(
        self, history_tokens: torch.Tensor, target_codes: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Teacher forcing: per-level logits [(users, size_l)] and the summary state (users, d).

        The summary is the decoder state that predicts the first code level.
        """
        memory, mask = self.encode(history_tokens)
        begin = torch.full_like(target_codes[:, :1], BEGIN)
        inputs = torch.cat([begin, self.code_tokens(target_codes[:, :-1])], dim=1).unsqueeze(1)
        states, _ = self.decode(inputs, 0, self.memories(memory), mask)
        states = states.squeeze(1)
        logits = [head(states[:, level]) for level, head in enumerate(self.heads)]
        return logits, states[:, 0]


def level_cross_entropy(logits: list[torch.Tensor], target_codes: torch.Tensor) -> torch.Tensor:
    """Mean over levels of each level's cross-entropy against ``target_codes`` (N, levels)."""
    total = sum(F.cross_entropy(x.float(), target_codes[:, level]) for level, x in enumerate(logits))
    return total / len(logits)
