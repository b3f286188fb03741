from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cyvcf2 import VCF
from helpers import CHR1, base, other, write_vcf
from toy_models import GCModel, TwoOutputModel

import veff
from veff.engine.threads import BackgroundWorker
from veff.models import CallableModel, InputLayout
from veff.writers.vcf import VcfWriter


def _model(fn, length):
    return CallableModel(fn, name="toy", seq_length=length, layout=InputLayout.parse("L,4"))


def _info(path: Path, tag: str) -> list[str | None]:
    return [rec.INFO.get(tag) for rec in VCF(str(path))]


def test_gc_model_c_to_a_diff_is_minus_one_over_l(genome, tmp_path):
    # find a C well inside chr1
    pos = next(i + 1 for i in range(50, 500) if CHR1[i] == "C")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", pos, "c2a", "C", "A")])
    length = 11
    res = veff.score_variants(
        _model(GCModel(length), length), vcf, genome, return_predictions=True, scores=["diff", "ref", "alt"]
    )
    ref_win = CHR1[pos - 1 - 5 : pos - 1 + 6].upper()
    gc = (ref_win.count("G") + ref_win.count("C")) / length
    assert res["diff"].iloc[0, 0] == pytest.approx(-1 / length, abs=1e-6)
    assert res["ref"].iloc[0, 0] == pytest.approx(gc, abs=1e-6)
    assert res["alt"].iloc[0, 0] == pytest.approx(gc - 1 / length, abs=1e-6)
    assert list(res["diff"].index) == [f"chr1:{pos}:C:A"]


def _mixed_rows():
    rows = []
    for k, pos in enumerate(range(40, 560, 23)):
        b = base("chr1", pos)
        rows.append(("chr1", pos, f"v{k}", b, other(b)))
    return rows


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_results_do_not_depend_on_batch_size(genome, tmp_path, batch_size):
    vcf = write_vcf(tmp_path / "in.vcf", _mixed_rows())
    base_res = veff.score_variants(
        _model(TwoOutputModel(21), 21), vcf, genome, rc=True, return_predictions=True, batch_size=1000
    )
    res = veff.score_variants(
        _model(TwoOutputModel(21), 21), vcf, genome, rc=True, return_predictions=True, batch_size=batch_size
    )
    np.testing.assert_allclose(res["diff"].to_numpy(), base_res["diff"].to_numpy(), atol=1e-6)


def test_every_record_is_written_in_order_with_columns_kept(genome, tmp_path):
    b = base("chr1", 100)
    rows = [
        ("chr1", 100, "snv", b, other(b), "DP=5"),
        ("chrUn", 10, "unknown", "A", "C", "DP=6"),
        ("chr1", 101, "mismatch", other(base("chr1", 101)), "A", "DP=7"),
        ("chr1", 3, "edge", base("chr1", 3), other(base("chr1", 3))),
        ("chr1", 120, "symbolic", base("chr1", 120), "<DEL>"),
        ("chr1", 130, "noalt", base("chr1", 130), "."),
        ("2", 50, "nochr", base("2", 50), other(base("2", 50))),
        ("chrM", 25, "mito", base("chrM", 25), other(base("chrM", 25))),
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    out = tmp_path / "out.vcf"
    summary = veff.score_variants(_model(GCModel(11), 11), vcf, genome, out)
    assert summary.records == len(rows)
    recs = list(VCF(str(out)))
    assert [r.ID for r in recs] == [r[2] for r in rows]
    assert [r.INFO.get("DP") for r in recs[:3]] == [5, 6, 7]
    assert all(r.FILTER is None and r.gt_types is not None for r in recs)
    status = {r.ID: r.INFO.get("VEFF_toy_STATUS") for r in recs}
    assert status["snv"] == f"{other(b)}|ok"
    assert status["unknown"] == "C|unknown_contig"
    assert status["mismatch"] == "A|ref_mismatch"
    assert status["edge"].endswith("|contig_edge")
    assert status["symbolic"] == "<DEL>|unsupported_allele"
    assert status["noalt"] == ".|no_alt"
    assert status["nochr"].endswith("|ok")
    assert status["mito"].endswith("|ok")
    diffs = {r.ID: r.INFO.get("VEFF_toy_DIFF") for r in recs}
    assert diffs["unknown"] == "C|."
    assert diffs["noalt"] is None
    assert diffs["edge"] is not None and "|." not in diffs["edge"]


def test_contig_edge_window_is_padded_with_n(genome, tmp_path):
    # position 2 with L=11: 3 bases before the contig start are N (zero one-hot, not GC)
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 2, "e", base("chr1", 2), other(base("chr1", 2)))])
    res = veff.score_variants(_model(GCModel(11), 11), vcf, genome, return_predictions=True, scores=["ref"])
    window = CHR1[:8].upper()
    assert res["ref"].iloc[0, 0] == pytest.approx((window.count("G") + window.count("C")) / 11)


