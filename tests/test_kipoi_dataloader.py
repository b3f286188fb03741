"""Kipoi model directories scored through their own dataloader.py (overlap and bed-input modes)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from helpers import EXAMPLE, GENOME, write_fasta, write_vcf

import veff
from veff.cli import main
from veff.errors import InputError, ModelError
from veff.models.kipoi import describe_model, load_kipoi_model
from veff.models.kipoi.dlrun import read_dataloader_args

FIX = Path(__file__).parent / "data" / "kipoi"
OVERLAP, BED = FIX / "dl_overlap", FIX / "dl_bed"
WEIGHTS = ((np.arange(32, dtype=np.float32) ** 2) % 11 + 1.0).reshape(8, 4) / 10.0  # as in model.py
CHR1 = GENOME["chr1"].upper()
_COMP = str.maketrans("ACGT", "TGCA")


def _alt(base: str) -> str:
    return "A" if base != "A" else "C"


def _onehot(seq: str) -> np.ndarray:
    x = np.zeros((len(seq), 4), np.float32)
    for i, b in enumerate(seq):
        if b in "ACGT":
            x[i, "ACGT".index(b)] = 1
    return x


def _weighted(seq: str) -> float:
    return float((_onehot(seq) * WEIGHTS).sum())


def _gc(seq: str) -> float:
    return float(sum(b in "GC" for b in seq))


def _window(chrom_seq: str, start: int, end: int, strand: str, pos: int, alt: str | None) -> str:
    """The region's sequence as the dataloader returns it, with ``alt`` at 1-based ``pos``."""
    seq = list(chrom_seq[start:end])
    if alt is not None:
        seq[pos - 1 - start] = alt
    text = "".join(seq)
    return text.translate(_COMP)[::-1] if strand == "-" else text


@pytest.fixture
def genome(tmp_path: Path) -> Path:
    return write_fasta(tmp_path / "genome.fa")


def _ref_alt(model: Path, vcf: Path, fasta: Path, **kw: Any) -> dict[str, pd.DataFrame]:
    """The ``ref`` and ``alt`` predictions (``return_predictions``) of a run of ``model``."""
    res = veff.score_variants(model, vcf, fasta, **{"scores": ["ref", "alt"], **kw}, return_predictions=True)
    assert isinstance(res, dict)
    return res


def _score_cli(vcf: Path, fasta: Path, out: str, *extra: str) -> Any:
    """``veff score-variants OVERLAP`` in-process, quiet, writing ``out``."""
    args = ["score-variants", str(OVERLAP), "--vcf", str(vcf), "--fasta", str(fasta), "-o", out, "-q"]
    return CliRunner().invoke(main, [*args, *extra])


