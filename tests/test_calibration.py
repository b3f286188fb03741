"""Calibrated scores: random SNV backgrounds, quantile grids, percentiles, refusals, null models."""

from __future__ import annotations

import gzip
import itertools
import logging
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import other, write_fasta
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import veff
from veff.calibrate import _write_vcf
from veff.cli.main import main
from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.models import CallableModel, InputLayout
from veff.scoring.calibration import percentile, quantile_grid
from veff.scoring.nulls import null_statistics
from veff.types import Region
from veff.variants.background import random_snvs
from veff.variants.shuffle import dinuc_shuffle, null_windows, parse_null
from veff.writers.calibration import read_calibration

L = 41
_rng = np.random.default_rng(11)
BIG = "".join(_rng.choice(list("ACGT"), 30_000))
SMALL = "N" * 40 + "".join(_rng.choice(list("ACGT"), 3_000)) + "N" * 40
MOTIF = "GATTACAGAT"


class MotifModel:
    """Two outputs: log-sum-exp over positions of two fixed random 5-mer PWM matches (continuous scores)."""

    input_layout = "L,4"
    output_labels = ("pwm1", "pwm2")

    def __init__(self, seed: int = 0, scale: float = 1.0) -> None:
        self.w = np.random.default_rng(seed).normal(size=(2, 5, 4)).astype(np.float32) * scale
        self.seen = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.seen += len(x)
        n, length, _ = x.shape
        out = np.zeros((n, 2), np.float32)
        for t in range(2):
            conv = sum(x[:, k : length - 4 + k] @ self.w[t, k] for k in range(5))
            out[:, t] = np.log(np.exp(conv).sum(axis=1))
        return out


class TataModel:
    """1 where the window contains MOTIF, else 0: a motif detector (max over positions)."""

    input_layout = "L,4"
    output_labels = ("tata",)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        codes = np.frombuffer(b"ACGT", np.uint8)[x.argmax(-1)]
        codes[x.sum(-1) == 0] = ord("N")
        found = [MOTIF.encode() in row.tobytes() for row in codes]
        return np.array(found, np.float32)[:, None]


def wrap(fn, name: str = "motif", length: int = L) -> CallableModel:
    return CallableModel(fn, name=name, seq_length=length, layout=InputLayout.parse("L,4"))


@pytest.fixture
def ref(tmp_path: Path) -> Path:
    return write_fasta(tmp_path / "ref.fa", {"chrA": BIG, "chrB": SMALL})


def snv_vcf(path: Path, fasta: Path, n: int, seed: int) -> Path:
    fa = Fasta(fasta)
    try:
        return _write_vcf(path, random_snvs(fa, n, seed=seed), fa)
    finally:
        fa.close()


# ---- the math ------------------------------------------------------------------------------


def test_percentile_interpolates_ties_mid_rank_and_clips() -> None:
    grid = quantile_grid(np.arange(101.0), 101)
    got = percentile(grid, np.array([-5.0, 0.0, 10.0, 10.25, 100.0, 1e9, np.nan]))
    np.testing.assert_allclose(got[:6], [0.0, 0.0, 10.0, 10.25, 100.0, 100.0], atol=1e-4)
    assert np.isnan(got[6])
    # half the background is exactly 0: a 0 sits at the middle of that mass, not at its top
    tied = quantile_grid(np.r_[np.zeros(500), np.arange(1, 501.0)], 1001)
    assert abs(float(percentile(tied, np.array([0.0]))[0]) - 25.0) < 0.1


def test_null_statistics_plus_one_rule_and_ties() -> None:
    null = np.array([[[0.1], [0.2], [-0.5], [0.05]]])  # (1 ALT, 4 nulls, 1 output)
    z, p = null_statistics(np.array([[0.3]]), null)
    assert p[0, 0] == pytest.approx((1 + 1) / 5)  # only |-0.5| >= 0.3
    assert z[0, 0] == pytest.approx((0.3 - null.mean()) / null.std(ddof=1), rel=1e-5)
    z, p = null_statistics(np.zeros((1, 1)), np.zeros((1, 9, 1)))
    assert p[0, 0] == 1.0 and np.isnan(z[0, 0])  # every null ties with the observation


