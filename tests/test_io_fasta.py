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


@pytest.fixture
def long_contig(tmp_path, monkeypatch):
    """A 5,000-base contig (soft-masked stretches, lines of 60) read in 256-base blocks."""
    import veff.io.fasta as fasta_mod

    monkeypatch.setattr(fasta_mod, "BLOCK_SHIFT", 8)
    monkeypatch.setattr(fasta_mod, "WHOLE_AFTER_BLOCKS", 4)
    rng = np.random.default_rng(7)
    seq = "".join(rng.choice(list("ACGTacgtN"), size=5000))
    path = tmp_path / "long.fa"
    path.write_text(">c\n" + "\n".join(seq[i : i + 60] for i in range(0, 5000, 60)) + "\n")
    return path, np.frombuffer(seq.upper().encode(), dtype=np.uint8)


def _reads(contig):
    """Wrap a Contig's reader: the (start, end) of every read from the file."""
    calls = []
    read = contig._read

    def counted(start, end):
        calls.append((start, end))
        return read(start, end)

    contig._read = counted
    return calls


def test_contig_reads_only_the_blocks_it_is_asked_for(long_contig):
    path, expected = long_contig
    contig = Fasta(path).contig("c")
    calls = _reads(contig)
    assert len(contig) == 5000
    np.testing.assert_array_equal(contig[300:310], expected[300:310])
    assert int(contig[4999]) == expected[4999] and int(contig[-1]) == expected[-1]
    grid = np.array([[3000, 3001], [259, 300]])
    np.testing.assert_array_equal(contig[grid], expected[grid])
    assert calls == [(256, 512), (4864, 5000), (2816, 3072)]  # three blocks, each read once
    np.testing.assert_array_equal(contig[200:300], expected[200:300])  # across blocks 0 and 1
    assert calls[3:] == [(0, 256)]


@pytest.mark.parametrize(
    "key",
    [
        slice(0, 5000),
        slice(-10, None),
        slice(4990, 6000),
        slice(100, 50),
        slice(10, 900, 3),
        7,
        -5000,
        np.int64(4095),
        np.array([], dtype=np.int64),
        np.array([0, 4999, -1, 2048]),
        np.arange(0, 5000, 7).reshape(-1, 1),
        np.array([255, 256]),
    ],
)
def test_contig_indexes_like_the_whole_array(long_contig, key):
    path, expected = long_contig
    got = Fasta(path).contig("c")[key]
    np.testing.assert_array_equal(np.asarray(got), expected[key])


def test_contig_read_from_many_blocks_is_read_whole(long_contig):
    path, expected = long_contig
    contig = Fasta(path).contig("c")
    calls = _reads(contig)
    for start in (0, 1000, 2000, 3000):  # four blocks: the limit
        contig[start : start + 10]
    np.testing.assert_array_equal(contig[4000:4010], expected[4000:4010])  # a fifth: all of it
    assert calls[-1] == (0, 5000) and len(calls) == 5
    np.testing.assert_array_equal(np.asarray(contig), expected)
    assert len(calls) == 5


@pytest.mark.parametrize("bad", [5000, -5001, np.array([1, 5000])])
def test_contig_positions_past_the_end_raise_index_error(long_contig, bad):
    path, _ = long_contig
    with pytest.raises(IndexError):
        Fasta(path).contig("c")[bad]


def test_windows_read_in_blocks_equal_whole_contig_windows(long_contig):
    path, expected = long_contig
    starts = np.array([-3, 0, 250, 1020, 4990])
    got = Fasta(path).fetch_many("c", starts, 20)
    for row, s in zip(got, starts, strict=True):
        want = "".join(chr(expected[p]) if 0 <= p < 5000 else "N" for p in range(s, s + 20))
        assert codes_to_str(row) == want


def test_neighbouring_blocks_are_read_once_for_every_request_within_them(long_contig):
    path, expected = long_contig
    contig = Fasta(path).contig("c")
    calls = _reads(contig)
    for lo in (300, 400, 500, 700):  # blocks 1-3, as the windows of a sorted chunk fall
        idx = lo + np.arange(40)[None, :] + np.array([[0], [30]])
        np.testing.assert_array_equal(contig[idx], expected[idx])
    np.testing.assert_array_equal(contig[260:780], expected[260:780])
    assert sorted(calls) == [(256, 512), (512, 768), (768, 1024)]
