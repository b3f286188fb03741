from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from veff.types import Status
from veff.variants.sequences import (
    allele_status,
    normalize_allele,
    one_hot,
    reverse_complement,
    reverse_complement_codes,
    str_to_codes,
)

dna = st.text(alphabet="ACGTN", min_size=1, max_size=60)


@given(dna)
def test_reverse_complement_twice_is_identity(seq):
    codes = str_to_codes(seq)
    np.testing.assert_array_equal(reverse_complement_codes(reverse_complement_codes(codes)), codes)
    x = one_hot(codes[None])
    np.testing.assert_array_equal(reverse_complement(reverse_complement(x)), x)


@given(dna)
def test_one_hot_rc_equals_rc_of_codes(seq):
    codes = str_to_codes(seq)[None]
    np.testing.assert_array_equal(
        reverse_complement(one_hot(codes)), one_hot(reverse_complement_codes(codes))
    )


def test_one_hot_encoding_and_n_value():
    x = one_hot(str_to_codes("ACGTNa")[None])
    assert x.shape == (1, 6, 4) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, :4], np.eye(4))
    assert x[0, 4].sum() == 0
    np.testing.assert_array_equal(x[0, 5], [1, 0, 0, 0])
    assert one_hot(str_to_codes("N")[None], n_value=0.25)[0, 0].tolist() == [0.25] * 4


@pytest.mark.parametrize(
    ("alt", "status"),
    [
        ("<DEL>", Status.UNSUPPORTED_ALLELE),
        ("*", Status.UNSUPPORTED_ALLELE),
        ("A[chr1:5[", Status.UNSUPPORTED_ALLELE),
        ("R", Status.UNSUPPORTED_ALLELE),
        ("ACG", None),
        ("T", None),
    ],
)
def test_allele_status(alt, status):
    assert allele_status("A", alt) is status


def test_equivalent_deletions_in_homopolymer_normalise_identically():
    genome = str_to_codes("GCTAAAAAAGC")
    forms = [(2, "TA", "T"), (3, "AA", "A"), (6, "AA", "A"), (7, "AAG", "AG")]
    assert {normalize_allele(genome, *f) for f in forms} == {(2, "TA", "T")}


def test_equivalent_insertions_in_dinucleotide_repeat_normalise_identically():
    genome = str_to_codes("TTGCACACACATT")
    forms = [
        (2, "G", "GCA"),
        (3, "C", "CAC"),
        (4, "A", "ACA"),
        (8, "A", "ACA"),
        (10, "A", "ACA"),
        (3, "CA", "CACA"),
    ]
    assert {normalize_allele(genome, *f) for f in forms} == {(2, "G", "GCA")}


def test_mnv_trimmed_to_snv():
    genome = str_to_codes("AACGTT")
    assert normalize_allele(genome, 1, "ACG", "ATG") == (2, "C", "T")