def test_parse_null() -> None:
    assert parse_null("dinuc-shuffle:20") == 20
    for bad in ("dinuc-shuffle:0", "shuffle:10", "dinuc-shuffle"):
        with pytest.raises(InputError, match="dinuc-shuffle:N"):
            parse_null(bad)


# ---- the shuffle ---------------------------------------------------------------------------


def _pairs(seq: bytes) -> Counter[bytes]:
    return Counter(seq[i : i + 2] for i in range(len(seq) - 1))


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ACGTN", min_size=0, max_size=120), st.integers(0, 2**32 - 1))
def test_dinuc_shuffle_preserves_dinucleotides_exactly(seq: str, seed: int) -> None:
    codes = np.frombuffer(seq.encode(), np.uint8)
    out = dinuc_shuffle(np.stack([codes] * 3) if seq else codes, np.random.default_rng(seed))
    for row in np.atleast_2d(out):
        text = row.tobytes()
        assert _pairs(text) == _pairs(seq.encode())
        assert text[:1] == seq.encode()[:1] and text[-1:] == seq.encode()[-1:]


def test_dinuc_shuffle_is_uniform_over_sequences_with_the_same_dinucleotides() -> None:
    seq = b"ACAGTCATGA"
    inner = (bytes(p) for p in itertools.product(b"ACGT", repeat=len(seq) - 2))
    valid = {s for s in (seq[:1] + p + seq[-1:] for p in inner) if _pairs(s) == _pairs(seq)}
    assert len(valid) > 3
    draws = dinuc_shuffle(np.tile(np.frombuffer(seq, np.uint8), (6000, 1)), np.random.default_rng(3))
    seen = Counter(row.tobytes() for row in draws)
    assert set(seen) == valid
    assert stats.chisquare([seen[v] for v in sorted(valid)]).pvalue > 1e-3


@pytest.mark.parametrize(("off", "r", "a"), [(20, 1, 1), (20, 3, 1), (20, 1, 4)])
def test_null_windows_keep_core_and_window_dinucleotides(off: int, r: int, a: int) -> None:
    rng = np.random.default_rng(5)
    genome = rng.choice(np.frombuffer(b"ACGT", np.uint8), 200)
    ref = genome[:L]
    allele = rng.choice(np.frombuffer(b"ACGT", np.uint8), a)
    alt = np.concatenate([genome[:off], allele, genome[off + r :]])[:L]
    nref, nalt = null_windows(ref[None], alt[None], np.array([[off, r, a]]), ["k"], 25, seed=1, core=5)
    c0, c1 = off - 2, off + r + 2
    extra = max(r - a, 0)  # a deletion's alt window reads bases past the window; they are shuffled too
    flanks = np.concatenate([ref[:c0], genome[c1 : L + extra]]).tobytes()
    for row_r, row_a in zip(nref, nalt, strict=True):
        # the flanks, joined, keep their dinucleotides
        joined = row_r[:c0].tobytes() + row_r[c1:].tobytes() + row_a[L - extra :].tobytes()
        assert _pairs(joined) == _pairs(flanks)
        assert np.array_equal(row_r[c0:c1], ref[c0:c1])
        assert np.array_equal(row_a[:off], row_r[:off])
        assert np.array_equal(row_a[off : off + a], allele)
        assert np.array_equal(row_a[off + a : c1 - r + a], ref[off + r : c1])
    assert len({row.tobytes() for row in nref}) > 20  # the backgrounds differ
    again = null_windows(ref[None], alt[None], np.array([[off, r, a]]), ["k"], 25, seed=1, core=5)
    assert np.array_equal(again[0], nref) and np.array_equal(again[1], nalt)


# ---- random SNVs ---------------------------------------------------------------------------


