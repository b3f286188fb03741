"""Inputs that once gave silent wrong answers or tracebacks: each is now a status, a warning or an error.

Real files throughout: the test genome of conftest (chr1 600 bp, 2, chrM), the example hg38/hg19
slices and the example donor CNN.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import CHR1, E1, EXAMPLE, HG19, HG38, VCF_HEADER, base, other, write_fasta, write_vcf
from test_cli_errors import fails_with
from toy_models import GCModel, TwoOutputModel

import veff
from veff.errors import InputError
from veff.io.bed import read_regions
from veff.io.fasta import Fasta
from veff.models import CallableModel
from veff.writers.read import read_scores

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"


def _statuses(path: Path, tag: str) -> list[str]:
    out = subprocess.run(
        ["bcftools", "query", "-f", f"%ID %INFO/{tag}\\n", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


# -- --restriction-bed that is not BED ------------------------------------------------------------


def _score_args(out: Path, *extra: str, fasta: Path = HG38) -> list[str]:
    return [
        "score-variants",
        str(TORCH_MODEL),
        "--vcf",
        str(E1),
        "--fasta",
        str(fasta),
        "-o",
        str(out),
        *extra,
    ]


def test_vcf_given_as_restriction_bed(tmp_path):
    out = tmp_path / "o.vcf"
    fails_with(_score_args(out, "--restriction-bed", str(E1)), f"{E1}:1: a VCF, not a BED file")
    assert not out.exists()


def test_space_separated_bed_names_the_line(tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("# regions\nchr22\t32000000\t32100000\nchr22 32100000 32200000\n")
    fails_with(
        _score_args(tmp_path / "o.vcf", "--restriction-bed", str(bed)),
        f"{bed}:3: columns separated by spaces, not tabs",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chr1\tten\t20\n", ":1: start 'ten' is not a whole number"),
        ("track name=x\nchr1\t10\n", ":2: fewer than 3 columns"),
        ("chr1\t30\t20\n", ":1: expected 0 <= start <= end, got 30-20"),
    ],
)
def test_bad_bed_lines(tmp_path, text, message):
    bed = tmp_path / "r.bed"
    bed.write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        read_regions(bed)


def test_bed_reading_keeps_name_and_strand_and_reads_gzip(tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("browser position chr1\n\nchr1\t10\t20\tgeneA\t0\t-\nchr2\t5\t9\n")
    subprocess.run(["bgzip", "-k", str(bed)], check=True)
    for path in (bed, tmp_path / "r.bed.gz"):
        regions = read_regions(path)
        assert [(r.chrom, r.start, r.end, r.strand, r.name) for r in regions] == [
            ("chr1", 10, 20, "-", "geneA"),
            ("chr2", 5, 9, ".", ""),
        ]


# -- labels a VCF cannot hold ----------------------------------------------------------------------


class _OddLabels(TwoOutputModel):
    output_labels = ('DNase|K562 "rep 1"', "H3K27ac,x;y=z\nnext")


def test_labels_are_made_safe_for_the_vcf_and_kept_in_the_table(tmp_path, genome):
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 100, "v1", base("chr1", 100), other(base("chr1", 100)))])
    out, table = tmp_path / "o.vcf", tmp_path / "o.tsv"
    model = CallableModel(_OddLabels(), name="odd")
    with pytest.warns(veff.VeffWarning, match="2 output labels hold characters") as seen:
        veff.score_variants(model, vcf, genome, out, table=table)
    assert len([w for w in seen if issubclass(w.category, veff.VeffWarning)]) == 1
    text = out.read_text()
    assert "Format: ALLELE|DNase_K562_rep_1_|H3K27ac_x_y_z_next" in text
    subprocess.run(["bcftools", "view", "-h", str(out)], check=True, capture_output=True)
    entry = _statuses(out, "VEFF_odd_DIFF")[0].split()[1]
    assert entry.startswith(f"{other(base('chr1', 100))}|") and entry.count("|") == 2
    tab = pd.read_csv(table, sep="\t")
    assert list(tab.columns[-2:]) == ['diff/DNase|K562 "rep 1"', "diff/H3K27ac,x;y=z next"]
    parquet = tmp_path / "o.parquet"
    with pytest.warns(veff.VeffWarning):
        veff.score_variants(model, vcf, genome, tmp_path / "o2.vcf", table=parquet)
    assert list(pd.read_parquet(parquet).columns[-2:]) == [f"diff/{lab}" for lab in _OddLabels.output_labels]


# -- a VCF of another reference build ---------------------------------------------------------------


def test_no_contig_of_the_vcf_in_the_fasta_is_an_error_before_any_work(tmp_path):
    line = fails_with(
        _score_args(tmp_path / "o.vcf", fasta=HG19),
        "none of its contigs (chr22",
        "is in the FASTA",
        "chr17",
    )
    assert "reference build" in line
    assert not (tmp_path / "o.vcf").exists()


def test_no_contig_found_in_a_vcf_without_contig_lines(tmp_path, genome):
    """No ##contig lines and every record on a contig the FASTA lacks: the same error, nothing written."""
    header = "".join(x + "\n" for x in VCF_HEADER.splitlines() if not x.startswith("##contig"))
    rows = [("chrX", 10 + k, f"x{k}", "A", "C") for k in range(5)]
    vcf = write_vcf(tmp_path / "in.vcf", rows, header=header)
    out = tmp_path / "o.vcf"
    with pytest.raises(InputError, match=r"none of its contigs \(chrX\) is in the FASTA"):
        veff.score_variants(CallableModel(GCModel(), name="gc"), vcf, genome, out)
    assert not out.exists()