def test_ref_mismatch_score_policy_writes_vcf_ref(genome, tmp_path):
    pos = next(i + 1 for i in range(50, 500) if CHR1[i] == "A")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", pos, "m", "G", "C")])
    res = veff.score_variants(
        _model(GCModel(11), 11),
        vcf,
        genome,
        return_predictions=True,
        scores=["diff", "ref"],
        ref_mismatch="score",
    )
    win = CHR1[pos - 6 : pos + 5].upper()
    gc = (win.count("G") + win.count("C")) / 11
    assert res["ref"].iloc[0, 0] == pytest.approx(gc + 1 / 11)  # the A was replaced by the VCF's G
    assert res["diff"].iloc[0, 0] == pytest.approx(0.0, abs=1e-7)  # G -> C keeps GC


def test_multiallelic_reference_predicted_once(genome, tmp_path):
    b = base("chr1", 300)
    alts = ",".join(x for x in "ACGT" if x != b)
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 300, "m", b, alts)])
    fn = GCModel(11)
    veff.score_variants(_model(fn, 11), vcf, genome, tmp_path / "o.vcf", batch_size=1)
    assert fn.seen == 1 + 3 + 1  # one ref, three alts, plus the one-window probe
    fn_rc = GCModel(11)
    veff.score_variants(_model(fn_rc, 11), vcf, genome, tmp_path / "o2.vcf", rc=True, batch_size=100)
    assert fn_rc.seen - fn_rc.blank == 2 * (1 + 3)  # the all-N probe and padding rows aside
    assert fn_rc.calls == 1 + 1  # probe + one forward call for ref, alts and their rc
    assert fn_rc.shapes == [1, 100]  # the last batch is padded to the batch size


def test_every_forward_call_has_the_batch_size(genome, tmp_path, monkeypatch):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(20, 517, 7)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    monkeypatch.setattr("veff.run.stages._MEMORY_BUDGET", 1)  # chunks of 16 records: 64 sequences
    fn = GCModel(11)
    small = veff.score_variants(
        _model(fn, 11), vcf, genome, scores=["diff"], rc=True, batch_size=24, return_predictions=True
    )["diff"]
    assert set(fn.shapes[1:]) == {24}  # after the probe, full batches only, across chunk boundaries
    assert fn.seen - 1 == 12 * 24 and fn.blank - 1 == 12 * 24 - 4 * 71  # 4 padding rows, none twice
    monkeypatch.undo()
    whole = veff.score_variants(
        _model(GCModel(11), 11),
        vcf,
        genome,
        scores=["diff"],
        rc=True,
        batch_size=1000,
        return_predictions=True,
    )["diff"]
    pd.testing.assert_frame_equal(small, whole)


def test_a_small_run_is_not_padded_to_a_full_batch(genome, tmp_path):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in (30, 40, 50)]
    alts = ",".join(b for b in "ACGT" if b != base("chr1", 60))[:3]
    rows.append(("chr1", 60, "m60", base("chr1", 60), alts))  # 2 ALTs: 2 + 2 + 2 + 3 alleles
    fn = GCModel(11)
    veff.score_variants(
        _model(fn, 11), write_vcf(tmp_path / "s.vcf", rows), genome, rc=True, return_predictions=True
    )
    assert fn.shapes[1:] == [32]  # 9 alleles x 2 strands = 18 sequences: one batch of 32, not 4096
    assert fn.blank - 1 == 32 - 18
    many = [
        ("chr1", 20 + k % 400, f"v{k}", base("chr1", 20 + k % 400), other(base("chr1", 20 + k % 400)))
        for k in range(2100)
    ]  # 4,200 alleles: past the small-run limit, the usual batch size
    fn = GCModel(11)
    veff.score_variants(
        _model(fn, 11), write_vcf(tmp_path / "m.vcf", many), genome, rc=False, return_predictions=True
    )
    assert set(fn.shapes[1:]) == {4096}