def test_random_snvs_uniform_over_bases_and_reproducible(ref: Path) -> None:
    fa = Fasta(ref)
    snvs = random_snvs(fa, 2000, seed=4)
    assert snvs == random_snvs(fa, 2000, seed=4)
    assert len({(s.chrom, s.pos) for s in snvs}) == 2000
    genome = {"chrA": BIG, "chrB": SMALL}
    assert all(genome[s.chrom][s.pos - 1] == s.ref != s.alt and s.alt in "ACGT" for s in snvs)
    share = sum(s.chrom == "chrB" for s in snvs) / 2000  # chrB holds 3000 of 33000 bases
    assert abs(share - 3000 / 33000) < 0.03
    inside = random_snvs(fa, 50, seed=4, regions=[Region("chrA", 100, 200), Region("chrA", 150, 400)])
    assert all(s.chrom == "chrA" and 100 < s.pos <= 400 for s in inside)
    with pytest.raises(InputError, match="only 300 A/C/G/T bases inside the regions"):
        random_snvs(fa, 301, seed=4, regions=[Region("chrA", 100, 400)])
    fa.close()


# ---- calibration ---------------------------------------------------------------------------


def test_background_against_its_own_calibration_gives_uniform_percentiles(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    cal = veff.calibrate(model, ref, tmp_path / "m.calib.h5", random_snvs=20_000, seed=1, rc=False)
    assert cal.n_quantiles == 10_001 and cal.n_background == 20_000
    own = snv_vcf(tmp_path / "own.vcf", ref, 20_000, seed=1)  # the same draw as the calibration's
    # a fresh draw from the same distribution (small next to the calibration, whose own sampling
    # error the one-sample test does not allow for)
    other = snv_vcf(tmp_path / "other.vcf", ref, 1000, seed=2)
    for vcf in (own, other):
        table = tmp_path / f"{vcf.stem}.parquet"
        out = veff.score_variants(
            model, vcf, ref, rc=False, calibration=cal.path, return_predictions=True, table=table
        )
        for name in ("diff_pctl", "diff_spctl"):
            for label in ("pwm1", "pwm2"):
                pct = out[name][label].to_numpy() / 100
                assert stats.kstest(pct, "uniform").pvalue > 0.01, (vcf.name, name, label)
        # the percentile of the numeric tag's magnitude (largest |diff| over both outputs) too
        value_pctl = veff.read_scores(table)["diff_value_pctl"].to_numpy() / 100
        assert stats.kstest(value_pctl, "uniform").pvalue > 0.01, vcf.name
        # ... which the largest per-output percentile is not: it leans towards 100
        largest = out["diff_pctl"].max(axis=1).to_numpy() / 100
        assert stats.kstest(largest, "uniform").pvalue < 1e-6
    # the percentiles track the scores: larger |diff| -> larger percentile
    out = veff.score_variants(model, other, ref, rc=False, calibration=cal.path, return_predictions=True)
    assert stats.spearmanr(out["diff"]["pwm1"].abs(), out["diff_pctl"]["pwm1"]).statistic > 0.999


def test_percentiles_in_vcf_and_table_with_header_descriptions(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    cal = veff.calibrate(model, ref, tmp_path / "m.calib.h5", random_snvs=500, seed=1, rc=False)
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 40, seed=9)
    veff.score_variants(
        model, vcf, ref, tmp_path / "o.vcf", rc=False, calibration=cal.path, table=tmp_path / "o.parquet"
    )
    header = (tmp_path / "o.vcf").read_text()
    assert "percentile 0-100 of |diff| among 500 random SNVs (seed 1) of ref.fa; calibration m.calib.h5" in (
        header
    )
    from_vcf, from_table = veff.read_scores(tmp_path / "o.vcf"), veff.read_scores(tmp_path / "o.parquet")
    cols = [f"{s}/{lab}" for s in ("diff_pctl", "diff_spctl") for lab in ("pwm1", "pwm2")]
    assert set(cols) <= set(from_vcf.columns) and set(cols) <= set(from_table.columns)
    np.testing.assert_array_equal(from_vcf[cols].to_numpy(), from_table[cols].to_numpy())
    direct = cal.percentiles("diff", from_table[["diff/pwm1", "diff/pwm2"]].to_numpy(), ["pwm1", "pwm2"])[0]
    np.testing.assert_allclose(from_table[cols[:2]].to_numpy(), direct, atol=1e-5)


def test_percentile_of_the_numeric_tag_in_vcf_table_and_bcftools(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    cal = veff.calibrate(model, ref, tmp_path / "m.calib.h5", random_snvs=500, seed=1, rc=False)
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 40, seed=9)
    out = tmp_path / "o.vcf.gz"
    veff.score_variants(model, vcf, ref, out, rc=False, calibration=cal.path, table=tmp_path / "o.tsv")
    with gzip.open(out, "rt") as fh:
        header = [line for line in fh if line.startswith("##INFO=<ID=VEFF_motif_DIFF_VALUE_PCTL,")]
    assert header == [
        '##INFO=<ID=VEFF_motif_DIFF_VALUE_PCTL,Number=A,Type=Float,Description="Percentile 0-100 of '
        "|VEFF_motif_DIFF_VALUE| (the largest |diff| across the model outputs in this VCF) among the "
        "largest |diff| across the same outputs of 500 random SNVs (seed 1) of ref.fa; calibration "
        'm.calib.h5, per ALT">\n'
    ]
    from_vcf, from_table = veff.read_scores(out), veff.read_scores(tmp_path / "o.tsv")
    assert list(from_table.columns[-1:]) == ["diff_value_pctl"]
    np.testing.assert_array_equal(from_vcf["diff_value_pctl"], from_table["diff_value_pctl"])
    # the same number as the background's max-abs grid gives |_VALUE|, read back from the VCF
    value = np.maximum(from_vcf["diff/pwm1"].abs(), from_vcf["diff/pwm2"].abs()).to_numpy()
    direct = percentile(cal.max_abs_grid["diff"], value)
    np.testing.assert_allclose(from_vcf["diff_value_pctl"], direct, atol=1e-4)
    assert not np.allclose(direct, np.maximum(from_vcf["diff_pctl/pwm1"], from_vcf["diff_pctl/pwm2"]))
    long = veff.read_scores(tmp_path / "o.tsv", wide=False)
    rows = long[long.score == "diff_value_pctl"]
    assert len(rows) == len(from_table) and set(rows.label) == {""}
    if shutil.which("bcftools") is None:
        pytest.skip("bcftools not installed")
    key = "%CHROM:%POS:%REF:%ALT"
    res = subprocess.run(
        ["bcftools", "query", "-i", "INFO/VEFF_motif_DIFF_VALUE_PCTL>90", "-f", f"{key}\\n", str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    kept = res.stdout.split()
    expected = from_vcf.index[from_vcf["diff_value_pctl"] > 90].tolist()
    assert kept == expected and 0 < len(kept) < len(from_vcf)


def test_numeric_tag_percentile_follows_the_calibrated_outputs(
    ref: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = wrap(MotifModel())
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 30, seed=9)
    full = veff.calibrate(model, ref, tmp_path / "all.calib.h5", random_snvs=400, seed=1, rc=False)
    sub = veff.calibrate(
        model, ref, tmp_path / "sub.calib.h5", random_snvs=400, seed=1, rc=False, model_outputs=["pwm2"]
    )
    assert full.max_abs_labels == ["pwm1", "pwm2"] and sub.max_abs_labels == ["pwm2"]
    assert read_calibration(sub.path).max_abs_labels == ["pwm2"]

    def run(cal: Path, name: str, **kw: object) -> pd.DataFrame:
        veff.score_variants(model, vcf, ref, tmp_path / name, rc=False, calibration=cal, **kw)
        return veff.read_scores(tmp_path / name)

    one = run(sub.path, "one.vcf", model_outputs=["pwm2"])
    # over one output the statistic is |diff/pwm2|, so it is that output's own percentile
    np.testing.assert_allclose(one["diff_value_pctl"], one["diff_pctl/pwm2"], atol=0.02)
    # a VCF carrying other outputs than the calibration's max-abs: per-output percentiles only
    with caplog.at_level(logging.WARNING, logger="veff"):
        mixed = run(full.path, "mixed.vcf", model_outputs=["pwm2"])
    said = [r.getMessage() for r in caplog.records if "_VALUE_PCTL" in r.getMessage()]
    assert len(said) == 1 and "over the outputs pwm1,pwm2, the VCF carries pwm2" in said[0]
    assert "calibrate with --model-outputs pwm2" in said[0]
    assert "diff_value_pctl" not in mixed.columns and "diff_pctl/pwm2" in mixed.columns
    assert "DIFF_VALUE_PCTL" not in (tmp_path / "mixed.vcf").read_text()
    counting = MotifModel()
    with pytest.raises(InputError, match="model output 'nope' not found"):
        veff.calibrate(
            wrap(counting), ref, tmp_path / "x.calib.h5", random_snvs=50, rc=False, model_outputs=["nope"]
        )
    assert counting.seen == 1  # refused after the output probe, before the background was scored


def test_version_1_calibration_files_still_work(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    cal = veff.calibrate(model, ref, tmp_path / "m.calib.h5", random_snvs=300, seed=1, rc=False)
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 20, seed=9)
    veff.score_variants(model, vcf, ref, table=tmp_path / "new.tsv", rc=False, calibration=cal.path)
    with h5py.File(cal.path, "a") as f:  # as veff wrote it before /max_abs_labels
        f.attrs["format_version"] = "1"
        del f["max_abs_labels"]
    assert read_calibration(cal.path).max_abs_labels == ["pwm1", "pwm2"]
    veff.score_variants(model, vcf, ref, table=tmp_path / "old.tsv", rc=False, calibration=cal.path)
    new, old = veff.read_scores(tmp_path / "new.tsv"), veff.read_scores(tmp_path / "old.tsv")
    assert old["diff_value_pctl"].notna().all()
    pd.testing.assert_frame_equal(new, old)


def test_background_regions_mean_what_score_variants_regions_mean(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    # random SNVs drawn inside region text (1-based, inclusive), as score-variants -r reads it
    cal = veff.calibrate(
        model, ref, tmp_path / "r.calib.h5", random_snvs=200, regions="chrA:101-400", rc=False
    )
    assert cal.background == "200 random SNVs (seed 0) of ref.fa inside chrA:101-400"
    fa = Fasta(ref)
    snvs = random_snvs(fa, 200, seed=0, regions=[Region("chrA", 100, 400)])
    fa.close()
    bed = tmp_path / "r.bed"
    bed.write_text("chrA\t100\t400\n")  # the same bases, 0-based
    tab = tmp_path / "r.txt"
    tab.write_text("chrA\t101\t400\n")  # and 1-based, as bcftools -R reads a non-BED file
    for kw in ({"regions_file": bed}, {"regions_file": tab}, {"regions": ["chrA:101-250", "chrA:200-400"]}):
        again = veff.calibrate(model, ref, tmp_path / "x.calib.h5", random_snvs=200, rc=False, **kw)
        np.testing.assert_array_equal(again.abs_grid["diff"], cal.abs_grid["diff"])
    assert again.options["background"]["regions"] == ["chrA:101-250", "chrA:200-400"]
    vcf = _write_vcf(tmp_path / "bg.vcf", snvs, Fasta(ref))
    # a background VCF: only its records in the regions count, as score-variants -r keeps them
    inside = veff.calibrate(model, ref, tmp_path / "v.calib.h5", vcf=vcf, regions="chrA:1-200", rc=False)
    expected = sum(s.pos <= 200 for s in snvs)
    assert 0 < expected < 200 and inside.n_background == expected
    assert inside.background == f"the {expected} scored ALTs of bg.vcf inside chrA:1-200"
    kept = veff.score_variants(model, vcf, ref, rc=False, regions="chrA:1-200", return_predictions=True)
    assert len(kept["diff"]) == expected


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"regions": "r.bed"},
            "--regions r.bed: expected region text CHR, CHR:POS, CHR:START-END or CHR:START-",
        ),
        ({"regions": "chrA:50-10"}, "--regions: 'chrA:50-10': expected 1 <= START <= END"),
        (
            {"regions": "chrA:1-9", "regions_file": "r.bed"},
            "give regions (-r) or a regions file (-R), not both",
        ),
        ({"regions": "chrZ:1-100"}, "regions: contig 'chrZ' is not in"),
        ({"regions_file": "missing.bed"}, "missing.bed: regions file not found"),
    ],
)
def test_bad_background_regions_are_one_line_errors(
    ref: Path, tmp_path: Path, kw: dict, message: str
) -> None:
    (tmp_path / "r.bed").write_text("chrA\t100\t400\n")
    kw = {k: str(tmp_path / v) if v.endswith(".bed") else v for k, v in kw.items()}
    with pytest.raises(InputError) as err:
        veff.calibrate(wrap(MotifModel()), ref, tmp_path / "c.calib.h5", random_snvs=50, rc=False, **kw)
    assert message in str(err.value).replace(str(tmp_path) + "/", "") and "\n" not in str(err.value)
    assert not (tmp_path / "c.calib.h5").exists()


