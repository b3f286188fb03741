"""The annotated VCF keeps every column the user gave byte for byte; re-annotation replaces a prefix."""

from __future__ import annotations

import gzip
import subprocess
import warnings
from pathlib import Path

import pytest
from helpers import DATA, HG38
from toy_models import GCModel, TwoOutputModel

import veff
from veff.models import CallableModel, InputLayout

ODD = DATA / "multisample_odd_numbers.vcf"  # 20 samples: 50.00, 0.100, 1e-05, missing sub-fields


def _model(fn, name="toy"):
    return CallableModel(fn, name=name, seq_length=11, layout=InputLayout.parse("L,4"))


def _lines(path: Path) -> tuple[list[bytes], list[bytes]]:
    """(header lines, data lines) of a VCF, as bytes without line ends."""
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    return [x for x in lines[:-1] if x.startswith(b"#")], [x for x in lines[:-1] if not x.startswith(b"#")]


def _check_kept(source: Path, out: Path, new_keys: set[bytes]) -> list[list[bytes]]:
    """Every non-INFO column of ``out`` is the bytes of ``source``; INFO is source's then new entries."""
    _, before = _lines(source)
    _, after = _lines(out)
    assert len(after) == len(before)
    added_rows = []
    for a, b in zip(before, after, strict=True):
        ca, cb = a.split(b"\t"), b.split(b"\t")
        assert len(cb) == len(ca) == 9 + 20
        assert cb[:7] == ca[:7]
        assert cb[8:] == ca[8:]  # FORMAT and all 20 samples, untouched
        info = cb[7]
        if ca[7] == b".":
            added = info.split(b";")
        else:
            assert info.startswith(ca[7] + b";")
            added = info[len(ca[7]) + 1 :].split(b";")
        keys = {e.split(b"=", 1)[0] for e in added}
        assert keys == new_keys or (ca[4] == b"." and keys == {b"VEFF_toy_STATUS"})
        added_rows.append(added)
    return added_rows


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz"])
def test_every_column_but_info_is_the_input_bytes(tmp_path, suffix):
    out = tmp_path / f"out{suffix}"
    summary = veff.score_variants(_model(TwoOutputModel(11)), ODD, HG38, out, scores=["diff", "logit"])
    assert summary.records == 24
    keys = {b"VEFF_toy_DIFF", b"VEFF_toy_LOGIT", b"VEFF_toy_STATUS"}
    keys |= {b"VEFF_toy_DIFF_VALUE", b"VEFF_toy_DIFF_LABEL", b"VEFF_toy_LOGIT_VALUE", b"VEFF_toy_LOGIT_LABEL"}
    added = _check_kept(ODD, out, keys)
    # a record without ALT gets only its status; every other one all the tags
    assert sum(len(a) == 1 for a in added) == 3
    # the input spellings survive (htslib would write 50, 0.1, -0.5 and pad missing sub-fields)
    _, data = _lines(out)
    text = b"\n".join(data)
    for spelling in (b"\t50.00\t", b"AF=0.100", b"\t1e-05\t", b"-0.50", b"1E+03", b"MQ=60.00", b"\t0/1\t"):
        assert spelling in text
    # bcftools reads every record back, samples included
    view = subprocess.run(["bcftools", "view", "-H", str(out)], capture_output=True, text=True, check=True)
    assert len(view.stdout.splitlines()) == 24
    query = subprocess.run(
        ["bcftools", "query", "-f", "%POS[\t%GT]\n", str(out)], capture_output=True, text=True, check=True
    )
    assert [len(x.split("\t")) for x in query.stdout.splitlines()] == [21] * 24
    if suffix == ".vcf.gz":
        assert Path(f"{out}.tbi").is_file()


def test_bcf_output_has_the_content_of_the_text_output(tmp_path):
    model = _model(TwoOutputModel(11))
    veff.score_variants(model, ODD, HG38, tmp_path / "o.vcf")
    veff.score_variants(model, ODD, HG38, tmp_path / "o.bcf")

    def records(path):
        out = subprocess.run(
            ["bcftools", "view", "-H", str(path)], capture_output=True, text=True, check=True
        )
        return out.stdout

    assert records(tmp_path / "o.bcf") == records(tmp_path / "o.vcf")


def test_bcf_input_is_annotated_through_htslib(tmp_path):
    bcf = tmp_path / "in.bcf"
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(bcf), str(ODD)], check=True)
    model = _model(TwoOutputModel(11))
    veff.score_variants(model, bcf, HG38, tmp_path / "from_bcf.vcf")
    veff.score_variants(model, ODD, HG38, tmp_path / "from_vcf.vcf")
    _, a = _lines(tmp_path / "from_bcf.vcf")
    _, b = _lines(tmp_path / "from_vcf.vcf")
    # the same veff entries, after INFO as htslib formats it
    assert [x.split(b"\t")[7].split(b"VEFF_")[1:] for x in a] == [
        x.split(b"\t")[7].split(b"VEFF_")[1:] for x in b
    ]


def test_reannotating_replaces_every_tag_of_the_prefix_and_says_so(tmp_path):
    first = tmp_path / "first.vcf"
    veff.score_variants(_model(GCModel(11)), ODD, HG38, first, scores=["diff", "logit", "ref"])
    other = tmp_path / "other.vcf"
    veff.score_variants(_model(GCModel(11), name="other"), first, HG38, other, scores=["alt"])
    again = tmp_path / "again.vcf"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        veff.score_variants(_model(GCModel(11)), other, HG38, again, scores=["diff"])
    replaced = [
        w for w in caught if issubclass(w.category, veff.VeffWarning) and "replaced" in str(w.message)
    ]
    assert len(replaced) == 1
    assert "VEFF_toy_LOGIT" in str(replaced[0].message) and "VEFF_toy_REF" in str(replaced[0].message)
    assert "VEFF_toy_REF_VALUE" in str(replaced[0].message)  # the numeric tags of the old scores too
    header, data = _lines(again)
    declared = [h.split(b",")[0][len(b"##INFO=<ID=") :] for h in header if h.startswith(b"##INFO=<ID=")]
    assert [d for d in declared if d.startswith(b"VEFF_")] == [
        b"VEFF_other_ALT",
        b"VEFF_other_ALT_VALUE",
        b"VEFF_other_STATUS",
        b"VEFF_toy_DIFF",
        b"VEFF_toy_DIFF_VALUE",
        b"VEFF_toy_STATUS",
    ]
    assert declared.count(b"VEFF_toy_DIFF") == 1
    # the other model's entries stay as they were; the toy entries are the new run's, appended
    _, before = _lines(other)
    for a, b in zip(before, data, strict=True):
        old = [e for e in a.split(b"\t")[7].split(b";") if not e.startswith(b"VEFF_toy_")]
        new = b.split(b"\t")[7].split(b";")
        assert [e.split(b"=")[0] for e in new[len(old) :]] in (
            [b"VEFF_toy_DIFF", b"VEFF_toy_DIFF_VALUE", b"VEFF_toy_STATUS"],
            [b"VEFF_toy_STATUS"],
        )
        assert new[: len(old)] == old
        assert b.split(b"\t")[8:] == a.split(b"\t")[8:]
    fresh = tmp_path / "fresh.vcf"
    veff.score_variants(_model(GCModel(11)), ODD, HG38, fresh, scores=["diff"])
    assert veff.read_scores(again, prefix="VEFF_toy").equals(veff.read_scores(fresh))


def test_no_warning_without_an_earlier_run(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", veff.VeffWarning)
        veff.score_variants(_model(GCModel(11)), ODD, HG38, tmp_path / "o.vcf")