def test_some_contigs_missing_give_statuses_and_one_warning(tmp_path, genome):
    rows = [("chr1", 100, "a", base("chr1", 100), other(base("chr1", 100)))]
    rows += [("chrUn", 5 + k, f"u{k}", "A", "C,G") for k in range(3)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "o.vcf"
    with pytest.warns(veff.VeffWarning) as seen:
        summary = veff.score_variants(CallableModel(GCModel(), name="gc"), vcf, genome, out)
    ours = [str(w.message) for w in seen if issubclass(w.category, veff.VeffWarning)]
    assert ours == [
        f"6 ALT alleles (3 records, status unknown_contig) on contigs chrUn (3) are not scored: the FASTA "
        f"{genome} has no such contig"
    ]
    assert summary.statuses == {"ok": 1, "unknown_contig": 6}
    assert _statuses(out, "VEFF_gc_STATUS")[1:] == [
        f"u{k} C|unknown_contig,G|unknown_contig" for k in range(3)
    ]


# -- a stale .fai / .gzi ------------------------------------------------------------------------------


def _score_lines(out: Path) -> list[str]:
    return [x for x in out.read_text().splitlines() if not x.startswith("##veff_command")]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "bgzf"])
def test_index_of_another_fasta_is_rebuilt(tmp_path, genome, gz):
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", p, f"v{p}", base("chr1", p), "T") for p in (50, 300, 590)])
    good = tmp_path / "good.vcf"
    veff.score_variants(CallableModel(GCModel(), name="gc"), vcf, genome, good)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    fa = other_dir / "genome.fa"
    shutil.copy(genome, fa)
    if gz:
        subprocess.run(["bgzip", str(fa)], check=True)
        fa = other_dir / "genome.fa.gz"
    wrong = write_fasta(
        tmp_path / "wrong.fa", {"chr1": CHR1[:250] + "ACGT" * 30 + CHR1[250:], "2": "ACGT" * 20}
    )
    wrong_gz = None
    if gz:
        subprocess.run(["bgzip", "-k", str(wrong)], check=True)
        wrong_gz = Path(f"{wrong}.gz")
        Fasta(wrong_gz).close()
        shutil.copy(f"{wrong_gz}.fai", f"{fa}.fai")
        shutil.copy(f"{wrong_gz}.gzi", f"{fa}.gzi")
    else:
        Fasta(wrong).close()
        shutil.copy(f"{wrong}.fai", f"{fa}.fai")
    before = Path(f"{fa}.fai").read_text()
    out = tmp_path / "o.vcf"
    veff.score_variants(CallableModel(GCModel(), name="gc"), vcf, fa, out)
    assert Path(f"{fa}.fai").read_text() != before  # rebuilt, and now right
    assert _score_lines(out) == _score_lines(good)
    assert all(s.endswith("|ok") for s in _statuses(out, "VEFF_gc_STATUS"))


def test_index_older_than_the_fasta_is_rebuilt(tmp_path, genome):
    Fasta(genome).close()
    fai = Path(f"{genome}.fai")
    fai.write_text("chr1\t600\t6\t60\t61\n")  # the FASTA gained contigs since
    old = fai.stat().st_mtime - 100
    os.utime(fai, (old, old))
    with Fasta(genome) if hasattr(Fasta, "__enter__") else _closing(Fasta(genome)) as fa:
        assert set(fa.lengths) == {"chr1", "2", "chrM"}