def test_cli_calibrate_regions_options(ref: Path, tmp_path: Path) -> None:
    import torch
    from toy_models import torch_gc_module

    model = tmp_path / "gc.pt"
    torch.jit.script(torch_gc_module(L)).save(str(model))
    bed = tmp_path / "r.bed"
    bed.write_text("chrA\t100\t400\n")
    args = ["calibrate", str(model), "--fasta", str(ref), "--random-snvs", "50", "--seq-length", str(L), "-q"]
    runner = CliRunner()
    for extra in (["-r", "chrA:101-400"], ["--regions", "chrA:101-400"], ["-R", str(bed)]):
        res = runner.invoke(main, [*args, *extra, "-o", str(tmp_path / "c.calib.h5")])
        assert res.exit_code == 0, res.output
        assert read_calibration(tmp_path / "c.calib.h5").background.endswith(
            ("inside chrA:101-400", "inside r.bed")
        )
    res = runner.invoke(main, [*args, "--regions", str(bed), "-o", str(tmp_path / "d.calib.h5")])
    assert res.exit_code == 1 and res.output.count("\n") == 1
    assert res.output.startswith("veff: error: --regions ") and "-R/--regions-file" in res.output
    res = runner.invoke(main, [*args, "-r", "chrA:9-1", "-o", str(tmp_path / "d.calib.h5")])
    assert res.exit_code == 1 and "expected 1 <= START <= END" in res.output and res.output.count("\n") == 1


