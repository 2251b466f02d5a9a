"""The ``causal`` generator's model: a causal item-level encoder and TIGER's short code decoder.

Each history item is one encoder token, the sum of its code tokens' embeddings (TIGER's vocabulary)
plus a learned position counted from the most recent item, so left padding never shifts positions.
The encoder is causal: its state at position ``t`` has seen items ``0..t`` only, so one pass over a
user's window yields the state for every next-item target in it, as SASRec does for item ids.

The decoder is TIGER's (:class:`genrec_plugins.tiger.model.DecoderLayer`), run once per target
position: it reads ``[state_t, c_0, ..., c_{levels-2}]`` and predicts level ``l`` of the next item's
code with level ``l``'s head, cross-attending to the encoder states ``0..t``. Training shapes its
hidden states ``(windows, positions, levels, d)``: the positions of a window play the part of TIGER's
beams, so they share one cross-attention memory per window, each masked to its own prefix.

Absolute positions alone would leave a state unsure which of the items it sees is its newest: in a
window the newest item of target ``t`` sits at a different position for every ``t``, while at
inference it is always the last. So self- and cross-attention also add a learned bias per head and
distance ``t - s`` (zero at the start, shared by the layers, as T5's relative bias is).

With ``encoder="codes"`` each history item is instead ``levels`` encoder tokens, one per code, as in
TIGER's encoder; attention is causal between items and full within one, and the decoder reads every
code token of items ``0..t``. Position ``t``'s state is the mean of its item's token states.

:meth:`CausalModel.item_logits` scores every catalog item densely from a state, as SASRec does: the
dot product with the item's input vector (its code embeddings' sum plus its id vector), so the output
side shares the input's parameters and an item added later is scored by its codes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from genrec_plugins.tiger.model import PAD, TigerModel


class CausalModel(TigerModel):
    """TigerModel's vocabulary, layers and heads, with an item-level causal encoder."""

    def __init__(
        self,
        codebook_sizes: Sequence[int],
        max_history: int,
        layers_encoder: int = 2,
        layers_decoder: int = 2,
        d_model: int = 128,
        heads: int = 4,
        head_dim: int = 32,
        ffn: int = 512,
        dropout: float = 0.1,
        n_items: int = 0,
        encoder: str = "items",
        id_dropout: float = 0.0,
    ):
        super().__init__(
            codebook_sizes, max_history, layers_encoder, layers_decoder, d_model, heads, head_dim, ffn, dropout
        )
        self.per_item = self.levels if encoder == "codes" else 1  # encoder tokens per history item
        self.id_dropout = id_dropout  # in training, each history item's id vector is dropped with this chance
        # With n_items > 0 each history item also gets an embedding of its own id (0 = codes only).
        self.item_embedding = nn.Embedding(n_items + 1, d_model, padding_idx=PAD) if n_items else None
        if self.item_embedding is not None:
            nn.init.normal_(self.item_embedding.weight, std=0.02)
            with torch.no_grad():
                self.item_embedding.weight[PAD].zero_()
        self.self_bias = nn.Parameter(torch.zeros(heads, max_history))  # by distance t - s, per head
        self.cross_bias = nn.Parameter(torch.zeros(heads, max_history))

    def encoder_length(self, max_history: int) -> int:
        return max_history  # one position per item

    def biased(self, sees: torch.Tensor, bias: nn.Parameter, queries: int = 1) -> torch.Tensor:
        """(B, T, T) what each item sees -> (B, heads, T * queries, T * per_item) float mask with the
        distance bias, for ``queries`` query tokens per item and the encoder's tokens per item as keys."""
        length = sees.shape[-1]
        index = torch.arange(length, device=sees.device)
        distance = (index[:, None] - index[None, :]).clamp(0, bias.shape[1] - 1)
        mask = bias[:, distance].unsqueeze(0).masked_fill(~sees.unsqueeze(1), float("-inf"))
        return mask.repeat_interleave(queries, dim=2).repeat_interleave(self.per_item, dim=3)

    def encode_items(self, items: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, levels) left-padded code tokens of history items (ids (B, T)) -> causal item states
        (B, T, d), the decoder's memory (B, T * per_item, d), and what each item sees (B, T, T): the
        real items up to it, and itself."""
        batch, length, levels = items.shape
        positions = torch.arange(length - 1, -1, -1, device=items.device)
        x = self.tokens(items)  # (B, T, levels, d)
        x = (x if self.per_item > 1 else x.sum(dim=-2, keepdim=True)) + self.encoder_positions(positions)[:, None]
        if self.item_embedding is not None:
            vectors = self.item_embedding(ids)
            if self.training and self.id_dropout > 0:  # the item then reads as its codes alone
                vectors = vectors * (torch.rand(ids.shape, device=ids.device) >= self.id_dropout).unsqueeze(-1)
            x = x + vectors[:, :, None]
        x = self.dropout(x.reshape(batch, length * self.per_item, -1))
        real = items[..., 0] != PAD
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        diagonal = torch.eye(length, dtype=torch.bool, device=items.device)
        sees = causal & (real[:, None, :] | diagonal)  # a padding query sees itself: no NaN
        mask = self.biased(sees, self.self_bias, self.per_item)
        for layer in self.encoder:
            x = layer(x, mask)
        memory = self.encoder_norm(x)
        states = memory.view(batch, length, self.per_item, -1).mean(dim=2) if self.per_item > 1 else memory
        return states, memory, sees

    def item_vectors(self, item_tokens: torch.Tensor) -> torch.Tensor:
        """(n_items + 1, levels) code tokens of the catalog -> (n_items, d) item vectors (row 0, padding, dropped)."""
        vectors = self.tokens(item_tokens[1:]).sum(dim=-2)
        if self.item_embedding is not None:  # grown with the catalog (Causal.add_items)
            vectors = vectors + self.item_embedding.weight[1:]
        return vectors

    def item_logits(self, states: torch.Tensor, item_tokens: torch.Tensor) -> torch.Tensor:
        """(..., d) encoder states -> (..., n_items) dense scores of every item (column ``i`` is item ``i + 1``)."""
        return states @ self.item_vectors(item_tokens).to(states.dtype).T

    def newest_memory_mask(self, sees: torch.Tensor) -> torch.Tensor:
        """The cross-attention mask (B, heads, 1, S) of decoder rows that predict after the last position."""
        return self.biased(sees, self.cross_bias)[:, :, -1:]

    def decode_from(
        self, states: torch.Tensor, prefixes: torch.Tensor, memories: list, memory_mask: torch.Tensor
    ) -> torch.Tensor:
        """Decoder states (users, width, t + 1, d) of ``[state, prefix codes]``.

        ``states`` (users, width, d) start each row; ``prefixes`` (users, width, t) codes of levels
        0..t-1; ``memory_mask`` broadcasts to (users, 1, width * (t + 1), S).
        """
        x = torch.cat([states.unsqueeze(2), self.tokens(self.code_tokens(prefixes))], dim=2)
        hidden, _ = self.decode_embedded(x, 0, memories, memory_mask)
        return hidden

    def forward(  # type: ignore[override]
        self, ids: torch.Tensor, items: torch.Tensor, target_codes: torch.Tensor, has_target: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Teacher forcing at every target position of every window.

        ``ids`` (B, T) history items, ``items`` (B, T, levels) their code tokens; ``target_codes``
        (B, T, levels) the next item's codes; ``has_target`` (B, T). Returns per-level logits
        [(N, size_l)], the summary states (N, d) that predict the first level and the encoder states
        (N, d), for the N positions with a target, in row-major order.
        """
        states, memory, sees = self.encode_items(items, ids)
        levels = target_codes.shape[-1]
        # The decoder rows of target position t (levels of them) attend to what position t saw.
        memory_mask = self.biased(sees, self.cross_bias, levels)  # (B, heads, T * levels, S)
        hidden = self.decode_from(states, target_codes[..., :-1], self.memories(memory), memory_mask)
        kept = hidden[has_target]  # (N, levels, d)
        logits = [head(kept[:, level]) for level, head in enumerate(self.heads)]
        return logits, kept[:, 0], states[has_target]
