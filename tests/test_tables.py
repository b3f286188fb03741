from __future__ import annotations

import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from cyvcf2 import VCF
from helpers import E2, EXAMPLE, HG19, base, other, write_fasta, write_vcf
from toy_models import TwoOutputModel

import veff
import veff.run.stages
from veff.cli import main
from veff.models import CallableModel, InputLayout
from veff.writers.table import META_COLUMNS, TableChunk, open_table

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"
FORMATS = ["tsv", "tsv.gz", "parquet", "h5"]


def _model(fn=None, length=11, layout="L,4"):
    fn = fn or TwoOutputModel(length)
    return CallableModel(fn, name="toy", seq_length=length, layout=InputLayout.parse(layout))


def _rows():
    b = base("chr1", 300)
    return [
        ("chr1", 300, "multi", b, ",".join(x for x in "ACGT" if x != b) + ",<DEL>"),
        ("chr1", 310, "noalt", base("chr1", 310), "."),
        ("chrUn", 10, "unknown", "A", "C"),
        ("2", 104, "del", "AA", "A"),  # left-aligned to 2:101 GA>G in the poly-A run
        ("chr1", 3, "edge", base("chr1", 3), other(base("chr1", 3))),
        ("chr1", 101, "mismatch", other(base("chr1", 101)), "A"),
        *(("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(40, 560, 37)),
    ]


@pytest.fixture
def inputs(genome, tmp_path):
    return write_vcf(tmp_path / "in.vcf", _rows()), genome


def _run(inputs, tmp_path, suffix, **kw):
    vcf, genome = inputs
    table = tmp_path / f"t.{suffix}"
    veff.score_variants(
        _model(), vcf, genome, kw.pop("output", None), table=table, scores=["diff", "ref"], rc=True, **kw
    )
    return table


def test_all_formats_agree_with_each_other_the_vcf_and_return_predictions(inputs, tmp_path):
    vcf, genome = inputs
    out = tmp_path / "o.vcf"  # plain text: the input is not sorted, so it cannot be indexed
    frames = {}
    for k, fmt in enumerate(FORMATS):
        table = _run(inputs, tmp_path, fmt, output=out if k == 0 else None)
        frames[fmt] = veff.read_scores(table)
    first = frames["tsv"]
    for fmt in FORMATS[1:]:
        pd.testing.assert_frame_equal(frames[fmt], first)
    # every ALT of every record, in input order, with its status and the normalised allele
    assert len(first) == sum(max(1, len(r[4].split(","))) for r in _rows() if r[4] != ".") + 1
    assert first.loc["chr1:310:" + base("chr1", 310) + ":.", "status"] == "no_alt"
    row = first.loc["2:104:AA:A"]
    assert (row.norm_pos, row.norm_ref, row.norm_alt, row.status) == (101, "GA", "G", "ok")
    assert pd.isna(first.iloc[0].norm_pos) and pd.isna(first.iloc[0].norm_ref)
    assert first.filter(like="/").loc[first.status == "unknown_contig"].isna().all().all()
    # the VCF read back holds the same numbers (it does not record the normalised allele)
    from_vcf = veff.read_scores(out)
    pd.testing.assert_frame_equal(from_vcf, first.drop(columns=["norm_pos", "norm_ref", "norm_alt"]))
    # and so does return_predictions
    preds = veff.score_variants(
        _model(), vcf, genome, scores=["diff", "ref"], rc=True, return_predictions=True
    )
    for score, df in preds.items():
        got = first.loc[df.index, [f"{score}/{lab}" for lab in df.columns]]
        np.testing.assert_array_equal(got.to_numpy(), df.to_numpy())
    assert set(first.index[first.status.isin(["ok", "contig_edge"])]) == set(preds["diff"].index)


def test_table_columns_and_hdf5_layout(inputs, tmp_path):
    tsv = _run(inputs, tmp_path, "tsv")
    header = tsv.read_text().splitlines()[0].split("\t")
    assert header == [*META_COLUMNS, "diff/a_frac", "diff/weighted", "ref/a_frac", "ref/weighted"]
    h5 = _run(inputs, tmp_path, "h5")
    with h5py.File(h5) as f:
        assert f.attrs["format"] == "veff-scores" and f.attrs["format_version"] == "1"
        assert list(f.attrs["scores"]) == ["diff", "ref"]
        assert f["labels"].asstr()[()].tolist() == ["a_frac", "weighted"]
        n = f["variants/key"].shape[0]
        assert f["scores/diff"].shape == (n, 2) and f["scores/diff"].dtype == np.float32
        assert f["scores/diff"].maxshape == (None, 2) and f["scores/diff"].compression == "gzip"
        assert f["variants/key"].asstr()[0] == f"chr1:300:{base('chr1', 300)}:A"
    meta = pq.read_schema(_run(inputs, tmp_path, "parquet")).metadata[b"veff"]
    assert b'"format": "veff-scores"' in meta


def test_table_keeps_every_output_while_vcf_holds_the_subset_or_the_max(inputs, tmp_path):
    vcf, genome = inputs
    sub = tmp_path / "sub.vcf"
    table = _run(inputs, tmp_path, "parquet", output=sub, model_outputs=["weighted"])
    full = veff.read_scores(table)
    assert "diff/a_frac" in full and "diff/weighted" in full
    assert list(veff.read_scores(sub).filter(like="/").columns) == ["diff/weighted", "ref/weighted"]

    agg = tmp_path / "agg.vcf"
    _run(inputs, tmp_path, "h5", output=agg, info_aggregate="max_abs")
    desc = VCF(str(agg)).get_header_type("VEFF_toy_DIFF")["Description"]
    assert desc.endswith('Format: ALLELE|max_abs|label"')
    rec = next(iter(VCF(str(agg))))
    entries = rec.INFO["VEFF_toy_DIFF"].split(",")
    assert all(e.count("|") == 2 for e in entries) and entries[-1] == "<DEL>|.|."
    back = veff.read_scores(agg)
    diff = full[["diff/a_frac", "diff/weighted"]].to_numpy()
    scored = ~np.isnan(diff).all(axis=1)
    pick = np.abs(diff[scored]).argmax(axis=1)
    best = diff[scored][np.arange(len(pick)), pick]
    np.testing.assert_array_equal(back["diff/max_abs"].to_numpy()[scored], best)
    assert back["diff/max_abs_label"][scored].tolist() == [["a_frac", "weighted"][k] for k in pick]
    long = veff.read_scores(agg, wide=False)
    assert len(long) == 2 * len(back) and set(long.label.dropna()) <= {"a_frac", "weighted"}
    with pytest.raises(veff.InputError, match="not available with --info-style kipoi"):
        veff.score_variants(
            _model(), vcf, genome, tmp_path / "k.vcf", info_style="kipoi", info_aggregate="max_abs"
        )


def test_unknown_table_suffix_is_a_clear_error_before_any_work(inputs, tmp_path):
    vcf, genome = inputs
    calls = []
    with pytest.raises(veff.InputError, match=r"t\.csv: unknown table format; use a name ending in \.tsv"):
        veff.score_variants(
            _model(lambda x: calls.append(1) or x[:, 0, :1]), vcf, genome, table=tmp_path / "t.csv"
        )
    assert calls == []
    with pytest.raises(veff.InputError, match="nothing to do"):
        veff.score_variants(_model(), vcf, genome)


def test_failed_run_leaves_no_table(inputs, tmp_path):
    vcf, genome = inputs

    def boom(x):
        if len(x) > 1:
            raise RuntimeError("model exploded")
        return x[:, 0, :1]

    for fmt in FORMATS:
        with pytest.raises(RuntimeError, match="exploded"):
            veff.score_variants(_model(boom), vcf, genome, tmp_path / "o.vcf", table=tmp_path / f"t.{fmt}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa", "genome.fa.fai", "in.vcf"]


def _snv_vcf(tmp_path, n, seq):
    lines = []
    for k in range(n):
        pos = 20 + k // 3
        ref = seq[pos - 1]
        lines.append(f"chr1\t{pos}\t.\t{ref}\t{[x for x in 'ACGT' if x != ref][k % 3]}\t.\t.\t.\n")
    path = tmp_path / "many.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=chr1,length=20000>\n"
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "".join(lines)
    )
    return path


def test_many_records_stream_one_chunk_at_a_time(tmp_path, monkeypatch):
    seq = "".join(np.random.default_rng(3).choice(list("ACGT"), 20000))
    genome = write_fasta(tmp_path / "big.fa", {"chr1": seq})
    n = 50_000
    vcf = _snv_vcf(tmp_path, n, seq)
    chunk = 2048
    monkeypatch.setattr(veff.run.stages, "_MEMORY_BUDGET", 11 * 16 * 2 * chunk)
    sizes = []
    write = TableChunk.from_windows

    def spy(ws, values, n_labels, **kw):
        sizes.append(len(ws))
        return write(ws, values, n_labels, **kw)

    monkeypatch.setattr(TableChunk, "from_windows", staticmethod(spy))
    model = CallableModel(
        lambda x: x[:, :, 1:3].sum(axis=1),
        name="cg",
        seq_length=11,
        layout=InputLayout.parse("L,4"),
        output_labels=("c", "g"),
    )
    out = tmp_path / "many.parquet"
    summary = veff.score_variants(model, vcf, genome, table=out)
    assert summary.records == n and max(sizes) == chunk and sum(sizes) == n
    meta = pq.ParquetFile(out).metadata
    groups = [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]
    assert groups == [n]  # row groups of a fixed size (65536 rows for two outputs), not one per chunk
    back = veff.read_scores(out)
    expect = np.array(
        [
            {"C": 1, "G": 0}.get(a, 0) - {"C": 1, "G": 0}.get(r, 0)
            for r, a in zip(back.ref, back.alt, strict=True)
        ],
        np.float32,
    )
    np.testing.assert_array_equal(back["diff/c"].to_numpy(), expect)


def _chunk(k, rows):
    pos = np.arange(k * rows, (k + 1) * rows, dtype=np.int64) + 1
    text = [f"id{p}" for p in pos.tolist()]
    return TableChunk(
        ["chr1"] * rows,
        pos,
        text,
        ["A"] * rows,
        ["C"] * rows,
        np.zeros(rows, np.int64),
        [""] * rows,
        [""] * rows,
        ["ok"] * rows,
        {"diff": np.full((rows, 8), k, np.float32), "ref": np.ones((rows, 8), np.float32)},
    )


def _stream(path, n_chunks, rows):
    """Peak traced memory of writing n_chunks chunks to ``path``."""
    tracemalloc.start()
    try:
        base_now = tracemalloc.get_traced_memory()[0]
        writer = open_table(path, scores=["diff", "ref"], labels=[f"t{k}" for k in range(8)])
        for k in range(n_chunks):
            writer.write(_chunk(k, rows))
        writer.close()
        return tracemalloc.get_traced_memory()[1] - base_now
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["tsv.gz", "h5"])
def test_writer_memory_does_not_grow_with_the_table(tmp_path, fmt):
    rows, n_chunks = 400, 48
    short = _stream(tmp_path / f"short.{fmt}", 3, rows)
    peak = _stream(tmp_path / f"long.{fmt}", n_chunks, rows)
    tracemalloc.start()
    whole = [_chunk(k, rows) for k in range(n_chunks)]
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del whole
    assert peak < 1.5 * short  # 16x the rows, same peak: one chunk at a time
    assert peak < held / 2  # and well below holding the rows of the table
    back = veff.read_scores(tmp_path / f"long.{fmt}")
    assert len(back) == rows * n_chunks and back["diff/t3"].iloc[-1] == n_chunks - 1


