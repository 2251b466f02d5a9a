"""The core's code handling: disambiguation, statistics, collapse check."""

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from genrec.codes import CodebookCollapseError, check_collapse, code_stats, disambiguate
from genrec.errors import GenrecError

SIZES = (3, 2, 4)


@st.composite
def code_matrices(draw):
    levels = draw(st.integers(1, 3))
    n = draw(st.integers(1, 40))
    sizes = SIZES[:levels]
    columns = [draw(hnp.arrays(np.int64, n, elements=st.integers(0, size - 1))) for size in sizes]
    return np.stack(columns, 1), sizes


@settings(max_examples=60, deadline=None)
@given(code_matrices())
def test_disambiguate_makes_codes_and_items_one_to_one(case):
    codes, sizes = case
    result = disambiguate(codes, sizes)
    assert result.codes.shape == (len(codes), len(sizes) + 1)
    assert result.codes.dtype == np.int64
    np.testing.assert_array_equal(result.codes[:, :-1], codes)
    assert len({tuple(row) for row in result.codes.tolist()}) == len(codes)  # unique, so a bijection
    groups = Counter(map(tuple, codes.tolist()))
    assert result.codebook_sizes == (*sizes, max(groups.values()))
    assert (result.codes[:, -1] < result.codebook_sizes[-1]).all()
    # Items sharing a code are numbered 0, 1, 2, ... in item order.
    for code in groups:
        members = np.flatnonzero((codes == np.asarray(code)).all(1))
        np.testing.assert_array_equal(result.codes[members, -1], np.arange(len(members)))


def test_disambiguate_without_collisions_adds_a_level_of_size_one():
    codes = np.array([[0, 1], [1, 0], [1, 1]])
    result = disambiguate(codes, (2, 2))
    assert result.codebook_sizes == (2, 2, 1)
    np.testing.assert_array_equal(result.codes[:, -1], 0)


def test_disambiguate_rejects_codes_outside_their_codebook():
    with pytest.raises(GenrecError, match="level 2"):
        disambiguate(np.array([[0, 5]]), (2, 4))
    with pytest.raises(GenrecError, match="do not match"):
        disambiguate(np.array([[0, 1]]), (2,))


def test_code_stats_on_a_hand_made_example():
    codes = np.array([[0, 0], [0, 0], [0, 1], [1, 2]])
    stats = code_stats(codes, (2, 4))
    json.dumps(stats)  # plain JSON types only
    first, second = stats["levels"]
    assert (first["used"], first["usage"], first["largest_share"]) == (2, 1.0, 0.75)
    assert first["entropy_bits"] == pytest.approx(-(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25)))
    assert first["perplexity"] == pytest.approx(2 ** first["entropy_bits"])
    assert first["prefix_unique"] == 0.25  # only item 4 is alone under its first-level code
    assert (second["used"], second["usage"], second["prefix_unique"]) == (3, 0.75, 0.5)
    assert second["entropy_bits"] == pytest.approx(1.5)
    assert stats["n_items"] == 4
    assert stats["distinct_codes"] == 3
    assert stats["collision_rate"] == 0.5
    assert stats["colliding_groups"] == 1
    assert stats["largest_group"] == 2


def test_code_stats_of_unique_codes():
    stats = code_stats(np.array([[0], [1], [2], [3]]), (4,))
    assert stats["collision_rate"] == 0.0 and stats["largest_group"] == 1
    assert stats["levels"][0]["perplexity"] == pytest.approx(4.0)


def test_check_collapse_names_the_first_level_code_and_the_override():
    codes = np.array([[2, 0], [2, 1], [2, 2], [1, 0]])
    with pytest.raises(CodebookCollapseError, match=r"first-level code 2 holds 3 of 4 items") as error:
        check_collapse(codes, (4, 4))
    assert "--force" in str(error.value)
    assert isinstance(error.value, GenrecError)
    check_collapse(codes, (4, 4), force=True)
    check_collapse(codes, (4, 4), max_share=0.8)


def test_check_collapse_catches_a_collapsed_full_code():
    # A first level of size 1 is the user's choice; the full code still must not collapse.
    codes = np.array([[0, 3], [0, 3], [0, 3], [0, 1]])
    with pytest.raises(CodebookCollapseError, match=r"code \(0, 3\) holds 3 of 4"):
        check_collapse(codes, (1, 4))
    check_collapse(np.array([[0, 0], [0, 1], [0, 2], [0, 3]]), (1, 4))


def test_check_collapse_passes_healthy_codes():
    rng = np.random.default_rng(0)
    codes = rng.integers(8, size=(100, 3))
    check_collapse(codes, (8, 8, 8))
    with pytest.raises(GenrecError, match="max_share"):
        check_collapse(codes, (8, 8, 8), max_share=0)


def test_new_items_take_a_free_slot_of_their_group_or_of_the_nearest_group_with_room() -> None:
    from genrec.codes import place_new

    raw = np.array([[0, 0], [0, 0], [1, 1], [0, 1]])
    codes = disambiguate(raw, (2, 2))  # the last level has size 2, so group (0, 0) is full
    nearest = lambda index: np.array([2, 0, 3])  # noqa: E731 - catalog rows, most similar first
    placed = place_new(raw, codes, np.array([[1, 1], [1, 1]]), nearest)
    assert placed.tolist() == [[1, 1, 1], [0, 1, 1]]  # the second overflows to the nearest group with room
    with pytest.raises(GenrecError, match=r"new item 1: its code \(0, 0\) is shared by 2 items"):
        place_new(raw, codes, np.array([[0, 0]]))
