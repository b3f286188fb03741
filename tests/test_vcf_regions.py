"""-r/--regions and -R/--regions-file: the records bcftools view -r/-R keeps, with and without an index."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import E1, HG38

import veff
from veff.cli import main
from veff.errors import InputError, VeffWarning
from veff.io.vcf import VcfReader
from veff.io.vcf_regions import RegionSet, parse_region_text

DONOR = Path(__file__).resolve().parent.parent / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"
BCFTOOLS = shutil.which("bcftools")
needs_bcftools = pytest.mark.skipif(BCFTOOLS is None, reason="bcftools not installed")

SPECS = [
    "chr22:32068495-32068496",  # deletions starting at 32068494 reach into it
    "chr22:32068495",
    "chr22:32068496-32068500,chr22:32068490-32068495",  # out of order, adjacent: merged
    "chr22:1-32068494,chr22:32068494-32068497",  # overlapping
    "chr22",
    "chr22:32100000-",
    "chr22:1-100",  # nothing
]


@pytest.fixture(scope="module")
def e1(tmp_path_factory) -> tuple[Path, Path]:
    """E1 as plain VCF (no index) and as bgzipped VCF with a tabix index."""
    d = tmp_path_factory.mktemp("regions")
    plain = d / "e1.vcf"
    shutil.copy(E1, plain)
    gz = d / "e1.vcf.gz"
    import pysam

    pysam.tabix_compress(str(plain), str(gz))
    pysam.tabix_index(str(gz), preset="vcf")
    return plain, gz


def _ids(path: Path, select: RegionSet | None) -> list[tuple[str, int, str]]:
    reader = VcfReader(path, select=select)
    try:
        return [(v.chrom, v.pos, v.id) for v, _ in reader]
    finally:
        reader.close()


def _bcftools_ids(gz: Path, *args: str) -> list[tuple[str, int, str]]:
    out = subprocess.run(
        [BCFTOOLS, "view", "-H", *args, str(gz)], check=True, capture_output=True, text=True
    ).stdout  # type: ignore[list-item]
    return [(f[0], int(f[1]), f[2]) for f in (line.split("\t") for line in out.splitlines())]


def test_region_text():
    assert parse_region_text("chr1:100-200,2,chrM:5,chrX:10-") == [
        ("chr1", 100, 200),
        ("2", 1, None),
        ("chrM", 5, 5),
        ("chrX", 10, None),
    ]
    assert parse_region_text("{HLA-A*01:01}:1-100") == [("HLA-A*01:01", 1, 100)]
    for bad, what in [
        ("chr1:200-100", "START <= END"),
        ("chr1:0-5", "START <= END"),
        ("chr1:a-b", "is not CHROM"),
        ("chr1:-5", "is not CHROM"),
        (",", "no region"),
    ]:
        with pytest.raises(InputError, match=what):
            parse_region_text(bad)


def test_merging_and_overlap():
    sel = RegionSet([("c", 10, 20), ("c", 21, 30), ("c", 15, 18), ("c", 50, None), ("d", 5, 5)])
    assert sel.contigs == {"c": [(10, 30), (50, None)], "d": [(5, 5)]}
    assert sel.overlaps("c", 5, 10) and sel.overlaps("c", 30, 40) and sel.overlaps("c", 10**9, 10**9)
    assert not sel.overlaps("c", 31, 49) and not sel.overlaps("c", 1, 9) and not sel.overlaps("e", 1, 99)
    assert sel.queries(["d", "x"]) == [("d", 5, 5), ("c", 10, 30), ("c", 50, None)]


@needs_bcftools
@pytest.mark.parametrize("spec", SPECS)
def test_regions_keep_what_bcftools_keeps_with_and_without_an_index(e1, spec):
    plain, gz = e1
    want = _bcftools_ids(gz, "-r", spec)
    sel = RegionSet.from_options(spec)
    assert _ids(gz, sel) == want  # through the tabix index
    assert _ids(plain, sel) == want  # streaming filter
    if spec != "chr22:1-100":
        assert want


@needs_bcftools
def test_regions_files_bed_and_1_based(e1, tmp_path):
    plain, gz = e1
    bed = tmp_path / "r.bed"
    bed.write_text("# comment\nchr22\t32068494\t32068495\nchr22\t32081970\t32081972\n")
    tsv = tmp_path / "r.tsv"
    tsv.write_text("chr22\t32068495\t32068495\nchr22\t32081971\t32081972\n")
    two = tmp_path / "two.tsv"  # the first line has two columns: every line is CHROM POS (bcftools)
    two.write_text("chr22\t32068495\nchr22\t32081971\t32081972\n")
    for f in (bed, tsv, two):
        want = _bcftools_ids(gz, "-R", str(f))
        assert len(want) > 4
        sel = RegionSet.from_options(regions_file=f)
        assert _ids(gz, sel) == want
        assert _ids(plain, sel) == want
    assert _ids(plain, RegionSet.from_options(regions_file=bed)) == _ids(
        plain, RegionSet.from_options(regions_file=tsv)
    )
    bad = tmp_path / "bad.bed"
    bad.write_text("chr22\t10\n")
    with pytest.raises(InputError, match=r"bad.bed:1: expected tab-separated CHROM START END \(BED"):
        RegionSet.from_options(regions_file=bad)
    with pytest.raises(InputError, match="not both"):
        RegionSet.from_options("chr22", bed)


def test_a_region_contig_without_records_warns_through_the_index(e1):
    _, gz = e1
    with pytest.warns(VeffWarning, match="no records on region contig 'chr1'"):
        assert _ids(gz, RegionSet.from_options("chr1,chr22:32068494")) == _ids(
            gz, RegionSet.from_options("chr22:32068494")
        )


@needs_bcftools
def test_scoring_with_regions_writes_only_those_records_with_the_full_runs_scores(e1, tmp_path):
    plain, gz = e1
    spec = "chr22:32068495-32068496,chr22:32081972-32083072"
    full = tmp_path / "full.vcf"
    veff.score_variants(DONOR, plain, HG38, full, scores=("diff",))
    kept = set(_bcftools_ids(gz, "-r", spec))
    full_lines = {
        tuple(line.split("\t")[:3]): line
        for line in full.read_text().splitlines()
        if not line.startswith("#")
    }
    want = [line for key, line in full_lines.items() if (key[0], int(key[1]), key[2]) in kept]
    for source in (plain, gz):
        out = tmp_path / f"sel_{source.name}.vcf"
        res = CliRunner().invoke(
            main,
            ["score-variants", str(DONOR), "--vcf", str(source), "--fasta", str(HG38), "-o", str(out),
             "--scores", "diff", "-q", "-r", spec],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        got = [line for line in out.read_text().splitlines() if not line.startswith("#")]
        assert got == want
        assert "--regions chr22:32068495-32068496,chr22:32081972-32083072" in out.read_text()


def test_cli_rejects_bad_region_text(tmp_path):
    res = CliRunner().invoke(
        main,
        ["score-variants", str(DONOR), "--vcf", str(E1), "--fasta", str(HG38), "-o",
         str(tmp_path / "o.vcf"), "-r", "chr22:9-1"],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "veff: error: --regions: 'chr22:9-1': expected 1 <= START <= END" in res.output
    assert not (tmp_path / "o.vcf").exists()