def _cli(args):
    return CliRunner().invoke(
        main, ["score-variants", str(TORCH_MODEL), "--vcf", str(E2), "--fasta", str(HG19), "-q", *args]
    )


def test_cli_table_without_vcf_and_with_it(tmp_path):
    res = _cli(["--table", str(tmp_path / "t.tsv.gz")])
    assert res.exit_code == 0, res.output
    table = veff.read_scores(tmp_path / "t.tsv.gz")
    assert len(table) == sum(len(r.ALT) for r in VCF(str(E2))) and (table.status == "ok").all()
    res = _cli(
        ["-o", str(tmp_path / "o.vcf"), "--table", str(tmp_path / "t.h5"), "--info-aggregate", "max_abs"]
    )
    assert res.exit_code == 0, res.output
    agg = veff.read_scores(tmp_path / "o.vcf")
    h5 = veff.read_scores(tmp_path / "t.h5")
    np.testing.assert_array_equal(agg["diff/max_abs"].abs(), h5.filter(like="/").abs().max(axis=1))
    assert (agg["diff/max_abs_label"] == "donor").all()


def test_cli_errors_are_one_line(tmp_path):
    res = _cli(["--table", str(tmp_path / "t.xlsx")])
    assert res.exit_code == 1
    assert res.output.startswith("veff: error:") and res.output.count("\n") == 1
    assert "unknown table format" in res.output
    res = _cli([])
    assert res.exit_code == 2 and "give -o/--output, --table or --dump-sequences" in res.output


