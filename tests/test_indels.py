"""Indels, MNVs, multi-allelic records and unusual alleles (issue 4)."""

from __future__ import annotations

import pytest
from cyvcf2 import VCF
from helpers import CHR1, CHR2, base, other, write_vcf
from toy_models import GCModel, TwoOutputModel

import veff
from veff.models import CallableModel, InputLayout


def _model(fn, length=21):
    return CallableModel(fn, name="toy", seq_length=length, layout=InputLayout.parse("L,4"))


def test_mixed_vcf_keeps_every_record_with_the_right_statuses(genome, tmp_path):
    p = 200
    b = base("chr1", p)
    ref3 = CHR1[p - 1 : p + 2].upper()
    rows = [
        ("chr1", p, "snv", b, other(b)),
        ("chr1", p, "mnv", ref3[:2], other(ref3[0]) + other(ref3[1])),
        ("chr1", p, "ins", b, b + "GT"),
        ("chr1", p, "del", ref3, b),
        ("chr1", p, "multi", b, f"{other(b)},{b}TT"),
        ("chr1", p, "symbolic", b, "<DUP>,<CN0>"),
        ("chr1", p, "breakend", b, f"{b}[chr1:500["),
        ("chr1", p, "star", b, f"*,{other(b)}"),
        ("chr1", p, "missing", b, "."),
        ("chr1", p, "iupac", b, "R"),
        ("chr1", p, "toolong", b, b + "A" * 60),
    ]
    vcf = write_vcf(tmp_path / "mixed.vcf", rows)
    out = tmp_path / "mixed.out.vcf"
    summary = veff.score_variants(_model(GCModel(21)), vcf, genome, out)
    recs = list(VCF(str(out)))
    assert [r.ID for r in recs] == [r[2] for r in rows]
    status = {r.ID: r.INFO.get("VEFF_toy_STATUS") for r in recs}
    assert status["snv"].endswith("|ok") and status["mnv"].endswith("|ok")
    assert status["ins"].endswith("|ok") and status["del"].endswith("|ok")
    assert status["multi"] == f"{other(b)}|ok,{b}TT|ok"
    assert status["symbolic"] == "<DUP>|unsupported_allele,<CN0>|unsupported_allele"
    assert status["breakend"].endswith("|unsupported_allele")
    assert status["star"] == f"*|unsupported_allele,{other(b)}|ok"
    assert status["missing"] == ".|no_alt"
    assert status["iupac"] == "R|unsupported_allele"
    assert status["toolong"].endswith("|indel_too_long")
    diff = {r.ID: r.INFO.get("VEFF_toy_DIFF") for r in recs}
    assert diff["star"].startswith("*|.,")
    assert summary.records == len(rows)


def test_equivalent_representations_score_identically(genome, tmp_path):
    # chr2 holds GAAAAAAT at 1-based 101..108 and GCACACACAT at 151..160
    rows = [
        ("2", 101, "del_a", "GA", "G"),
        ("2", 104, "del_b", "AA", "A"),
        ("2", 106, "del_c", "AAT", "AT"),
        ("2", 151, "ins_a", "G", "GCA"),
        ("2", 152, "ins_b", "C", "CAC"),
        ("2", 159, "ins_c", "A", "ACA"),
    ]
    assert CHR2[100:108] == "GAAAAAAT" and CHR2[150:160] == "GCACACACAT"
    vcf = write_vcf(tmp_path / "eq.vcf", rows)
    res = veff.score_variants(_model(TwoOutputModel(21)), vcf, genome, return_predictions=True, rc=True)[
        "diff"
    ]
    vals = res.to_numpy()
    assert (vals[0] == vals[1]).all() and (vals[0] == vals[2]).all()
    assert (vals[3] == vals[4]).all() and (vals[3] == vals[5]).all()
    assert abs(vals[0]).sum() > 0 and abs(vals[3]).sum() > 0


@pytest.mark.parametrize("rc", [False, True])
def test_reference_predicted_once_per_multiallelic_record(genome, tmp_path, rc):
    b = base("chr1", 300)
    alts = [x for x in "ACGT" if x != b] + [b + other(b), b + other(b) * 2]  # insertions cannot left-shift
    vcf = write_vcf(tmp_path / "m.vcf", [("chr1", 300, "m", b, ",".join(alts))])
    fn = GCModel(21)
    veff.score_variants(_model(fn), vcf, genome, tmp_path / "o.vcf", rc=rc, batch_size=1)
    strands = 2 if rc else 1
    assert fn.seen - 1 == strands * (1 + len(alts))  # one reference window for all five ALTs