def test_restriction_bed_shifts_window_and_marks_outside(genome, tmp_path):
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t100\t130\tregion_a\nchr1\t300\t305\ttoo_short\n")
    rows = [
        ("chr1", 103, "near_start", base("chr1", 103), other(base("chr1", 103))),
        ("chr1", 200, "outside", base("chr1", 200), other(base("chr1", 200))),
        ("chr1", 302, "short", base("chr1", 302), other(base("chr1", 302))),
    ]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    res = veff.score_variants(
        _model(GCModel(11), 11), vcf, genome, tmp_path / "o.vcf", restriction_bed=bed, scores=["ref"]
    )
    assert res.statuses == {"ok": 1, "not_in_region": 2}
    got = veff.score_variants(
        _model(GCModel(11), 11), vcf, genome, restriction_bed=bed, scores=["ref"], return_predictions=True
    )["ref"]
    win = CHR1[100:111].upper()  # shifted right to start at the interval start
    assert got.iloc[0, 0] == pytest.approx((win.count("G") + win.count("C")) / 11)


def test_model_outputs_selection_and_labels(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _mixed_rows()[:3])
    out = tmp_path / "o.vcf"
    veff.score_variants(_model(TwoOutputModel(11), 11), vcf, genome, out, model_outputs=["weighted"])
    header = VCF(str(out)).get_header_type("VEFF_toy_DIFF")
    assert header["Description"].endswith('Format: ALLELE|weighted"')
    assert all(v.count("|") == 1 for v in _info(out, "VEFF_toy_DIFF"))
    with pytest.raises(veff.InputError, match="model output 'nope' not found"):
        veff.score_variants(_model(TwoOutputModel(11), 11), vcf, genome, out, model_outputs=["nope"])


def test_failed_run_leaves_no_output(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _mixed_rows())

    class Boom:
        calls = 0

        def __call__(self, x):
            Boom.calls += 1
            if Boom.calls > 1:
                raise RuntimeError("model exploded")
            return x[:, 0, :1]

    out = tmp_path / "out.vcf.gz"
    with pytest.raises(RuntimeError, match="exploded"):
        veff.score_variants(_model(Boom(), 11), vcf, genome, out)
    assert list(tmp_path.iterdir()) == [vcf] or sorted(p.name for p in tmp_path.iterdir()) == [
        "genome.fa",
        "genome.fa.fai",
        "in.vcf",
    ]


def test_kipoi_info_style(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _mixed_rows()[:2])
    out = tmp_path / "o.vcf"
    veff.score_variants(
        _model(GCModel(11), 11), vcf, genome, out, info_style="kipoi", scores=["diff", "logit"]
    )
    vals = _info(out, "KV_toy_DIFF")
    assert all(len(v.split(".")[1]) == 8 for v in vals)  # %.8f


def test_kipoi_centering_moves_window_one_base(genome, tmp_path):
    pos = 250
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", pos, "x", base("chr1", pos), other(base("chr1", pos)))])
    exact = veff.score_variants(
        _model(GCModel(11), 11), vcf, genome, return_predictions=True, scores=["ref"]
    )["ref"].iloc[0, 0]
    kipoi = veff.score_variants(
        _model(GCModel(11), 11), vcf, genome, return_predictions=True, scores=["ref"], centering="kipoi"
    )["ref"].iloc[0, 0]
    gc = lambda s: (s.count("G") + s.count("C")) / 11
    assert exact == pytest.approx(gc(CHR1[pos - 6 : pos + 5].upper()))
    assert kipoi == pytest.approx(gc(CHR1[pos - 5 : pos + 6].upper()))


