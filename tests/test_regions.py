from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veff.types import Region
from veff.variants.regions import centre_index, restricted_window, window_start


@pytest.mark.parametrize(
    ("length", "exact", "kipoi"),
    [(1, 0, 0), (2, 0, 0), (100, 49, 49), (101, 50, 49), (1000, 499, 499), (1001, 500, 499)],
)
def test_centre_index(length, exact, kipoi):
    assert centre_index(length, "exact") == exact
    assert centre_index(length, "kipoi") == kipoi


@given(st.integers(1, 5000), st.integers(0, 10**8))
def test_variant_base_sits_at_documented_index(length, start):
    w = window_start(start, length)
    assert start - w == (length - 1) // 2
    assert 0 <= start - w < length


def test_kipoi_matches_predecessor_arithmetic():
    # kipoi-veff: 1-based closed window [POS - (L//2 - 1), POS + L//2 + L%2]
    for length in (100, 101):
        pos = 21541590
        w = window_start(pos - 1, length, "kipoi")
        assert w + 1 == pos - (length // 2 - 1)


def test_restricted_window_shift_and_choice():
    ivs = [Region("chr22", 21541389, 21541891)]
    # predecessor's fixture: POS 21541590, L=101 -> 1-based [21541541, 21541641] with kipoi centring
    r = restricted_window(ivs, 21541589, 101, "kipoi")
    assert (r.start + 1, r.end) == (21541541, 21541641)
    ivs2 = [Region("chr22", 21541570, 21541891)]
    r2 = restricted_window(ivs2, 21541589, 101, "kipoi")
    assert (r2.start + 1, r2.end) == (21541571, 21541671)
    assert restricted_window([Region("c", 0, 50)], 10, 101) is None
    best = restricted_window([Region("c", 0, 120), Region("c", 40, 400)], 100, 101)
    assert best.start == 50  # the second interval needs no shift