class Recorder:
    """Records every batch it receives (in the model's layout); output: channel sums."""

    def __init__(self):
        self.batches = []

    def __call__(self, x):
        self.batches.append(np.array(x))
        return x.sum(axis=2)  # (N, 4, L) -> (N, 4)


def test_dump_matches_what_the_model_receives(genome, tmp_path):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in (2, 60, 200, 333)]
    rows.append(("chrUn", 5, "skipped", "A", "C"))
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    seen = Recorder()
    veff.score_variants(_model(seen, 21, "4,L"), vcf, genome, return_predictions=True, rc=True)
    received = np.concatenate(seen.batches[1:])  # after the one-window probe: ref, alt, ref_rc, alt_rc
    idle = Recorder()
    dump = tmp_path / "seqs.h5"
    summary = veff.score_variants(_model(idle, 21, "4,L"), vcf, genome, dump_sequences=dump, rc=True)
    assert idle.batches == [] and summary.records == 5  # no model call, not even the probe
    with h5py.File(dump) as f:
        assert f.attrs["format"] == "veff-sequences" and f.attrs["layout"] == "4,L"
        assert f["ref"].shape == (4, 4, 21) and f["ref"].dtype == np.float32
        dumped = np.concatenate([f[k][()] for k in ("ref", "alt", "ref_rc", "alt_rc")])
        keys = f["variants/key"].asstr()[()].tolist()
        assert f["variants/window_start"][()].tolist() == [-9, 49, 189, 322]
        assert f["variants/status"].asstr()[()].tolist() == ["contig_edge", "ok", "ok", "ok"]
    np.testing.assert_array_equal(dumped, received[: len(dumped)])
    assert not received[len(dumped) :].any()  # the last batch is padded with all-N windows
    assert keys == [f"chr1:{r[1]}:{r[3]}:{r[4]}" for r in rows[:4]]