# -- overlap mode ---------------------------------------------------------------------------------
def test_overlap_mode_scores_in_dataloader_regions(
    tmp_path: Path, genome: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bed = tmp_path / "regions.bed"
    bed.write_text(
        "chr1\t10\t18\tr1\t0\t+\nchr1\t40\t48\tr2\t0\t-\nchr1\t14\t22\tr3\t0\t+\n2\t100\t108\tr4\t0\t+\n"
    )
    chr2 = GENOME["2"].upper()
    rows = [
        ("chr1", 12, "in_r1", CHR1[11], _alt(CHR1[11])),
        ("chr1", 30, "outside", CHR1[29], _alt(CHR1[29])),
        ("chr1", 44, "minus", CHR1[43], _alt(CHR1[43])),
        ("chr1", 17, "r1_and_r3", CHR1[16], _alt(CHR1[16])),
        ("chr1", 11, "indel", CHR1[10], CHR1[10] + "T"),
        ("2", 103, "no_chr", chr2[102], _alt(chr2[102])),
        ("chr1", 13, "bad_ref", _alt(CHR1[12]), CHR1[12]),
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "out.vcf"
    with caplog.at_level(logging.WARNING, logger="veff"):
        summary = veff.score_variants(
            OVERLAP,
            vcf,
            genome,
            out,
            table=tmp_path / "t.tsv",
            dataloader_args={"intervals_file": str(bed), "strip_chr": True},  # "1" matches "chr1"
        )
    assert "1 records lie in more than one dataloader region" in caplog.text
    assert summary.statuses == {"ok": 5, "not_in_region": 1, "ref_mismatch": 1}
    table = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert list(table["id"]) == [r[2] for r in rows]  # VCF order, every record kept
    assert list(table["status"]) == ["ok", "not_in_region", "ok", "ok", "ok", "ok", "ref_mismatch"]
    # expected: mutate the region's sequence (reverse complement for '-') and apply the weights
    cases = {
        "in_r1": (CHR1, 10, 18, "+", 12),
        "minus": (CHR1, 40, 48, "-", 44),
        "r1_and_r3": (CHR1, 14, 22, "+", 17),  # most central of r1 [10,18) and r3 [14,22)
        "no_chr": (chr2, 100, 108, "+", 103),
    }
    for vid, (seq, start, end, strand, pos) in cases.items():
        row = table[table["id"] == vid].iloc[0]
        ref_w, alt_w = (_window(seq, start, end, strand, pos, a) for a in (None, row["alt"]))
        assert row["diff/weighted"] == pytest.approx(_weighted(alt_w) - _weighted(ref_w), abs=1e-5)
        assert row["diff/gc"] == pytest.approx(_gc(alt_w) - _gc(ref_w))
        assert row["weighted_abs/weighted"] == pytest.approx(abs(row["diff/weighted"]), abs=1e-6)
    text = out.read_text()
    assert "VEFF_dl_overlap_WEIGHTED_ABS" in text  # the model's default scores, custom one included
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert [line.split("\t")[2] for line in body] == [r[2] for r in rows]


def test_overlap_mode_places_indels_by_the_fixed_window_rule(tmp_path: Path, genome: Path) -> None:
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t10\t18\tplus\t0\t+\nchr1\t40\t48\tminus\t0\t-\n")
    k = next(i for i in range(41, 46) if CHR1[i] != CHR1[i + 1])  # a deletion with one representation
    rows = [
        ("chr1", 13, "ins", CHR1[12], CHR1[12] + "GT"),
        ("chr1", 12, "del_plus", CHR1[11:14], CHR1[11]),
        ("chr1", k + 1, "del_minus", CHR1[k : k + 2], CHR1[k]),
        ("chr1", 11, "too_long", CHR1[10], CHR1[10] + "A" * 60),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", rows)
    res = _ref_alt(
        OVERLAP, vcf, genome, table=tmp_path / "t.tsv", dataloader_args={"intervals_file": str(bed)}
    )
    table = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert list(table["status"]) == ["ok", "ok", "ok", "indel_too_long"]
    plus = CHR1[10:18]
    minus = CHR1[40:48].translate(_COMP)[::-1]
    alts = {
        "ins": plus[:3] + "GT" + plus[3:6],  # pushes the last two bases out
        "del_plus": plus[:2] + plus[4:] + CHR1[18:20],  # pulls in the two bases after the region
        # forward strand: the base at k+1 is gone and the region reaches one base further left
        "del_minus": (CHR1[39 : k + 1] + CHR1[k + 2 : 48]).translate(_COMP)[::-1],
    }
    for row, (vid, alt_seq) in enumerate(alts.items()):
        ref_seq = minus if vid == "del_minus" else plus
        assert res["ref"]["weighted"].iloc[row] == pytest.approx(_weighted(ref_seq), abs=1e-5)
        assert res["alt"]["weighted"].iloc[row] == pytest.approx(_weighted(alt_seq), abs=1e-5), vid


def test_overlap_minus_strand_complemented_allele(tmp_path: Path, genome: Path) -> None:
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t40\t48\tr2\t0\t-\n")
    ref = CHR1[40]  # first base of the region = last base of the reverse complement
    vcf = write_vcf(tmp_path / "v.vcf", [("chr1", 41, "v", ref, _alt(ref))])
    res = _ref_alt(OVERLAP, vcf, genome, dataloader_args={"intervals_file": str(bed)})
    ref_seq = CHR1[40:48].translate(_COMP)[::-1]
    alt_seq = ref_seq[:7] + _alt(ref).translate(_COMP)
    assert res["ref"]["weighted"].iloc[0] == pytest.approx(_weighted(ref_seq), abs=1e-5)
    assert res["alt"]["weighted"].iloc[0] == pytest.approx(_weighted(alt_seq), abs=1e-5)


def test_example_tal1_model_runs_its_own_dataloader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kipoi's tal1_model as shipped: its dataloader.py (pybedtools + pyfaidx) chooses the regions."""
    model_dir = tmp_path / "tal1_model"
    shutil.copytree(EXAMPLE / "models" / "tal1_model", model_dir)
    # pyfaidx is not installed here: a stand-in next to dataloader.py serves its one call via pysam
    (model_dir / "pyfaidx.py").write_text(
        "import pysam\n\n\nclass _Seq:\n    def __init__(self, seq):\n        self.seq = seq\n\n\n"
        "class Fasta:\n    def __init__(self, path):\n        self._fa = pysam.FastaFile(path)\n\n"
        "    def get_seq(self, name, start, end):\n"
        "        return _Seq(self._fa.fetch(name, start - 1, end))\n"
    )
    fasta = model_dir / "example_files" / "example.fa"
    seqs: dict[str, str] = {}
    for line in fasta.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = ""
        else:
            seqs[name] += line.upper()
    assert describe_model(model_dir)["region_mode"] == "overlap"
    picks = [("seq0", p) for p in (1, 100, 250, 499)] + [("seq3", p) for p in (37, 400)]
    rows = [(c, p, f"{c}_{p}", seqs[c][p - 1], _alt(seqs[c][p - 1])) for c, p in picks]
    header = "##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={k},length=500>\n" for k in seqs)
    header += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\n"
    vcf = write_vcf(tmp_path / "v.vcf", rows, header=header)
    monkeypatch.chdir(model_dir)  # a relative path in the arguments resolves against the current directory
    res = _ref_alt(
        model_dir, vcf, fasta, dataloader_args=json.dumps({"intervals_file": "example_files/intervals.tsv"})
    )
    model = load_kipoi_model(model_dir)
    for k, (chrom, pos, _, _, alt) in enumerate(rows):
        seq = seqs[chrom]
        mutated = seq[: pos - 1] + alt + seq[pos:]
        direct = model.predict(np.stack([_onehot(seq), _onehot(mutated)]))
        assert res["ref"].iloc[k, 0] == pytest.approx(direct[0, 0], rel=1e-5)
        assert res["alt"].iloc[k, 0] == pytest.approx(direct[1, 0], rel=1e-5)
    assert np.ptp(res["alt"].to_numpy()) > 0


# -- bed-input mode -------------------------------------------------------------------------------
def test_bed_input_mode_matches_by_id_and_passes_other_inputs(tmp_path: Path, genome: Path) -> None:
    """The dataloader returns its samples in reverse BED order; matching is by id, not by order."""
    other = [b for b in "ACGT" if b != CHR1[299]]
    rows = [
        ("chr1", 50, "a", CHR1[49], _alt(CHR1[49])),
        ("chrUn", 5, "unknown", "A", "C"),
        ("chr1", 300, "multi", CHR1[299], ",".join(other[:2])),
        ("chr1", 120, "del", CHR1[119:121], CHR1[119]),
    ]
    vcf = write_vcf(tmp_path / "v.vcf", rows)
    for rc in (False, True):
        res = _ref_alt(BED, vcf, genome, rc=rc, dataloader_args=["scale=2.5"])
        ref, alt = res["ref"], res["alt"]
        assert list(ref.columns) == ["weighted", "dist"]
        assert [k.split(":")[1] for k in ref.index] == ["50", "300", "300", "120"]
        assert CHR1[119] != CHR1[120]  # the deletion cannot shift left
        for key in ref.index:
            pos, alt_base = int(key.split(":")[1]), key.split(":")[3]
            start = pos - 1 - 3  # kipoi centring (the default for model directories): index L//2-1 = 3
            ref_seq = CHR1[start : start + 8]
            alt_seq = ref_seq[:3] + alt_base + ref_seq[4:]
            if pos == 120:  # the deletion's anchor at index 3, the base after the window pulled in
                alt_seq = ref_seq[:4] + ref_seq[5:] + CHR1[start + 8]
            dist = start % 7 + 2.5 + 1.0
            exp_ref, exp_alt = _weighted(ref_seq), _weighted(alt_seq)
            if rc:  # mean of the forward and reverse-complement predictions; dist passes through
                exp_ref = (exp_ref + _weighted(ref_seq.translate(_COMP)[::-1])) / 2
                exp_alt = (exp_alt + _weighted(alt_seq.translate(_COMP)[::-1])) / 2
            assert ref.loc[key, "weighted"] == pytest.approx(exp_ref, abs=1e-5)
            assert alt.loc[key, "weighted"] == pytest.approx(exp_alt, abs=1e-5)
            assert ref.loc[key, "dist"] == pytest.approx(dist)
            assert alt.loc[key, "dist"] == pytest.approx(dist)


def test_bed_input_with_restriction_bed(tmp_path: Path, genome: Path) -> None:
    restriction = tmp_path / "restrict.bed"
    restriction.write_text("chr1\t60\t70\n")
    rows = [("chr1", 62, "shifted", CHR1[61], _alt(CHR1[61])), ("chr1", 200, "outside", CHR1[199], "A")]
    vcf = write_vcf(tmp_path / "v.vcf", rows)
    summary = veff.score_variants(
        BED, vcf, genome, table=tmp_path / "t.tsv", rc=False, scores=["diff"], restriction_bed=restriction
    )
    table = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert list(table["status"]) == ["ok", "not_in_region"]
    assert summary.scored == 1
    ref_seq = CHR1[60:68]  # window shifted right to fit [60, 70); variant at index 1
    alt_seq = ref_seq[0] + _alt(CHR1[61]) + ref_seq[2:]
    assert table["diff/weighted"].iloc[0] == pytest.approx(_weighted(alt_seq) - _weighted(ref_seq), abs=1e-5)


# -- dataloader arguments -------------------------------------------------------------------------
def test_read_dataloader_args_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regions.bed").write_text("chr1\t0\t8\n")
    (tmp_path / "args.yaml").write_text("intervals_file: regions.bed\nscale: 3\n")
    (tmp_path / "args.json").write_text('{"intervals_file": "regions.bed", "flag": true}')
    absolute = str(tmp_path / "regions.bed")
    assert read_dataloader_args('{"intervals_file": "regions.bed", "n": 2}') == {
        "intervals_file": absolute,
        "n": 2,
    }
    assert read_dataloader_args("args.yaml") == {"intervals_file": absolute, "scale": 3}
    assert read_dataloader_args(["args.json"]) == {"intervals_file": absolute, "flag": True}
    assert read_dataloader_args(["intervals_file=regions.bed", "scale=2.5 name=chr1"]) == {
        "intervals_file": absolute,
        "scale": 2.5,
        "name": "chr1",
    }
    assert read_dataloader_args(None) == {}
    for bad, match in (
        ("{nope", "not valid JSON"),
        ("missing.json", "neither a JSON object"),
        (["a=1", "b"], "expected key=value"),
    ):
        with pytest.raises(InputError, match=match):
            read_dataloader_args(bad)


def test_bad_dataloader_argument_names_accepted_ones(tmp_path: Path, genome: Path) -> None:
    vcf = write_vcf(tmp_path / "v.vcf", [("chr1", 50, "a", CHR1[49], _alt(CHR1[49]))])
    accepted = "unknown argument 'scal'; it accepts intervals_file, fasta_file, scale"
    with pytest.raises(InputError, match=accepted):
        veff.score_variants(BED, vcf, genome, return_predictions=True, dataloader_args={"scal": 1})
    with pytest.raises(InputError, match="argument 'intervals_file' is required"):
        veff.score_variants(OVERLAP, vcf, genome, return_predictions=True)
    with pytest.raises(InputError, match=r"has no dataloader\.py that veff runs"):
        veff.score_variants(
            EXAMPLE / "models" / "gc_content", vcf, genome, return_predictions=True, dataloader_args={"x": 1}
        )


def test_cli_dataloader_args(tmp_path: Path, genome: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("regions.bed").write_text("chr1\t10\t18\tr1\t0\t+\n")
    vcf = write_vcf(tmp_path / "v.vcf", [("chr1", 12, "a", CHR1[11], _alt(CHR1[11]))])
    res = _score_cli(
        vcf,
        genome,
        "out.vcf",
        "--scores",
        "weighted_abs",
        "--dataloader-args",
        '{"intervals_file": "regions.bed"}',
    )
    assert res.exit_code == 0, res.output
    body = [line for line in Path("out.vcf").read_text().splitlines() if not line.startswith("#")]
    expected = abs(_weighted(_window(CHR1, 10, 18, "+", 12, _alt(CHR1[11]))) - _weighted(CHR1[10:18]))
    value = float(body[0].split("VEFF_dl_overlap_WEIGHTED_ABS=")[1].split("|")[1])
    assert value == pytest.approx(expected, abs=1e-5)
    res = _score_cli(
        vcf,
        genome,
        "out2.vcf",
        "--dataloader-args",
        "intervals_file=regions.bed",
        "--dataloader-args",
        "bogus=1",
    )
    assert res.exit_code == 1
    assert res.output.startswith(
        "veff: error: dataloader dataloader.py::BedDataset: unknown argument 'bogus'"
    )
    assert not Path("out2.vcf").exists()


# -- model defaults -------------------------------------------------------------------------------
def test_model_defaults_scores_and_centring(tmp_path: Path, genome: Path) -> None:
    info = describe_model(OVERLAP)
    assert info["default_scores"] == ["diff", "weighted_abs"]
    assert info["region_mode"] == "overlap"
    model = load_kipoi_model(OVERLAP)
    assert model.default_centering == "kipoi"
    resolved: list[Any] = model.resolve_scores(None)
    assert resolved[0] == "diff" and resolved[1].name == "weighted_abs"
    assert describe_model(BED)["region_mode"] == "bed_input"


def test_model_without_dataloader_inputs_fails_clearly() -> None:
    model = load_kipoi_model(BED)
    with pytest.raises(ModelError, match="dist come from the model's dataloader"):
        model.predict(np.zeros((1, 8, 4), np.float32))


def test_dna_only_bed_input_model_runs_its_dataloader_when_asked(tmp_path: Path, genome: Path) -> None:
    model_dir = tmp_path / "dna_bed"
    shutil.copytree(OVERLAP, model_dir)
    with open(model_dir / "dataloader.yaml", "a") as fh:
        fh.write("postprocessing:\n  variant_effects:\n    bed_input: [intervals_file]\n")
    assert describe_model(model_dir)["region_mode"] == "bed_input"
    rows = [("chr1", 50, "snv", CHR1[49], _alt(CHR1[49])), ("chr1", 80, "ins", CHR1[79], CHR1[79] + "G")]
    vcf = write_vcf(tmp_path / "v.vcf", rows)
    own = veff.score_variants(model_dir, vcf, genome, table=tmp_path / "own.tsv", scores=["diff"])
    assert own.statuses == {"ok": 2}  # veff's own windows: the insertion is scored too
    ran = veff.score_variants(
        model_dir, vcf, genome, table=tmp_path / "ran.tsv", scores=["diff"], dataloader_args="{}"
    )
    assert ran.statuses == {"ok": 2}  # the insertion too, by the same rule as veff's own windows
    own_t, ran_t = (pd.read_csv(tmp_path / f, sep="\t") for f in ("own.tsv", "ran.tsv"))
    np.testing.assert_allclose(own_t["diff/weighted"], ran_t["diff/weighted"], atol=1e-6)
    assert own_t["diff/weighted"].iloc[1] != 0
    ref_seq = CHR1[46:54]
    alt_seq = ref_seq[:3] + _alt(CHR1[49]) + ref_seq[4:]
    assert ran_t["diff/weighted"].iloc[0] == pytest.approx(_weighted(alt_seq) - _weighted(ref_seq), abs=1e-5)


# -- mutation maps ----------------------------------------------------------------------------------
def test_mutation_map_uses_the_dataloader_regions_overlapping_the_query(tmp_path: Path, genome: Path) -> None:
    from veff.mutation_map.compute import MutationMap

    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t10\t18\tr1\t0\t+\nchr1\t100\t108\tr5\t0\t+\nchr1\t14\t22\tr3\t0\t+\n")
    with MutationMap(OVERLAP, genome, scores=["diff"], dataloader_args={"intervals_file": str(bed)}) as mm:
        res = mm.query_region("chr1", 15, 16, output=tmp_path / "map.h5")
    assert [(e.chrom, e.start, e.end) for e in res.entries] == [("chr1", 10, 18), ("chr1", 14, 22)]
    # the cell of a variant equals its score-variants value in that region
    pos, alt = 12, _alt(CHR1[11])
    cell = res.entries[0].scores["diff"][pos - 1 - 10, "ACGT".index(alt)]
    expected = _weighted(_window(CHR1, 10, 18, "+", pos, alt)) - _weighted(CHR1[10:18])
    assert cell[0] == pytest.approx(expected, abs=1e-5)
    with pytest.raises(InputError, match="is not bound to dataloader regions"):
        MutationMap(EXAMPLE / "models" / "gc_content", genome, dataloader_args={"x": 1})


def test_cli_mutation_map_dataloader_args(tmp_path: Path, genome: Path) -> None:
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t10\t18\tr1\t0\t+\nchr1\t100\t108\tr5\t0\t+\n")
    res = CliRunner().invoke(
        main,
        [
            "create-mutation-map",
            str(OVERLAP),
            "--fasta",
            str(genome),
            "--region",
            "chr1:101-102",
            "-o",
            str(tmp_path / "m.h5"),
            "-q",
            "--dataloader-args",
            f"intervals_file={bed}",
        ],
    )
    assert res.exit_code == 0, res.output
    entries = veff.load_mutation_map(tmp_path / "m.h5").entries
    assert [(e.start, e.end) for e in entries] == [(100, 108)]


# -- DNA sharing an input with signal channels (FactorNet's convention) ---------------------------
TRACKS = FIX / "dna_tracks"
DNA_W = ((np.arange(48, dtype=np.float32) ** 2) % 13 + 1.0).reshape(12, 4) / 10.0  # as in model.py
SIG_W = (np.arange(24, dtype=np.float32) % 5 + 1.0).reshape(12, 2) / 7.0
META_W = np.array([0.5, -1.0, 2.0], dtype=np.float32)


def _tracknet(seq: str, start: int, idx: int) -> tuple[float, float]:
    """(forward, reverse) outputs of dna_tracks/model.py for the region sequence ``seq`` at ``start``."""
    pos = np.arange(start, start + len(seq), dtype=np.float32)
    sig = np.stack([(pos % 5) / 5.0, (pos % 3) / 3.0], axis=1)
    dna = _onehot(seq)
    forward = (dna * DNA_W).sum() + (sig * SIG_W).sum() + np.array([idx, 1.0, 0.5]) @ META_W
    reverse = (dna[::-1, ::-1] * DNA_W).sum() + (sig[::-1] * SIG_W).sum()
    return float(forward), float(reverse)


def test_dna_with_signal_channels_and_rc_twin_input(tmp_path: Path, genome: Path) -> None:
    info = describe_model(TRACKS)
    assert info["supported"] and info["region_mode"] == "overlap"
    assert [(r["name"], r["role"], r["tracks"]) for r in info["inputs"]] == [
        ("seq", "dna", 2),
        ("seq_rc", "dna_rc", 2),
        ("meta_features", "other", 0),
    ]
    bed = tmp_path / "regions.bed"
    bed.write_text("chr1\t20\t32\tr0\nchr1\t60\t72\tr1\n")
    rows = [
        ("chr1", 25, "a", CHR1[24], _alt(CHR1[24])),
        ("chr1", 72, "b", CHR1[71], _alt(CHR1[71])),
        ("chr1", 45, "outside", CHR1[44], _alt(CHR1[44])),
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    args = {"intervals_file": str(bed)}
    res = _ref_alt(TRACKS, vcf, genome, dataloader_args=args)
    for k, (start, pos, idx) in enumerate([(20, 25, 0), (60, 72, 1)]):
        ref_seq = CHR1[start : start + 12]
        alt_seq = _window(CHR1, start, start + 12, "+", pos, rows[k][4])
        for which, seq in (("ref", ref_seq), ("alt", alt_seq)):
            got = res[which][["forward", "reverse"]].iloc[k].to_numpy()
            np.testing.assert_allclose(got, _tracknet(seq, start, idx), rtol=1e-5)
    assert len(res["ref"]) == 2  # the record outside every region is not scored
    # veff's own reverse complement swaps the twins and reads the signals backwards
    merged = _ref_alt(TRACKS, vcf, genome, scores=["ref"], rc=True, dataloader_args=args)  # rc merged by mean
    fwd, rev = _tracknet(CHR1[20:32], 20, 0)
    meta = float(np.array([0, 1.0, 0.5]) @ META_W)
    rc_forward = rev + meta  # seq <- reverse-complemented DNA with reversed signals
    rc_reverse = fwd - meta  # seq_rc <- forward DNA with the signals in forward order
    got = merged["ref"][["forward", "reverse"]].iloc[0].to_numpy()
    np.testing.assert_allclose(got, [(fwd + rc_forward) / 2, (rev + rc_reverse) / 2], rtol=1e-5)