def test_calibration_file_format(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    veff.calibrate(model, ref, tmp_path / "m.calib.h5", random_snvs=300, seed=1, rc=False, n_quantiles=101)
    with h5py.File(tmp_path / "m.calib.h5") as f:
        assert f.attrs["format"] == "veff-calibration" and f.attrs["format_version"] == "2"
        assert f["scores/diff/abs"].shape == (101, 2) and f["scores/diff/max_abs"].shape == (101,)
        assert f["max_abs_labels"].asstr()[()].tolist() == ["pwm1", "pwm2"]
        assert np.all(np.diff(f["scores/diff/signed"][()], axis=0) >= 0)
        assert f["scores/diff/count"][()].tolist() == [300, 300]
    cal = read_calibration(tmp_path / "m.calib.h5")
    assert cal.options["rc"] is False and cal.options["seq_length"] == L
    assert cal.options["model_checksum"].startswith("sha256:")
    with h5py.File(tmp_path / "m.calib.h5", "a") as f:
        f.attrs["format_version"] = "99"
    with pytest.raises(
        InputError, match=r"veff-calibration format_version 99 is not supported \(expected 1 or 2\)"
    ):
        read_calibration(tmp_path / "m.calib.h5")
    (tmp_path / "not.h5").write_text("hello")
    with pytest.raises(InputError, match="not an HDF5 file"):
        read_calibration(tmp_path / "not.h5")


def test_mismatched_calibrations_are_refused(ref: Path, tmp_path: Path) -> None:
    model = wrap(MotifModel())
    cal = veff.calibrate(model, ref, tmp_path / "m.calib.h5", random_snvs=300, seed=1, rc=False).path
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 20, seed=9)

    def run(m=model, **kw):
        return veff.score_variants(m, vcf, ref, calibration=cal, return_predictions=True, **kw)

    with pytest.raises(InputError, match=r"made with other options or another model \(rc=false in the"):
        run(rc=True)
    with pytest.raises(InputError, match="model_checksum=sha256:"):
        run(wrap(MotifModel(seed=1)), rc=False)
    with pytest.raises(InputError, match="aggregate="):
        run(rc=False, aggregate="mean")
    with pytest.raises(InputError, match="no calibration for score 'logit'"):
        run(rc=False, scores=["diff", "logit"])
    out = run(rc=True, force_calibration=True)  # forced: used anyway
    assert out["diff_pctl"].notna().all().all()