def test_dump_repeats_the_shared_reference_per_alt_and_runs_alone(genome, tmp_path):
    b = base("chr1", 300)
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 300, "m", b, ",".join(x for x in "ACGT" if x != b))])
    dump = tmp_path / "d.h5"
    veff.score_variants(_model(), vcf, genome, dump_sequences=dump)
    with h5py.File(dump) as f:
        ref, alt = f["ref"][()], f["alt"][()]
        assert "ref_rc" not in f
    assert ref.shape == (3, 11, 4) and (ref == ref[0]).all()
    assert (ref != alt).any(axis=(1, 2)).all() and ((ref != alt).sum(axis=(1, 2)) == 2).all()
    with pytest.raises(veff.InputError, match="dump_sequences runs no model"):
        veff.score_variants(_model(), vcf, genome, tmp_path / "o.vcf", dump_sequences=dump)


def test_cli_dump_sequences(tmp_path):
    dump = tmp_path / "d.h5"
    res = _cli(["--dump-sequences", str(dump)])
    assert res.exit_code == 0, res.output
    with h5py.File(dump) as f:
        n = sum(len(r.ALT) for r in VCF(str(E2)))
        assert f["alt"].shape[0] == n and f["variants/key"].shape == (n,)
        assert f["alt"].compression == "gzip" and f["alt"].maxshape[0] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]


