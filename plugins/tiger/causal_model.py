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
"""

from __future__ import annotations

import torch

from genrec_plugins.tiger.model import PAD, TigerModel


class CausalModel(TigerModel):
    """TigerModel's vocabulary, layers and heads, with an item-level causal encoder."""

    def encoder_length(self, max_history: int) -> int:
        return max_history  # one position per item

    def encode_items(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, levels) left-padded code tokens of each history item -> causal states (B, T, d).

        Also returns what each position sees, (B, T, T): the real items up to it, and itself.
        """
        batch, length, _ = items.shape
        positions = torch.arange(length - 1, -1, -1, device=items.device)
        x = self.dropout(self.tokens(items).sum(dim=-2) + self.encoder_positions(positions))
        real = items[..., 0] != PAD
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        diagonal = torch.eye(length, dtype=torch.bool, device=items.device)
        sees = causal & (real[:, None, :] | diagonal)  # a padding query sees itself: no NaN
        for layer in self.encoder:
            x = layer(x, sees[:, None])
        return self.encoder_norm(x), sees

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
        self, items: torch.Tensor, target_codes: torch.Tensor, has_target: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Teacher forcing at every target position of every window.

        ``items`` (B, T, levels) history code tokens; ``target_codes`` (B, T, levels) the next item's
        codes; ``has_target`` (B, T). Returns per-level logits [(N, size_l)] and the summary states
        (N, d) that predict the first level, for the N positions with a target, in row-major order.
        """
        states, sees = self.encode_items(items)
        batch, length, levels = target_codes.shape
        # The decoder rows of target position t attend to what position t saw.
        memory_mask = sees[:, :, None].expand(-1, -1, levels, -1).reshape(batch, 1, length * levels, length)
        hidden = self.decode_from(states, target_codes[..., :-1], self.memories(states), memory_mask)
        kept = hidden[has_target]  # (N, levels, d)
        logits = [head(kept[:, level]) for level, head in enumerate(self.heads)]
        return logits, kept[:, 0]
