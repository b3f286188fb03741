from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import CHR1, HG19, HG38, write_fasta

from veff.errors import InputError
from veff.io.fasta import Fasta, match_contig
from veff.variants.sequences import codes_to_str


def test_fetch_upper_cases_soft_masked_bases(genome):
    fa = Fasta(genome)
    assert codes_to_str(fa.fetch("chr1", 195, 235)) == CHR1[195:235].upper()
    assert CHR1[200:230].islower()


def test_missing_index_is_built(genome):
    assert not (genome.parent / "genome.fa.fai").exists()
    Fasta(genome)
    assert (genome.parent / "genome.fa.fai").exists()


def test_unwritable_folder_without_index_names_the_fix(tmp_path, monkeypatch):
    fa = write_fasta(tmp_path / "g.fa")
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # also holds when tests run as root
    with pytest.raises(InputError, match="samtools faidx"):
        Fasta(fa)
    assert not (tmp_path / "g.fa.fai").exists()


def test_plain_gzip_is_rejected_with_advice(tmp_path):
    import gzip

    path = tmp_path / "g.fa.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(">c\nACGT\n")
    with pytest.raises(InputError, match="not BGZF"):
        Fasta(path)


def test_positions_outside_contig_read_as_n(genome):
    fa = Fasta(genome)
    got = codes_to_str(fa.fetch("chrM", -3, 4))
    assert got == "NNN" + fa_str(genome, "chrM")[:4]
    assert codes_to_str(fa.fetch("chrM", 48, 53)) == fa_str(genome, "chrM")[48:] + "NNN"


def fa_str(path, name):
    return codes_to_str(Fasta(path).contig(name))


def test_fetch_many_matches_single_fetches(genome):
    fa = Fasta(genome)
    starts = np.array([-5, 0, 100, 590])
    many = fa.fetch_many("chr1", starts, 20)
    for row, s in zip(many, starts, strict=True):
        np.testing.assert_array_equal(row, fa.fetch("chr1", int(s), int(s) + 20))


@pytest.mark.parametrize(
    ("name", "pool", "expected"),
    [
        ("17", ["chr17"], "chr17"),
        ("chr2", ["2"], "2"),
        ("chrM", ["MT"], "MT"),
        ("MT", ["chrM"], "chrM"),
        ("chrX", ["chr1"], None),
        ("chr1", ["chr1", "1"], "chr1"),
    ],
)
def test_contig_names_match_with_or_without_chr(name, pool, expected):
    assert match_contig(name, pool) == expected


def test_bgzipped_example_reference_reads_true_coordinates():
    fa = Fasta(HG38)
    assert fa.lengths["chr22"] == 32_300_000
    assert set(codes_to_str(fa.fetch("chr22", 0, 100))) == {"N"}
    assert set(codes_to_str(fa.fetch("chr22", 32_100_000, 32_100_050))) <= set("ACGT")
    assert Fasta(HG19).resolve("17") == "chr17"
