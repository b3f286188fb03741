from __future__ import annotations

import subprocess

import pytest
from helpers import DATA, E1, write_vcf

from veff.errors import InputError
from veff.io.vcf import VcfReader


def test_streams_records_with_one_based_pos():
    recs = list(VcfReader(E1))
    assert len(recs) == 45
    v, rec = recs[1]
    assert (v.chrom, v.pos, v.ref, v.alts, v.id) == (
        "chr22",
        32068494,
        "A",
        ("C", "G", "T"),
        "SLC5A1_exon_start_-1",
    )
    assert v.start == 32068493
    data_lines = [x for x in E1.read_bytes().splitlines(keepends=True) if not x.startswith(b"#")]
    assert rec == data_lines[1]  # text input: the record's line, byte for byte


def test_bgzipped_and_bcf(tmp_path):
    import pysam

    plain = write_vcf(tmp_path / "a.vcf", [("chr1", 10, "x", "A", "C"), ("2", 5, "y", "G", "T")])
    pysam.tabix_compress(str(plain), str(tmp_path / "a.vcf.gz"))
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(tmp_path / "a.bcf"), str(plain)], check=True)
    for path in (plain, tmp_path / "a.vcf.gz", tmp_path / "a.bcf"):
        assert [v.id for v, _ in VcfReader(path)] == ["x", "y"]


def test_missing_file_and_garbage(tmp_path):
    with pytest.raises(InputError, match="not found"):
        VcfReader(tmp_path / "nope.vcf")
    bad = tmp_path / "bad.vcf"
    bad.write_text("this is not a vcf\n")
    with pytest.raises(InputError, match=r"bad\.vcf"):
        list(VcfReader(bad))


def test_cyvcf2_alternative_allele_representations():
    variants = [v for v, _ in VcfReader(DATA / "format_edge_cases" / "cyvcf2_test-alt-repr.vcf")]
    assert variants
    assert all(isinstance(v.alts, tuple) for v in variants)
