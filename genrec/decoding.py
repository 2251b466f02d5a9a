"""Trie-constrained decoding shared by every code generator: beam search and the exact ranking.

A generator that writes an item's code level by level exposes itself as a :class:`CodeDecoder`; the
core drives it. :func:`beam_search` keeps, for all users at once, the ``beam`` best valid code prefixes
(a prefix is valid when some item's code starts with it; the :class:`CodeTrie` answers that without
materialising any ``size ** levels`` table) and returns the ``k`` most probable complete codes as item
ids. :func:`exact_scores` scores every item's full code by teacher forcing, which makes the full
catalog ranking (:func:`exact_topk`) the reference a beam search is checked against.

Rows are laid out per user: the decoder sees prefixes of shape ``(users, width, t)`` and answers
``(users, width, size_t)`` log-probabilities, so a per-user encoder state never needs to be copied
once per beam. A decoder that caches its own past (keys and values of earlier code positions) is told
which old row each new beam row continues through :meth:`CodeDecoder.select`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = ["CodeDecoder", "CodeTrie", "beam_search", "beam_search_scored", "exact_scores", "exact_topk"]


class CodeTrie:
    """The prefix trie of a catalog's codes, as sorted integer keys per level (memory O(items x levels)).

    A node at depth ``t`` is one distinct code prefix of length ``t``; depth 0 holds the root only.
    The children of depth-``t`` nodes are listed in ``keys[t] = parent * size_t + token``, sorted, and a
    child's node id at depth ``t + 1`` is its position in that list, so a lookup is one ``searchsorted``.
    Leaves (depth ``levels``) map one to one to items, numbered 1..n_items as in every genrec array.
    """

    def __init__(self, codes: np.ndarray, codebook_sizes: Sequence[int] | None = None):
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] < 1 or len(codes) < 1:
            raise ValueError(f"codes must be a non-empty (n_items, levels) array, got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer) or (codes < 0).any():
            raise ValueError("codes must be non-negative integers")
        codes = codes.astype(np.int64)
        observed = codes.max(axis=0) + 1
        sizes = observed if codebook_sizes is None else np.asarray(codebook_sizes, dtype=np.int64)
        if sizes.shape != observed.shape or (sizes < observed).any():
            raise ValueError(f"codebook sizes {tuple(sizes.tolist())} do not cover codes needing {tuple(observed)}")
        self.codes = codes
        self.sizes = tuple(int(s) for s in sizes)
        keys: list[np.ndarray] = []
        node = np.zeros(len(codes), dtype=np.int64)  # every item's node at the current depth
        for level, size in enumerate(self.sizes):
            unique, node = np.unique(node * size + codes[:, level], return_inverse=True)
            keys.append(unique)
            node = node.reshape(-1)
        if len(keys[-1]) != len(codes):
            raise ValueError("codes are not unique per item: append a disambiguation level first")
        leaf_item = np.zeros(len(codes), dtype=np.int64)
        leaf_item[node] = np.arange(1, len(codes) + 1)
        self._keys = [torch.from_numpy(k) for k in keys]
        self._indptr = [
            torch.from_numpy(np.searchsorted(k, np.arange(self.n_nodes(t) + 1) * size))
            for t, (k, size) in enumerate(zip(keys, self.sizes, strict=True))
        ]
        self._leaf_item = torch.from_numpy(leaf_item)
        self._item_leaf = torch.from_numpy(node)
        self._on: dict[torch.device, tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]] = {}

    @property
    def levels(self) -> int:
        return len(self.sizes)

    @property
    def n_items(self) -> int:
        return len(self.codes)

    def n_nodes(self, depth: int) -> int:
        """Distinct prefixes of length ``depth`` (1 at depth 0, n_items at depth ``levels``)."""
        return 1 if depth == 0 else len(self._keys[depth - 1])

    def _tensors(self, device: torch.device) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        if device not in self._on:
            self._on[device] = (
                [k.to(device) for k in self._keys],
                [p.to(device) for p in self._indptr],
                self._leaf_item.to(device),
            )
        return self._on[device]

    def child(self, depth: int, nodes: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The depth ``depth + 1`` node reached from ``nodes`` by ``tokens``; -1 where there is none."""
        keys = self._tensors(nodes.device)[0][depth]
        size = self.sizes[depth]
        wanted = nodes * size + tokens
        position = torch.searchsorted(keys, wanted).clamp(max=len(keys) - 1)
        found = (keys[position] == wanted) & (nodes >= 0) & (tokens >= 0) & (tokens < size)
        return torch.where(found, position, torch.full_like(position, -1))

    def allowed(self, depth: int, nodes: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """(N,) nodes at ``depth`` -> (N, width) boolean mask of the tokens that continue a valid code.

        A node of -1 (a dead beam) allows nothing. ``width`` defaults to the level's codebook size.
        """
        keys, indptr, _ = self._tensors(nodes.device)
        size = self.sizes[depth]
        width = size if width is None else width
        if width < size:
            raise ValueError(f"level {depth} needs a mask at least {size} wide, got {width}")
        live = nodes >= 0
        safe = nodes.clamp(min=0)
        start = indptr[depth][safe]
        count = torch.where(live, indptr[depth][safe + 1] - start, torch.zeros_like(start))
        # Expand each row's child range [start, start + count) into flat (row, child) pairs.
        rows = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), count)
        first = torch.cumsum(count, 0) - count
        offsets = torch.arange(len(rows), device=nodes.device) - first[rows]
        tokens = keys[depth][start[rows] + offsets] % size
        mask = torch.zeros(len(nodes), width, dtype=torch.bool, device=nodes.device)
        mask[rows, tokens] = True
        return mask

    def nodes(self, prefixes: torch.Tensor) -> torch.Tensor:
        """(N, t) code prefixes -> (N,) their depth-``t`` node ids, -1 for a prefix no item has."""
        prefixes = torch.as_tensor(prefixes, dtype=torch.long)
        node = torch.zeros(len(prefixes), dtype=torch.long, device=prefixes.device)
        for depth in range(prefixes.shape[1]):
            node = self.child(depth, node, prefixes[:, depth])
        return node

    def allowed_after(self, prefixes: torch.Tensor, width: int | None = None) -> torch.Tensor:
        """(N, t) prefixes -> (N, size_t) mask of the tokens allowed next."""
        prefixes = torch.as_tensor(prefixes, dtype=torch.long)
        return self.allowed(prefixes.shape[1], self.nodes(prefixes), width)

    def leaf_items(self, leaves: torch.Tensor) -> torch.Tensor:
        """Leaf node ids -> 1-based item ids; 0 for -1 (no item)."""
        leaf_item = self._tensors(leaves.device)[2]
        return torch.where(leaves >= 0, leaf_item[leaves.clamp(min=0)], torch.zeros_like(leaves))

    def leaf_parents(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """1-based item ids -> (their depth ``levels - 1`` node, their last code token); -1, -1 for 0."""
        if not hasattr(self, "_parent_token"):
            parents = torch.from_numpy(np.concatenate([[-1], self._item_prefix_nodes(self.levels - 1)]))
            self._parent_token = (parents, torch.from_numpy(np.concatenate([[-1], self.codes[:, -1]])))
        parents, tokens = self._parent_token
        return parents.to(items.device)[items], tokens.to(items.device)[items]

    def item_ids(self, codes: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(N, levels) full codes -> (N,) 1-based item ids; 0 where the code belongs to no item."""
        codes = torch.as_tensor(codes, dtype=torch.long)
        if codes.ndim != 2 or codes.shape[1] != self.levels:
            raise ValueError(f"full codes must have shape (N, {self.levels}), got {tuple(codes.shape)}")
        return self.leaf_items(self.nodes(codes))

    def prefixes(self, depth: int) -> np.ndarray:
        """(n_nodes(depth), depth) the distinct prefixes at ``depth``, in node-id order."""
        node = self._item_prefix_nodes(depth)
        out = np.zeros((self.n_nodes(depth), depth), dtype=np.int64)
        out[node] = self.codes[:, :depth]
        return out

    def _item_prefix_nodes(self, depth: int) -> np.ndarray:
        node = np.zeros(self.n_items, dtype=np.int64)
        for level in range(depth):
            node = np.searchsorted(self._keys[level].numpy(), node * self.sizes[level] + self.codes[:, level])
        return node


@runtime_checkable
class CodeDecoder(Protocol):
    """What a code generator exposes to the shared decoding.

    ``start`` encodes the histories once. ``step`` gets prefixes ``(users, width, t)`` (``t`` codes
    already chosen, rows of a user together) and returns ``(log_probs, state)``: normalised
    log-probabilities ``(users, width, size_t)`` of level ``t``'s codebook, and the state to use next
    (it may carry a cache of the rows just decoded). ``select(state, parents)`` is called after each
    step with ``parents`` ``(users, new_width)``: new row ``j`` of a user continues old row
    ``parents[:, j]``; a decoder without a cache returns the state unchanged.
    """

    def start(self, histories: np.ndarray) -> Any: ...

    def step(self, state: Any, prefixes: torch.Tensor) -> tuple[torch.Tensor, Any]: ...

    def select(self, state: Any, parents: torch.Tensor) -> Any: ...


def _trie(codes: CodeTrie | np.ndarray) -> CodeTrie:
    return codes if isinstance(codes, CodeTrie) else CodeTrie(np.asarray(codes))


def beam_search(
    decoder: CodeDecoder,
    histories: np.ndarray,
    trie: CodeTrie | np.ndarray,
    beam: int,
    k: int,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """The ``k`` most probable valid complete codes per history, as (users, k) item ids, best first.

    All users and beams advance together. Continuations no item has are masked to -inf, so every
    returned id is a real item and no item appears twice. When a level has fewer valid prefixes than
    ``beam`` the beam is narrower there (surplus rows are dead: -inf, no node). ``exclude`` (users, m)
    lists item ids (0 for none) never to return to each user; see :func:`beam_search_scored`.
    """
    return beam_search_scored(decoder, histories, trie, beam, k, exclude)[0]


@torch.no_grad()
def beam_search_scored(
    decoder: CodeDecoder,
    histories: np.ndarray,
    trie: CodeTrie | np.ndarray,
    beam: int,
    k: int,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`beam_search`'s (users, k) item ids and their codes' total log-probabilities.

    Excluded items are masked at the trie's leaves. The beam is widened by the most items any user
    excludes, so the last level still holds ``k`` allowed items whatever the exclusions removed.
    """
    trie = _trie(trie)
    users = len(histories)
    excluded = np.zeros((users, 0), dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
    if excluded.shape[0] != users:
        raise ValueError(f"exclude has {excluded.shape[0]} rows for {users} histories")
    dropped = max((len(set(row.tolist()) - {0}) for row in excluded), default=0)
    if k < 1 or beam < k:
        raise ValueError(f"beam search needs 1 <= k <= beam, got k={k}, beam={beam}")
    if k > trie.n_items - dropped:
        raise ValueError(f"cannot return {k} distinct items from a catalog of {trie.n_items} less {dropped} excluded")
    if users == 0:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
    beam += dropped
    state = decoder.start(histories)
    prefixes: torch.Tensor | None = None
    scores = nodes = None
    for depth in range(trie.levels):
        if prefixes is None:
            log_probs, state = decoder.step(state, torch.zeros(users, 1, 0, dtype=torch.long))
            device = log_probs.device
            prefixes = torch.zeros(users, 1, 0, dtype=torch.long, device=device)
            scores = torch.zeros(users, 1, device=device)
            nodes = torch.zeros(users, 1, dtype=torch.long, device=device)
        else:
            log_probs, state = decoder.step(state, prefixes)
        assert scores is not None and nodes is not None
        width, size = log_probs.shape[1], log_probs.shape[2]
        allowed = trie.allowed(depth, nodes.reshape(-1), size).view(users, width, size)
        if depth == trie.levels - 1 and excluded.shape[1]:
            allowed &= ~_excluded_leaves(trie, nodes, torch.from_numpy(excluded).to(nodes.device), size)
        candidates = (scores.unsqueeze(-1) + log_probs.float()).masked_fill(~allowed, float("-inf"))
        scores, flat = candidates.view(users, width * size).topk(min(beam, width * size), dim=1)
        parents, tokens = flat // size, flat % size
        history = prefixes.gather(1, parents.unsqueeze(-1).expand(-1, -1, depth))
        prefixes = torch.cat([history, tokens.unsqueeze(-1)], dim=-1)
        nodes = trie.child(depth, nodes.gather(1, parents), tokens)
        nodes = nodes.masked_fill(torch.isinf(scores), -1)
        state = decoder.select(state, parents)
    assert nodes is not None and scores is not None
    return trie.leaf_items(nodes[:, :k]).cpu().numpy(), scores[:, :k].cpu().numpy()


def _excluded_leaves(trie: CodeTrie, nodes: torch.Tensor, excluded: torch.Tensor, size: int) -> torch.Tensor:
    """(users, width, size) True where row ``(u, w)``'s continuation by a token reaches an excluded item."""
    parents, tokens = trie.leaf_parents(excluded)  # (users, m) each
    match = (nodes.unsqueeze(-1) == parents.unsqueeze(1)) & (excluded > 0).unsqueeze(1)  # (users, width, m)
    hits = torch.zeros(*nodes.shape, size, device=nodes.device)
    hits.scatter_add_(2, tokens.clamp(min=0).unsqueeze(1).expand(-1, nodes.shape[1], -1), match.float())
    return hits > 0


@torch.no_grad()
def exact_scores(
    decoder: CodeDecoder, histories: np.ndarray, codes: CodeTrie | np.ndarray, batch_size: int = 8
) -> np.ndarray:
    """(users, n_items) total log-probability of every item's full code, column ``i`` for item ``i + 1``.

    Teacher forcing level by level over the trie's distinct prefixes (shared prefixes are scored once),
    ``batch_size`` users at a time.
    """
    trie = _trie(codes)
    out = np.zeros((len(histories), trie.n_items), dtype=np.float32)
    levels = [torch.from_numpy(trie.prefixes(depth)) for depth in range(trie.levels)]
    children = [trie._keys[depth] for depth in range(trie.levels)]
    for start in range(0, len(histories), batch_size):
        chunk = histories[start : start + batch_size]
        users = len(chunk)
        state = decoder.start(chunk)
        total: torch.Tensor | None = None
        for depth in range(trie.levels):
            prefixes = levels[depth].unsqueeze(0).expand(users, -1, -1)
            log_probs, _ = decoder.step(state, prefixes)  # no select: every call starts afresh
            log_probs = log_probs.float()
            if total is None:
                total = torch.zeros(users, 1, device=log_probs.device)
            keys = children[depth].to(log_probs.device)
            parent, token = keys // trie.sizes[depth], keys % trie.sizes[depth]
            total = total[:, parent] + log_probs[:, parent, token]
        assert total is not None
        leaf_of_item = trie._item_leaf.to(total.device)
        out[start : start + users] = total[:, leaf_of_item].cpu().numpy()
    return out


def exact_topk(
    decoder: CodeDecoder, histories: np.ndarray, codes: CodeTrie | np.ndarray, k: int, batch_size: int = 8
) -> np.ndarray:
    """The exact full-catalog top-``k`` item ids (users, k) by total code log-probability."""
    scores = exact_scores(decoder, histories, codes, batch_size)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order + 1