class _closing:
    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        return self.obj

    def __exit__(self, *exc):
        self.obj.close()


def test_stale_index_in_a_read_only_folder_is_an_error(tmp_path, genome, monkeypatch):
    Fasta(genome).close()
    Path(f"{genome}.fai").write_text("chr1\t640\t6\t60\t61\n2\t300\t664\t60\t61\nchrM\t50\t977\t60\t61\n")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(
        InputError,
        match=r"genome.fa.fai does not fit the file \(contig chr1: its sequence is not 640 bases long\)",
    ):
        Fasta(genome)


# -- positions past the contig end, lower-case alleles ------------------------------------------------


def test_position_past_the_contig_end_is_beyond_contig(tmp_path, genome):
    rows = [
        ("chr1", 600, "last", base("chr1", 600), other(base("chr1", 600))),
        ("chr1", 601, "past", "A", "C"),
        ("chr1", 599, "overhang", base("chr1", 599) + base("chr1", 600) + "A", "C"),
        ("chrM", 5000, "far", "G", "A,<DEL>"),
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "o.vcf"
    summary = veff.score_variants(CallableModel(GCModel(), name="gc"), vcf, genome, out)
    assert _statuses(out, "VEFF_gc_STATUS") == [
        f"last {other(base('chr1', 600))}|contig_edge",
        "past C|beyond_contig",
        "overhang C|beyond_contig",
        "far A|beyond_contig,<DEL>|unsupported_allele",
    ]
    assert summary.statuses["beyond_contig"] == 3 and "ref_mismatch" not in summary.statuses


def test_lower_case_alleles_score_as_upper_case(tmp_path, genome):
    pos = [100, 101, 150]
    upper = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in pos]
    upper.append(("chr1", 300, "del", base("chr1", 300) + base("chr1", 301), base("chr1", 300)))
    lower = [(c, p, i, r.lower(), a.lower()) for c, p, i, r, a in upper]
    res = {}
    for name, rows in (("upper", upper), ("lower", lower)):
        vcf = write_vcf(tmp_path / f"{name}.vcf", rows)
        out = tmp_path / f"{name}.tsv"
        veff.score_variants(CallableModel(TwoOutputModel(), name="m"), vcf, genome, table=out)
        res[name] = pd.read_csv(out, sep="\t")
    assert (res["lower"]["status"] == "ok").all()
    value_cols = [c for c in res["upper"].columns if c.startswith("diff")]
    np.testing.assert_array_equal(res["lower"][value_cols].to_numpy(), res["upper"][value_cols].to_numpy())
    lines = (tmp_path / "lower.vcf").read_text().splitlines()
    assert lines[-1].split("\t")[3:5] == [lower[-1][3], lower[-1][4]]  # the VCF's own columns untouched


# -- NaN / inf model outputs ------------------------------------------------------------------------------


class _NanOnT:
    """GC fraction, but NaN when the centre base is T and inf when it is A with a C after it."""

    input_layout = "L,4"
    output_labels = ("gc",)
    seq_len = 11

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = x[:, :, 1:3].sum(axis=(1, 2))[:, None] / x.shape[1]
        out[x[:, 5, 3] == 1] = np.nan
        out[(x[:, 5, 0] == 1) & (x[:, 6, 1] == 1)] = np.inf
        return out


def test_nonfinite_outputs_get_their_status_and_one_warning(tmp_path, genome):
    seq = CHR1.upper()
    rows, expect = [], []
    for p in range(20, 200):
        ref, after = seq[p - 1], seq[p]
        if ref == "T" or (ref == "A" and after == "C"):  # the reference itself would be NaN / inf
            continue
        alt = "T" if p % 3 == 0 else other(ref)
        rows.append(("chr1", p, f"v{p}", ref, alt))
        expect.append("nonfinite" if alt == "T" or (alt == "A" and after == "C") else "ok")
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out, table = tmp_path / "o.vcf", tmp_path / "o.tsv"
    with pytest.warns(veff.VeffWarning, match=f"{expect.count('nonfinite')} ALT alleles got NaN or infinite"):
        summary = veff.score_variants(CallableModel(_NanOnT(), name="nan"), vcf, genome, out, table=table)
    assert [s.split("|")[1] for s in _statuses(out, "VEFF_nan_STATUS")] == expect
    assert summary.scored == expect.count("ok") and summary.statuses["nonfinite"] == expect.count("nonfinite")
    tab = read_scores(table)
    assert list(tab["status"]) == expect
    assert 0 < expect.count("nonfinite") < len(expect)
