"""Numeric INFO tags (``<TAG>_VALUE``, ``<TAG>_LABEL``) that bcftools can filter and query."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import E1, HG38, ROOT, base, other, write_vcf
from toy_models import TwoOutputModel

import veff
from veff.models import CallableModel, InputLayout

pytestmark = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")

DONOR = ROOT / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"
TAG = "VEFF_donor_cnn_DIFF"
KEY = "%POS:%ID:%REF:%ALT"  # IDs repeat in E1


def _bcftools(*args: str) -> str:
    res = subprocess.run(["bcftools", *args], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def donor(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("numeric") / "donor.vcf.gz"
    veff.score_variants(DONOR, E1, HG38, out, scores=("diff", "logit"))
    return out


def _values(path: Path) -> dict[str, list[float | None]]:
    """Per record ID, the value of each ALT read from the String tag (None: not scored)."""
    rows = _bcftools("query", "-f", f"{KEY}\\t%{TAG}\\n", str(path)).splitlines()
    out = {}
    for row in rows:
        rid, entries = row.split("\t")
        vals = [e.split("|")[1] for e in entries.split(",")] if entries != "." else []
        out[rid] = [None if v == "." else float(v) for v in vals]
    return out


def test_one_output_the_value_itself_per_alt(donor):
    header = _bcftools("view", "-h", str(donor))
    assert f"##INFO=<ID={TAG}_VALUE,Number=A,Type=Float," in header
    assert f"{TAG}_LABEL" not in header  # one output: nothing to name
    query = _bcftools("query", "-f", f"{KEY}\\t%{TAG}_VALUE\\n", str(donor)).splitlines()
    strings = _values(donor)
    assert len(query) == 45
    for row in query:
        rid, text = row.split("\t")
        want = strings[rid]
        got = [None if t == "." else float(t) for t in text.split(",")] if want else []
        assert [g is None for g in got] == [w is None for w in want], rid  # "." where not scored
        pairs = [(g, w) for g, w in zip(got, want, strict=True) if w is not None]
        assert [g for g, _ in pairs] == pytest.approx([w for _, w in pairs], rel=1e-5), rid
    assert any(None in v for v in strings.values())  # the REF-mismatch record has "."


def test_bcftools_filter_and_view_on_the_numeric_tags(donor, tmp_path):
    strings = _values(donor)
    low = {rid for rid, vals in strings.items() if any(v is not None and v < -0.3 for v in vals)}
    assert 0 < len(low) < 45
    kept = _bcftools("query", "-i", f"INFO/{TAG}_VALUE<-0.3", "-f", f"{KEY}\\n", str(donor)).split()
    assert set(kept) == low
    dropped = _bcftools("view", "-H", "-e", f"INFO/{TAG}_VALUE<-0.3", str(donor)).splitlines()
    assert len(dropped) == 45 - len(low)
    res = subprocess.run(
        ["bcftools", "filter", "-s", "weak_donor", "-e", f"INFO/{TAG}_VALUE<-0.3", str(donor)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    weak = {
        ":".join([f[1], f[2], f[3], f[4]])
        for f in (line.split("\t") for line in res.stdout.splitlines() if not line.startswith("#"))
        if f[6] == "weak_donor"
    }
    assert weak == low
    both = _bcftools(
        "view", "-H", "-i", f"INFO/{TAG}_VALUE<-0.3 && INFO/VEFF_donor_cnn_LOGIT_VALUE<-3", str(donor)
    ).splitlines()
    assert 0 < len(both) <= len(low)


def test_split_vep_reads_an_input_csq_beside_veffs_numbers(tmp_path, genome):
    """split-vep splits a VEP annotation the input had, and -f can print veff's numbers beside it.

    (bcftools 1.16's split-vep refuses tags without a Consequence field, such as veff's own
    ``ALLELE|v1|...`` tags; the numeric tags are what to query instead.)
    """
    header_csq = (
        '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. '
        'Format: Allele|Consequence|SYMBOL">\n'
    )
    from conftest import VCF_HEADER

    header = VCF_HEADER.replace("##FILTER", header_csq + "##FILTER")
    rows = []
    for k, pos in enumerate((20, 40, 60, 80)):
        b = base("chr1", pos)
        rows.append(("chr1", pos, f"v{k}", b, other(b), f"DP=5;CSQ={other(b)}|missense_variant|GENE{k}"))
    vcf = write_vcf(tmp_path / "in.vcf", rows, header)
    model = CallableModel(TwoOutputModel(11), name="toy", seq_length=11, layout=InputLayout.parse("L,4"))
    out = tmp_path / "out.vcf"
    veff.score_variants(model, vcf, genome, out, scores=("diff",))
    text = _bcftools(
        "+split-vep", "-a", "CSQ", "-c", "SYMBOL,Consequence", "-f",
        "%ID\\t%SYMBOL\\t%Consequence\\t%VEFF_toy_DIFF_VALUE\\t%VEFF_toy_DIFF_LABEL\\n", str(out),
    )  # fmt: skip
    got = [line.split("\t") for line in text.splitlines()]
    assert [g[:3] for g in got] == [[f"v{k}", f"GENE{k}", "missense_variant"] for k in range(4)]
    # two outputs: the value with the largest magnitude, and which output it is
    table = veff.score_variants(model, vcf, genome, return_predictions=True, scores=("diff",))["diff"]
    for g, (_, row) in zip(got, table.iterrows(), strict=True):
        k = int(np.argmax(np.abs(row.to_numpy())))
        assert float(g[3]) == pytest.approx(float(row.iloc[k]), rel=1e-5)
        assert g[4] == table.columns[k]
    header_lines = _bcftools("view", "-h", str(out))
    assert "##INFO=<ID=VEFF_toy_DIFF_LABEL,Number=A,Type=String," in header_lines
    # filter on the label and the value together
    sel = _bcftools("view", "-H", "-i", f'INFO/VEFF_toy_DIFF_LABEL="{got[0][4]}"', str(out)).splitlines()
    assert {line.split("\t")[2] for line in sel} == {g[0] for g in got if g[4] == got[0][4]}


def test_kipoi_style_keys_are_valid_and_read_back(tmp_path, genome):
    rows = [("chr1", 30, "a", base("chr1", 30), other(base("chr1", 30)))]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    model = CallableModel(TwoOutputModel(11), name="toy", seq_length=11, layout=InputLayout.parse("L,4"))
    out = tmp_path / "k.vcf"
    veff.score_variants(model, vcf, genome, out, scores=("diff",), info_style="kipoi")
    text = out.read_text()
    assert "##INFO=<ID=KV_toy_DIFF,Number=.,Type=String," in text and "KV:" not in text
    res = subprocess.run(
        ["bcftools", "query", "-f", "%KV_toy_DIFF\\n", str(out)], capture_output=True, text=True
    )
    assert res.returncode == 0 and "[W::" not in res.stderr
    new = veff.read_scores(out)
    old = tmp_path / "old.vcf"  # the spelling of kipoi-veff (and of veff before): KV:<model>:<SCORE>
    old.write_text(text.replace("KV_toy_", "KV:toy:"))
    assert "KV:toy:DIFF" in old.read_text()
    assert veff.read_scores(old).equals(new)
    assert len(new) == 1 and list(new.columns[-2:]) == ["diff/a_frac", "diff/weighted"]