def test_needs_sequence_length(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _mixed_rows()[:1])
    with pytest.raises(veff.InputError, match="seq_length"):
        veff.score_variants(CallableModel(lambda x: x[:, 0, :1]), vcf, genome, tmp_path / "o.vcf")


def test_info_prefix_names_every_tag(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _mixed_rows()[:2])
    out = tmp_path / "o.vcf"
    veff.score_variants(
        _model(GCModel(11), 11), vcf, genome, out, info_prefix="MYLAB", scores=["diff", "alt"]
    )
    rec = next(iter(VCF(str(out))))
    assert {k for k, _ in rec.INFO} >= {"MYLAB_DIFF", "MYLAB_ALT", "MYLAB_STATUS"}
    with pytest.raises(veff.InputError, match="not a valid VCF INFO key"):
        veff.score_variants(_model(GCModel(11), 11), vcf, genome, out, info_prefix="my lab")


def test_unsorted_input_keeps_scored_output_without_index(genome, tmp_path):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in (300, 50, 200)]
    vcf = write_vcf(tmp_path / "unsorted.vcf", rows)
    out = tmp_path / "out.vcf.gz"
    (tmp_path / "out.vcf.gz.tbi").write_text("stale index of an earlier run")
    with pytest.warns(veff.VeffWarning, match="not sorted"):
        veff.score_variants(_model(GCModel(11), 11), vcf, genome, out)
    assert [r.POS for r in VCF(str(out))] == [300, 50, 200]
    assert all(_info(out, "VEFF_toy_DIFF"))
    assert not (tmp_path / "out.vcf.gz.tbi").exists()
    assert not [p for p in tmp_path.iterdir() if "veff-tmp" in p.name]


def test_threads_are_set_for_the_run_and_restored(genome, tmp_path):
    torch = pytest.importorskip("torch")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 100, "v", base("chr1", 100), other(base("chr1", 100)))])
    seen = []

    def fn(x):
        seen.append(torch.get_num_threads())
        return x.sum(axis=(1, 2))[:, None]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        veff.score_variants(_model(fn, 11), vcf, genome, tmp_path / "o.vcf", threads=1)
        assert seen[-1] == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(veff.InputError, match="threads must be at least 1"):
        veff.score_variants(_model(fn, 11), vcf, genome, tmp_path / "o2.vcf", threads=0)


class _SlowGC(GCModel):
    """Slower than the writing, so that the writing moves to a background thread."""

    def __call__(self, x):
        time.sleep(0.003)
        return super().__call__(x)


def test_background_writing_keeps_the_output(genome, tmp_path, monkeypatch):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(20, 517, 7)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    fast = tmp_path / "fast.vcf"
    veff.score_variants(_model(GCModel(11), 11), vcf, genome, fast, rc=True, batch_size=8)
    started = []
    monkeypatch.setattr(
        "veff.run.stages.BackgroundWorker", lambda fn: started.append(fn) or BackgroundWorker(fn)
    )
    monkeypatch.setattr("veff.run.stages._MEMORY_BUDGET", 1)  # chunks of 16 records
    slow = tmp_path / "slow.vcf"
    veff.score_variants(_model(_SlowGC(11), 11), vcf, genome, slow, rc=True, batch_size=8)
    assert len(started) == 1
    strip = [line for line in fast.read_text().splitlines() if not line.startswith("##veff")]
    assert strip == [line for line in slow.read_text().splitlines() if not line.startswith("##veff")]


def test_a_failure_while_writing_in_the_background_leaves_no_output(genome, tmp_path, monkeypatch):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(20, 517, 7)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    monkeypatch.setattr("veff.run.stages._MEMORY_BUDGET", 1)
    real = VcfWriter.write_scored
    calls = []

    def failing(*args):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise OSError("disk full")
        real(*args)

    monkeypatch.setattr(VcfWriter, "write_scored", failing)
    with pytest.raises(veff.OutputError, match=r"cannot write \S*o\.vcf\.gz: disk full"):
        veff.score_variants(_model(_SlowGC(11), 11), vcf, genome, tmp_path / "o.vcf.gz", batch_size=8)
    assert calls[0] == "MainThread" and calls[2] == "veff-writer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa", "genome.fa.fai", "in.vcf"]