def test_model_files_are_checksummed(ref: Path, tmp_path: Path) -> None:
    import torch
    from toy_models import torch_gc_module

    path = tmp_path / "gc.pt"
    torch.jit.script(torch_gc_module(L)).save(str(path))
    veff.calibrate(str(path), ref, tmp_path / "gc.calib.h5", random_snvs=100, seed=1, seq_length=L)
    opts = read_calibration(tmp_path / "gc.calib.h5").options
    assert opts["model_checksum_of"] == "files"
    import hashlib

    assert opts["model_checksum"] == "sha256:" + hashlib.sha256(b"gc.pt\0" + path.read_bytes()).hexdigest()
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 10, seed=9)
    calib = tmp_path / "gc.calib.h5"
    veff.score_variants(str(path), vcf, ref, seq_length=L, calibration=calib, return_predictions=True)
    path.write_bytes(path.read_bytes() + b"\0")  # another model file
    with pytest.raises(InputError, match="model_checksum"):
        veff.score_variants(
            str(path), vcf, ref, seq_length=L, calibration=tmp_path / "gc.calib.h5", return_predictions=True
        )


# ---- null models ---------------------------------------------------------------------------


def test_sequence_blind_models_give_uniform_or_unit_null_p_values(ref: Path, tmp_path: Path) -> None:
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 400, seed=3)
    const = wrap(lambda x: np.ones((len(x), 2), np.float32), name="const")
    out = veff.score_variants(const, vcf, ref, rc=False, null="dinuc-shuffle:19", return_predictions=True)
    assert (out["diff_null_p"].to_numpy() == 1.0).all()  # every null ties with diff = 0
    assert out["diff_null_z"].isna().all().all()

    rng = np.random.default_rng(0)
    noise = wrap(lambda x: rng.normal(size=(len(x), 2)).astype(np.float32), name="noise")
    out = veff.score_variants(noise, vcf, ref, rc=False, null="dinuc-shuffle:99", return_predictions=True)
    p = out["diff_null_p"].to_numpy().ravel()
    assert set(np.round(p * 100).astype(int)) <= set(range(1, 101))
    assert stats.kstest(p, "uniform").pvalue > 0.001
    assert abs(float(np.mean(p)) - 0.505) < 0.03


