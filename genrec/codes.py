"""What the core does with a quantizer's codes: make them unique, describe them, refuse collapsed ones.

A quantizer returns (n_items, levels) codes that may collide. The core, not each quantizer, appends one
disambiguation level so that codes and items map one to one, reports how well each level's codebook is
used, and stops a run whose codebook collapsed onto a few codes (the generator could not tell items apart).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from genrec.contracts import ItemCodes
from genrec.errors import GenrecError


class CodebookCollapseError(GenrecError):
    """One code holds too large a share of the items."""


def _validated(codes: np.ndarray, codebook_sizes: Sequence[int]) -> tuple[np.ndarray, tuple[int, ...]]:
    codes = np.asarray(codes)
    sizes = tuple(int(s) for s in codebook_sizes)
    if codes.ndim != 2 or codes.shape[1] != len(sizes):
        raise GenrecError(f"codes of shape {codes.shape} do not match codebook sizes {sizes}")
    if not np.issubdtype(codes.dtype, np.integer):
        raise GenrecError(f"codes must be integers, got {codes.dtype}")
    codes = codes.astype(np.int64, copy=False)
    if len(codes):
        low, high = codes.min(axis=0), codes.max(axis=0)
        for level, (lo, hi, size) in enumerate(zip(low, high, sizes, strict=True), start=1):
            if lo < 0 or hi >= size:
                raise GenrecError(f"level {level} has codes in [{lo}, {hi}], outside its codebook [0, {size})")
    return codes, sizes


def _groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group id (rows with equal codes share one) and each group's size."""
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return inverse.reshape(-1).astype(np.int64), counts.astype(np.int64)


def disambiguate(codes: np.ndarray, codebook_sizes: Sequence[int]) -> ItemCodes:
    """Append a final level numbering the items that share a code 0, 1, 2, ... in item order.

    The new level's size is the largest collision group (1 when no codes collide), so every item has a
    unique code and every code of the result belongs to exactly one item.
    """
    codes, sizes = _validated(codes, codebook_sizes)
    group, counts = _groups(codes)
    # A stable sort keeps item order inside each group; an item's rank is its offset from the group start.
    order = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes), dtype=np.int64) - starts[group[order]]
    extra = int(counts.max()) if len(counts) else 1
    return ItemCodes(np.concatenate([codes, rank[:, None]], axis=1), (*sizes, max(extra, 1)))


def _entropy_bits(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) if len(p) else 0.0


def code_stats(codes: np.ndarray, codebook_sizes: Sequence[int]) -> dict[str, Any]:
    """Per-level codebook usage and collisions of (pre-disambiguation) codes, as plain JSON types.

    ``levels[l]``: ``used`` distinct codes of ``size``, ``usage`` = used / size, ``entropy_bits`` and
    ``perplexity`` (2 ** entropy: the number of equally used codes that would give the same entropy),
    ``largest_share`` (fraction of items on the most used code), and ``prefix_unique``: the fraction of
    items whose code up to and including this level no other item has.
    ``collision_rate`` is the fraction of items whose full code is shared with another item.
    """
    codes, sizes = _validated(codes, codebook_sizes)
    n = len(codes)
    levels = []
    for level, size in enumerate(sizes):
        counts = np.bincount(codes[:, level], minlength=size)
        entropy = _entropy_bits(counts)
        _, prefix_counts = _groups(codes[:, : level + 1])
        levels.append(
            {
                "level": level + 1,
                "size": size,
                "used": int((counts > 0).sum()),
                "usage": float((counts > 0).sum() / size),
                "entropy_bits": entropy,
                "perplexity": float(2.0**entropy),
                "largest_share": float(counts.max() / n) if n else 0.0,
                "prefix_unique": float((prefix_counts == 1).sum() / n) if n else 1.0,
            }
        )
    _, counts = _groups(codes)
    colliding = counts[counts > 1]
    return {
        "n_items": n,
        "levels": levels,
        "distinct_codes": len(counts),
        "collision_rate": float(colliding.sum() / n) if n else 0.0,
        "colliding_groups": len(colliding),
        "largest_group": int(counts.max()) if len(counts) else 0,
    }


def check_collapse(
    codes: np.ndarray, codebook_sizes: Sequence[int], max_share: float = 0.5, force: bool = False
) -> None:
    """Raise CodebookCollapseError when one first-level code, or one full code, holds over ``max_share``
    of the items, unless ``force``. A first level of size 1 was asked for, so it is not checked."""
    if not 0.0 < max_share <= 1.0:
        raise GenrecError(f"max_share must be in (0, 1], got {max_share}")
    codes, sizes = _validated(codes, codebook_sizes)
    n = len(codes)
    if force or n < 2:
        return
    hint = (
        f"the quantizer collapsed; try other quantizer options (more iterations, another seed, "
        f"normalised embeddings), or pass --force (force=True) to go on anyway, or raise max_share "
        f"(now {max_share:g})"
    )
    if sizes[0] > 1:
        counts = np.bincount(codes[:, 0], minlength=sizes[0])
        top = int(counts.argmax())
        if counts[top] > max_share * n:
            raise CodebookCollapseError(
                f"codebook collapse: first-level code {top} holds {counts[top]} of {n} items "
                f"({counts[top] / n:.0%} > {max_share:.0%}); {hint}"
            )
    group, counts = _groups(codes)
    top = int(counts.argmax())
    if counts[top] > max_share * n:
        code = tuple(int(c) for c in codes[int(np.flatnonzero(group == top)[0])])
        raise CodebookCollapseError(
            f"codebook collapse: code {code} holds {counts[top]} of {n} items "
            f"({counts[top] / n:.0%} > {max_share:.0%}); {hint}"
        )


def place_new(
    raw: np.ndarray,
    codes: ItemCodes,
    new_raw: np.ndarray,
    nearest: Callable[[int], np.ndarray] | None = None,
) -> np.ndarray:
    """Unique full codes for new items, given the catalog's raw codes and its disambiguated ``codes``.

    A new item takes its raw code and the smallest final-level number that no item with that raw code
    holds yet (new items of one call in order). The final level keeps its trained size, so a group may
    be full: the item then joins the group of the first catalog item in ``nearest(index)`` (catalog
    rows, most similar first) that has room. Without ``nearest``, or with no room anywhere, a full group
    is an error naming it.
    """
    raw = np.asarray(raw, dtype=np.int64)
    new_raw, _ = _validated(new_raw, codes.codebook_sizes[:-1])
    taken: dict[tuple[int, ...], set[int]] = {}
    for row, last in zip(raw.tolist(), codes.codes[:, -1].tolist(), strict=True):
        taken.setdefault(tuple(row), set()).add(int(last))
    width = codes.codebook_sizes[-1]

    def free_slot(group: tuple[int, ...]) -> int | None:
        used = taken.setdefault(group, set())
        return next((value for value in range(width) if value not in used), None)

    placed = np.empty((len(new_raw), codes.levels), dtype=np.int64)
    for index, row in enumerate(new_raw.tolist()):
        group = tuple(row)
        slot = free_slot(group)
        if slot is None and nearest is not None:
            for neighbour in nearest(index):
                group = tuple(raw[neighbour].tolist())
                if (slot := free_slot(group)) is not None:
                    break
        if slot is None:
            raise GenrecError(
                f"new item {index + 1}: its code {tuple(row)} is shared by {width} items already, the most the "
                "trained generator's last code level can tell apart"
            )
        taken[group].add(slot)
        placed[index] = [*group, slot]
    return placed