def test_wide_model_tsv_is_formatted_in_blocks(inputs, tmp_path, monkeypatch):
    vcf, genome = inputs
    import veff.writers._table_tsv as table_mod

    monkeypatch.setattr(table_mod, "_TSV_VALUES_PER_BLOCK", 150)  # 1 row per block for 2 x 50 values
    wide = CallableModel(
        lambda x: np.repeat(x.sum(axis=1), 13, axis=1)[:, :50],
        name="wide",
        seq_length=11,
        layout=InputLayout.parse("L,4"),
    )
    for fmt in ("tsv", "parquet"):
        veff.score_variants(wide, vcf, genome, table=tmp_path / f"w.{fmt}", scores=["diff", "alt"])
    tsv, parquet = veff.read_scores(tmp_path / "w.tsv"), veff.read_scores(tmp_path / "w.parquet")
    assert tsv.shape == (parquet.shape[0], 9 + 100) and "alt/49" in tsv
    pd.testing.assert_frame_equal(tsv, parquet)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_vcf_gives_an_empty_table(genome, tmp_path, fmt):
    vcf = write_vcf(tmp_path / "in.vcf", [])
    veff.score_variants(_model(), vcf, genome, table=tmp_path / f"t.{fmt}")
    back = veff.read_scores(tmp_path / f"t.{fmt}")
    assert len(back) == 0 and list(back.columns)[-2:] == ["diff/a_frac", "diff/weighted"]


def _unscored_rows(case):
    """Records of which a whole chunk (4096 records for an 11-bp model) has nothing to score."""
    if case == "unknown_contig":
        head = [("chrUn", p, f"u{p}", "A", "C") for p in range(1, 5001)]
    elif case == "symbolic":
        head = [("chr1", 1 + p % 590, f"s{p}", base("chr1", 1 + p % 590), "<DEL>") for p in range(5000)]
    else:  # every REF disagrees with the FASTA
        head = [("chr1", 1 + p % 590, f"m{p}", other(base("chr1", 1 + p % 590)), "A") for p in range(5000)]
    tail = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(40, 560, 37)]
    return head, tail


@pytest.mark.parametrize("case", ["unknown_contig", "symbolic", "ref_mismatch"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_chunk_with_nothing_scored_adds_its_rows_with_statuses(genome, tmp_path, fmt, case):
    head, tail = _unscored_rows(case)
    vcf = write_vcf(tmp_path / "in.vcf", head + tail)
    table = tmp_path / f"t.{fmt}"
    summary = veff.score_variants(_model(), vcf, genome, table=table, scores=["diff", "ref"])
    assert summary.records == len(head) + len(tail)
    back = veff.read_scores(table)
    assert len(back) == len(head) + len(tail)
    assert back.id.tolist() == [r[2] for r in head + tail]
    want = {
        "unknown_contig": "unknown_contig",
        "symbolic": "unsupported_allele",
        "ref_mismatch": "ref_mismatch",
    }
    assert set(back.status[: len(head)]) == {want[case]}
    assert back.filter(like="/").iloc[: len(head)].isna().all().all()
    preds = veff.score_variants(_model(), vcf, genome, scores=["diff", "ref"], return_predictions=True)
    assert list(preds["diff"].index) == list(back.index[len(head) :])
    for score, df in preds.items():
        np.testing.assert_array_equal(back.loc[df.index, [f"{score}/{c}" for c in df.columns]], df)