def test_planted_motif_breaking_variant_gets_a_tiny_p_value(tmp_path: Path) -> None:
    bg = "".join(np.random.default_rng(8).choice(list("ACGT"), 400))
    assert MOTIF not in bg
    genome = bg[:200] + MOTIF + bg[210:]  # GATTACAGAT at 201-210
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": genome})
    vcf = tmp_path / "v.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=400>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "chr1\t205\tbreak\tA\tG\t.\t.\t.\n"  # GATTACAGAT -> GATTGCAGAT
        f"chr1\t100\tcontrol\t{genome[99]}\t{other(genome[99])}\t.\t.\t.\n"
    )
    out = veff.score_variants(
        wrap(TataModel(), "tata"), vcf, fasta, rc=False, null="dinuc-shuffle:199", return_predictions=True
    )
    assert out["diff"].loc["chr1:205:A:G", "tata"] == -1.0
    assert out["diff_null_p"].loc["chr1:205:A:G", "tata"] == pytest.approx(1 / 200)
    assert out["diff_null_p"].loc[f"chr1:100:{genome[99]}:{other(genome[99])}", "tata"] == 1.0
    assert out["diff_null_z"].loc["chr1:205:A:G", "tata"] < -5 or np.isnan(
        out["diff_null_z"].loc["chr1:205:A:G", "tata"]
    )


