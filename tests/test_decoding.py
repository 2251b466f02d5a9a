"""The shared decoding: the code trie, constrained beam search, and the exact ranking it approximates."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genrec.decoding import CodeDecoder, CodeTrie, beam_search, beam_search_scored, exact_scores, exact_topk


def unique_codes(n_items: int, sizes: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    space = int(np.prod(sizes))
    flat = rng.choice(space, size=n_items, replace=False)
    return np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64)


class ToyDecoder:
    """A fixed random scorer of (history, prefix): enough structure for beams to disagree."""

    def __init__(self, sizes: tuple[int, ...], n_items: int, dim: int = 8, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.items = torch.randn(n_items + 1, dim, generator=generator)
        self.tokens = [torch.randn(size, dim, generator=generator) for size in sizes]
        self.heads = [torch.randn(dim, size, generator=generator) * 2 for size in sizes]
        self.starts = self.selects = 0

    def start(self, histories: np.ndarray) -> torch.Tensor:
        self.starts += 1
        return self.items[torch.as_tensor(histories)].mean(dim=1)  # (users, dim)

    def step(self, state: torch.Tensor, prefixes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        users, width, depth = prefixes.shape
        hidden = state[:, None, :].expand(users, width, -1).clone()
        for level in range(depth):
            hidden = torch.tanh(hidden + self.tokens[level][prefixes[..., level]])
        return torch.log_softmax(hidden @ self.heads[depth], dim=-1), state

    def select(self, state: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        self.selects += 1
        return state


def brute_allowed(codes: np.ndarray, prefix: tuple[int, ...]) -> set[int]:
    depth = len(prefix)
    return {int(row[depth]) for row in codes if tuple(row[:depth].tolist()) == prefix}


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    fraction=st.floats(0.05, 1.0),
    seed=st.integers(0, 10_000),
)
def test_trie_allowed_tokens_match_brute_force(sizes: tuple[int, ...], fraction: float, seed: int) -> None:
    space = int(np.prod(sizes))
    n_items = max(1, int(space * fraction))
    codes = unique_codes(n_items, sizes, seed)
    trie = CodeTrie(codes, sizes)
    for depth in range(len(sizes)):
        # Every prefix of the full space, valid or not, in one vectorised call.
        every = list(itertools.product(*(range(s) for s in sizes[:depth])))
        prefixes = np.array(every, dtype=np.int64).reshape(len(every), depth)
        mask = trie.allowed_after(torch.from_numpy(prefixes)).numpy()
        assert mask.shape == (len(prefixes), sizes[depth])
        for row, prefix in zip(mask, prefixes, strict=True):
            assert set(np.flatnonzero(row).tolist()) == brute_allowed(codes, tuple(prefix.tolist()))
    ids = trie.item_ids(torch.from_numpy(codes)).numpy()
    assert np.array_equal(ids, np.arange(1, n_items + 1))


def test_trie_rejects_duplicates_and_maps_unknown_codes_to_zero() -> None:
    with pytest.raises(ValueError, match="not unique"):
        CodeTrie(np.array([[0, 1], [0, 1]]))
    trie = CodeTrie(np.array([[0, 1], [1, 0], [1, 2]]), (2, 3))
    assert trie.item_ids(np.array([[1, 2], [0, 0], [1, 1]])).tolist() == [3, 0, 0]
    assert trie.allowed(1, torch.tensor([-1, 0, 1])).tolist() == [
        [False, False, False],
        [False, True, False],
        [True, False, True],
    ]
    with pytest.raises(ValueError, match="do not cover"):
        CodeTrie(np.array([[0, 5]]), (1, 3))


def test_trie_is_compact_for_a_beauty_sized_catalog() -> None:
    codes = unique_codes(12_101, (256, 256, 256), seed=1)
    codes = np.concatenate([codes, np.zeros((len(codes), 1), dtype=np.int64)], axis=1)
    trie = CodeTrie(codes, (256, 256, 256, 10))
    stored = sum(k.numel() for k in trie._keys) + sum(p.numel() for p in trie._indptr)
    assert stored < 10 * 12_101 * 4  # a handful of int64 per item and level, no 256 ** 3 table
    some = torch.from_numpy(codes[:500, :2])
    assert trie.allowed_after(some).sum(dim=1).min() >= 1


def test_beam_at_least_catalog_size_equals_exact_ranking() -> None:
    sizes = (3, 4, 2)
    codes = unique_codes(17, sizes, seed=3)
    decoder = ToyDecoder(sizes, n_items=17)
    histories = np.random.default_rng(0).integers(1, 18, size=(6, 5))
    exact = exact_topk(decoder, histories, codes, k=10)
    beam = beam_search(decoder, histories, CodeTrie(codes, sizes), beam=17, k=10)
    assert np.array_equal(beam, exact)
    scores = exact_scores(decoder, histories, codes)
    assert scores.shape == (6, 17)
    assert (np.exp(scores).sum(axis=1) <= 1 + 1e-5).all()  # invalid codes hold the rest of the mass
    assert decoder.selects == len(sizes)  # one reorder per level


def test_exact_scores_match_the_chain_rule_for_one_item() -> None:
    sizes = (3, 2)
    codes = unique_codes(5, sizes, seed=0)
    decoder = ToyDecoder(sizes, n_items=5, seed=4)
    histories = np.array([[1, 2, 3]])
    expected = []
    for code in codes:
        total = 0.0
        for depth in range(len(sizes)):
            prefix = torch.from_numpy(code[:depth]).view(1, 1, depth)
            total += float(decoder.step(decoder.start(histories), prefix)[0][0, 0, code[depth]])
        expected.append(total)
    assert np.allclose(exact_scores(decoder, histories, codes)[0], expected, atol=1e-5)


def test_narrow_beam_returns_valid_distinct_items() -> None:
    sizes = (8, 8, 3)
    codes = unique_codes(60, sizes, seed=5)
    decoder = ToyDecoder(sizes, n_items=60, seed=1)
    histories = np.random.default_rng(1).integers(1, 61, size=(9, 4))
    ranked = beam_search(decoder, histories, codes, beam=5, k=5)
    assert ranked.shape == (9, 5)
    assert ((ranked >= 1) & (ranked <= 60)).all()
    assert all(len(set(row.tolist())) == 5 for row in ranked)
    scores = exact_scores(decoder, histories, codes)
    picked = np.take_along_axis(scores, ranked - 1, axis=1)
    assert (np.diff(picked, axis=1) <= 1e-6).all()  # ordered by total log-probability


def test_beam_wider_than_the_valid_prefixes_is_handled() -> None:
    # Two items only under a wide codebook: most continuations are invalid at every level.
    codes = np.array([[0, 3, 1], [5, 0, 0]])
    sizes = (6, 4, 2)
    decoder = ToyDecoder(sizes, n_items=2)
    ranked = beam_search(decoder, np.array([[1, 2], [2, 2]]), CodeTrie(codes, sizes), beam=20, k=2)
    assert sorted(ranked[0].tolist()) == [1, 2] and sorted(ranked[1].tolist()) == [1, 2]


def test_excluded_items_are_never_returned_and_the_rest_keep_the_exact_order() -> None:
    sizes = (3, 4, 2)
    codes = unique_codes(20, sizes, seed=7)
    decoder = ToyDecoder(sizes, n_items=20, seed=2)
    histories = np.random.default_rng(3).integers(0, 21, size=(8, 6))  # 0 is padding: excludes nothing
    scores = exact_scores(decoder, histories, codes)
    excluded = np.zeros((8, 21), dtype=bool)
    np.put_along_axis(excluded, histories, True, axis=1)
    scores[excluded[:, 1:]] = -np.inf
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :10] + 1
    # A full-width beam is exact; the beam widens by the exclusions, so k items always come back.
    ranked, log_probs = beam_search_scored(decoder, histories, CodeTrie(codes, sizes), 20, 10, exclude=histories)
    assert np.array_equal(ranked, expected)
    assert np.allclose(log_probs, np.take_along_axis(scores, ranked - 1, axis=1), atol=1e-5)
    narrow = beam_search(decoder, histories, codes, beam=3, k=3, exclude=histories)
    for row, history in zip(narrow, histories, strict=True):
        assert len(set(row.tolist())) == 3 and not set(row.tolist()) & set(history.tolist())


def test_exclusion_that_leaves_fewer_than_k_items_is_an_error() -> None:
    codes = unique_codes(6, (3, 2), seed=0)
    decoder = ToyDecoder((3, 2), n_items=6)
    with pytest.raises(ValueError, match="less 3 excluded"):
        beam_search(decoder, np.array([[1, 2, 3]]), codes, beam=4, k=4, exclude=np.array([[1, 2, 3]]))


def test_beam_search_argument_errors() -> None:
    codes = unique_codes(10, (4, 4), seed=0)
    decoder = ToyDecoder((4, 4), n_items=10)
    with pytest.raises(ValueError, match="k <= beam"):
        beam_search(decoder, np.ones((2, 3), dtype=np.int64), codes, beam=3, k=5)
    with pytest.raises(ValueError, match="catalog of 10"):
        beam_search(decoder, np.ones((2, 3), dtype=np.int64), codes, beam=12, k=11)
    assert beam_search(decoder, np.zeros((0, 3), dtype=np.int64), codes, beam=3, k=2).shape == (0, 2)


def test_toy_decoder_satisfies_the_protocol() -> None:
    assert isinstance(ToyDecoder((2,), 1), CodeDecoder)