def test_null_costs_n_plus_one_forward_passes_and_ignores_chunking(ref: Path, tmp_path: Path) -> None:
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 50, seed=3)
    plain, nulls = MotifModel(), MotifModel()
    base = veff.score_variants(wrap(plain), vcf, ref, rc=False, batch_size=10, return_predictions=True)
    got = veff.score_variants(
        wrap(nulls), vcf, ref, rc=False, batch_size=10, null="dinuc-shuffle:9", return_predictions=True
    )
    assert plain.seen - 1 == 100 and nulls.seen - 1 == 100 * 10  # 1 = the output probe
    np.testing.assert_array_equal(base["diff"], got["diff"])
    again = veff.score_variants(
        wrap(MotifModel()), vcf, ref, rc=True, batch_size=64, null="dinuc-shuffle:9", return_predictions=True
    )
    other = veff.score_variants(
        wrap(MotifModel()), vcf, ref, rc=True, batch_size=7, null="dinuc-shuffle:9", return_predictions=True
    )
    np.testing.assert_array_equal(again["diff_null_p"], other["diff_null_p"])
    np.testing.assert_allclose(again["diff_null_z"], other["diff_null_z"], rtol=1e-5)


# ---- command line --------------------------------------------------------------------------


def test_cli_calibrate_then_score_with_percentiles_and_nulls(ref: Path, tmp_path: Path) -> None:
    import torch
    from toy_models import torch_gc_module

    model = tmp_path / "gc.pt"
    torch.jit.script(torch_gc_module(L)).save(str(model))
    runner = CliRunner()
    calib = tmp_path / "gc.calib.h5"
    res = runner.invoke(
        main,
        ["calibrate", str(model), "--fasta", str(ref), "--random-snvs", "200", "--seed", "3",
         "--seq-length", str(L), "--no-rc", "-o", str(calib), "-q"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert calib.is_file()
    vcf = snv_vcf(tmp_path / "v.vcf", ref, 30, seed=9)
    args = ["score-variants", str(model), "--vcf", str(vcf), "--fasta", str(ref), "--seq-length", str(L)]
    args += ["--no-rc", "-q"]
    res = runner.invoke(
        main,
        [*args, "-o", str(tmp_path / "o.vcf.gz"), "--calibration", str(calib), "--null", "dinuc-shuffle:5",
         "--null-seed", "2", "--table", str(tmp_path / "o.tsv")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    df = veff.read_scores(tmp_path / "o.tsv")
    assert {"diff_pctl/0", "diff_spctl/0", "diff_null_z/0", "diff_null_p/0"} <= set(df.columns)
    assert df["diff_null_p/0"].between(1 / 6, 1).all()
    res = runner.invoke(main, [*args, "-o", str(tmp_path / "x.vcf"), "--calibration", str(calib), "--rc"])
    assert res.exit_code == 1
    assert res.output.count("\n") == 1 and res.output.startswith("veff: error: ")
    assert "--force-calibration" in res.output and not (tmp_path / "x.vcf").exists()
