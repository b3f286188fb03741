"""Sharded runs on a Dask cluster (veff.distributed.driver): the same bytes as a run in one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import CHR2, CHRM, write_fasta
from toy_models import TwoOutputModel

import veff
from veff.cli import main
from veff.errors import InputError
from veff.io.vcf import VcfReader
from veff.io.vcf_index import build_index, read_index
from veff.models import CallableModel, InputLayout

distributed = pytest.importorskip("distributed")

import veff.distributed.driver as vd  # noqa: E402

L = 21

# chr1 is long enough (20 kb) for the index to cut it (1 kb windows in the index veff builds)
_rng = np.random.default_rng(11)
LONG = "".join(_rng.choice(list("ACGT"), 20_000))
GENOME = {"chr1": LONG, "2": CHR2, "chrM": CHRM}

HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=20000>
##contig=<ID=2,length=300>
##contig=<ID=chrM,length=50>
##contig=<ID=chrUn,length=1000>
##contig=<ID=chrX,length=5000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##INFO=<ID=END,Number=1,Type=Integer,Description="End of a symbolic allele">
##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""


def _ref(chrom: str, pos: int, n: int = 1) -> str:
    return GENOME[chrom][pos - 1 : pos - 1 + n].upper()


def _other(b: str) -> str:
    return {"A": "C", "C": "G", "G": "T", "T": "A"}[b]


def _records() -> list[tuple]:
    """Records of every status; contigs in the file in the order chr1, chrUn, 2, chrM (not the header's)."""
    rows: list[tuple] = []
    for k, pos in enumerate(range(3, 19_990, 61)):
        b = _ref("chr1", pos)
        kind = k % 9
        if kind == 0:  # multi-allelic, with a spanning deletion and a missing ALT
            rows.append(("chr1", pos, f"m{k}", b, ",".join(x for x in "ACGT" if x != b) + ",*"))
        elif kind == 1:  # REF that disagrees with the FASTA
            rows.append(("chr1", pos, f"x{k}", _other(b), b))
        elif kind == 2:  # insertion
            rows.append(("chr1", pos, f"i{k}", b, b + "GATTACA"))
        elif kind == 3:  # deletion
            rows.append(("chr1", pos, f"d{k}", _ref("chr1", pos, 6), b))
        elif kind == 4:  # symbolic allele reaching far ahead (over later shard cuts)
            rows.append(("chr1", pos, f"s{k}", b, "<DEL>", f"DP=3;SVTYPE=DEL;END={pos + 2500}"))
        elif kind == 5:  # indel longer than max_indel_length
            rows.append(("chr1", pos, f"l{k}", _ref("chr1", pos, 60), b))
        elif kind == 6:  # no ALT
            rows.append(("chr1", pos, f"n{k}", b, "."))
        else:
            rows.append(("chr1", pos, f"v{k}", b, _other(b)))
        if k % 16 == 5:  # a second record at the same position
            rows.append(("chr1", pos, f"dup{k}", b, _other(_other(b))))
    # deletions across every 1 kb index window boundary (the places shards are cut)
    for cut in range(1024, 19_999, 1024):
        pos = cut - 3
        rows.append(("chr1", pos, f"cut{cut}", _ref("chr1", pos, 12), _ref("chr1", pos)))
    rows.sort(key=lambda r: r[1])  # stable: same-position records keep their order
    rows.append(("chr1", 19_998, "edge", _ref("chr1", 19_998), _other(_ref("chr1", 19_998))))
    rows += [("chrUn", p, f"u{p}", "A", "C") for p in (5, 50, 500)]  # in the header, not the FASTA
    rows += [("2", p, f"two{p}", _ref("2", p), _other(_ref("2", p))) for p in range(2, 300, 17)]
    rows += [("chrM", p, f"mt{p}", _ref("chrM", p), _other(_ref("chrM", p))) for p in (1, 25, 50)]
    return rows


def write_vcf(path: Path, rows: list[tuple], header: str = HEADER) -> Path:
    return helpers.write_vcf(path, rows, header)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("sharding")
    return write_fasta(d / "genome.fa", GENOME), write_vcf(d / "in.vcf", _records())


@pytest.fixture(scope="module")
def client():
    cluster = vd.local_cluster(2, processes=False)
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


def _model() -> CallableModel:
    return CallableModel(TwoOutputModel(L), name="toy", seq_length=L, layout=InputLayout.parse("L,4"))


def _same_bytes(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes(), f"{a.name} differs"


def _pair(tmp: Path, suffix: str) -> tuple[Path, Path]:
    (tmp / "one").mkdir(exist_ok=True)
    (tmp / "many").mkdir(exist_ok=True)
    return tmp / "one" / f"out.{suffix}", tmp / "many" / f"out.{suffix}"


KW = {"scores": ("diff", "logit"), "rc": True, "max_indel_length": 40}


@pytest.mark.parametrize(
    ("vcf_suffix", "table_suffix"),
    [("vcf.gz", "tsv"), ("vcf", "parquet"), ("bcf", "h5"), ("vcf.gz", "tsv.gz")],
)
def test_sharded_run_writes_the_bytes_of_one_process(data, client, tmp_path, vcf_suffix, table_suffix):
    fasta, vcf = data
    out1, out2 = _pair(tmp_path, vcf_suffix)
    tab1, tab2 = _pair(tmp_path, table_suffix)
    one = veff.score_variants(_model(), vcf, fasta, out1, table=tab1, **KW)
    many = veff.score_variants(_model(), vcf, fasta, out2, table=tab2, client=client, shard_records=20, **KW)
    assert many.distributed["shards"] > 10  # chr1 was cut into many pieces
    times = {"seconds": 0, "output": 0, "distributed": 0, "timings": 0}
    assert many.to_dict() | times == one.to_dict() | times
    assert set(one.statuses) >= {
        "ok",
        "contig_edge",
        "ref_mismatch",
        "unknown_contig",
        "unsupported_allele",
        "indel_too_long",
        "no_alt",
    }
    _same_bytes(out1, out2)
    _same_bytes(tab1, tab2)
    if vcf_suffix != "vcf":
        index = ".csi" if vcf_suffix == "bcf" else ".tbi"
        _same_bytes(Path(f"{out1}{index}"), Path(f"{out2}{index}"))
    names = {d: sorted(p.name for p in (tmp_path / d).iterdir()) for d in ("one", "many")}
    assert names["one"] == names["many"]  # no part files or work folder left


def test_a_real_cnn_gives_the_same_bytes_sharded(data, client, tmp_path):
    """A CPU conv net changes the last float bits with the batch shape; every batch has one shape."""
    fasta, vcf = data
    model = Path(__file__).parents[1] / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"
    out1, out2 = _pair(tmp_path, "vcf.gz")
    tab1, tab2 = _pair(tmp_path, "tsv")
    kw = {**KW, "batch_size": 64}
    veff.score_variants(model, vcf, fasta, out1, table=tab1, **kw)
    many = veff.score_variants(model, vcf, fasta, out2, table=tab2, client=client, shard_records=20, **kw)
    assert many.distributed["shards"] > 10
    _same_bytes(out1, out2)
    _same_bytes(tab1, tab2)


def test_every_record_lands_in_exactly_one_shard(data, tmp_path):
    _, vcf = data
    copy = tmp_path / "in.vcf.gz"
    vd._bgzip_copy(vcf, copy)
    index = read_index(build_index(copy, min_shift=10))
    assert [c.name for c in index.contigs] == ["chr1", "chrUn", "2", "chrM"]  # file order, chrX has none
    assert index.records == len(_records())
    every = [(v.chrom, v.pos, v.id) for v, _ in VcfReader(vcf)]
    for target in (1, 7, 50, 10_000):
        shards = vd.plan_shards(index, target, copy)
        got = [(v.chrom, v.pos, v.id) for s in shards for v, _ in VcfReader(copy, regions=s.regions)]
        assert got == every
        assert len(shards) >= min(len(every) // target, 40)
    # the cuts pass through deletions and symbolic alleles; those sit in the shard of their POS
    cuts = [s.regions[0][1] for s in vd.plan_shards(index, 7, copy) if s.regions[0][0] == "chr1"][1:]
    ends = {r[2]: r[1] + len(r[3]) - 1 for r in _records()}
    ends |= {r[2]: int(r[5].split("END=")[1]) for r in _records() if len(r) > 5}
    assert sum(r[1] < cut <= ends[r[2]] for r in _records() for cut in cuts if r[0] == "chr1") > 20


def test_large_contigs_are_cut_at_index_windows(data, client, tmp_path, monkeypatch):
    """Without reading positions, cuts fall on the windows of the index (16 kb for tabix)."""
    fasta, vcf = data
    gz = tmp_path / "in.vcf.gz"
    subprocess.run(["bgzip", "-c", str(vcf)], stdout=gz.open("wb"), check=True)
    subprocess.run(["tabix", "-p", "vcf", str(gz)], check=True)
    monkeypatch.setattr("veff.distributed.shards.SCAN_BYTES", 0)  # where plan_shards reads it
    index = read_index(Path(f"{gz}.tbi"))
    shards = vd.plan_shards(index, 100, gz)
    assert [s.regions for s in shards][:2] == [(("chr1", 0, 16384),), (("chr1", 16385, None),)]
    out1, out2 = _pair(tmp_path, "vcf.gz")
    veff.score_variants(_model(), gz, fasta, out1, **KW)
    summary = veff.score_variants(_model(), gz, fasta, out2, client=client, shard_records=100, **KW)
    assert summary.distributed["shards"] == len(shards)
    _same_bytes(out1, out2)


def test_indexed_inputs_are_read_through_their_index(data, client, tmp_path):
    fasta, vcf = data
    gz = tmp_path / "in.vcf.gz"
    subprocess.run(["bgzip", "-c", str(vcf)], stdout=gz.open("wb"), check=True)
    subprocess.run(["tabix", "-p", "vcf", str(gz)], check=True)
    bcf = tmp_path / "in.bcf"
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(bcf), str(vcf)], check=True, capture_output=True)
    subprocess.run(["bcftools", "index", str(bcf)], check=True)
    for source in (gz, bcf):
        d = tmp_path / source.name.replace(".", "_")
        d.mkdir()
        out1, out2 = _pair(d, "vcf.gz")
        veff.score_variants(_model(), source, fasta, out1, **KW)
        summary = veff.score_variants(_model(), source, fasta, out2, client=client, shard_records=30, **KW)
        assert summary.distributed["shards"] > 3
        _same_bytes(out1, out2)
        assert not any(p.name.startswith(".veff-work") for p in d.rglob("*"))


def test_predictions_and_an_empty_vcf(data, client, tmp_path):
    fasta, vcf = data
    one = veff.score_variants(_model(), vcf, fasta, return_predictions=True, **KW)
    many = veff.score_variants(
        _model(),
        vcf,
        fasta,
        return_predictions=True,
        client=client,
        shard_records=40,
        work_dir=tmp_path,
        **KW,
    )
    assert one.keys() == many.keys()
    for name in one:
        assert one[name].equals(many[name])
    empty = write_vcf(tmp_path / "empty.vcf", [])
    out1, out2 = _pair(tmp_path, "vcf.gz")
    tab1, tab2 = _pair(tmp_path, "parquet")
    veff.score_variants(_model(), empty, fasta, out1, table=tab1)
    address = client.scheduler.address  # connect to the running cluster by its address
    summary = veff.score_variants(_model(), empty, fasta, out2, table=tab2, scheduler=address)
    assert summary.records == 0 and summary.distributed["shards"] == 0
    _same_bytes(out1, out2)
    _same_bytes(tab1, tab2)


def test_progress_counts_the_variants_of_all_workers(data, client, tmp_path, monkeypatch):
    fasta, vcf = data
    bars = []

    class Bar:
        def __init__(self, enabled, *, unit, total=None, **options):
            self.n, self.total = 0, total
            bars.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            pass

    monkeypatch.setattr(vd, "progress_bar", Bar)
    summary = veff.score_variants(
        _model(), vcf, fasta, tmp_path / "o.vcf", client=client, shard_records=25, progress=True, **KW
    )
    assert [(b.n, b.total) for b in bars if b.total is not None] == [(summary.records, summary.records)]
    tracker = vd._Progress(Bar(True, unit="v"))
    for shard, done in ((0, 5), (1, 3), (0, 2), (0, 9), (1, 3)):  # a retried shard starts again from 0
        tracker.report(shard, done)
    assert tracker.bar.n == 12


class _FailOnce:
    """TwoOutputModel that fails (raises, or kills its process) the first time it sees a batch."""

    input_layout = "L,4"
    output_labels = ("a_frac", "weighted")

    def __init__(self, marker: str, kill: bool) -> None:
        self.inner = TwoOutputModel(L)
        self.marker, self.kill = marker, kill

    def __call__(self, x):
        if len(x) > 1:
            try:  # the first batch anywhere (O_EXCL: one process wins) fails
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                if self.kill:
                    os._exit(1)
                msg = "transient failure"
                raise RuntimeError(msg)
        return self.inner(x)


def _failing_model(marker: Path, kill: bool) -> CallableModel:
    fn = _FailOnce(str(marker), kill)
    return CallableModel(fn, name="toy", seq_length=L, layout=InputLayout.parse("L,4"))


def test_a_failed_task_is_retried(data, client, tmp_path):
    fasta, vcf = data
    out1, out2 = _pair(tmp_path, "vcf.gz")
    veff.score_variants(_model(), vcf, fasta, out1, **KW)
    marker = tmp_path / "failed"
    model = _failing_model(marker, kill=False)
    veff.score_variants(model, vcf, fasta, out2, client=client, shard_records=50, **KW)
    assert marker.exists()
    _same_bytes(out1, out2)


def test_a_dead_worker_loses_no_records(data, tmp_path):
    """Real worker processes; one dies in its first shard and its task runs again elsewhere."""
    import cloudpickle

    fasta, vcf = data
    out1, out2 = _pair(tmp_path, "vcf.gz")
    tab1, tab2 = _pair(tmp_path, "tsv")
    veff.score_variants(_model(), vcf, fasta, out1, table=tab1, **KW)
    marker = tmp_path / "killed"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        summary = veff.score_variants(
            _failing_model(marker, kill=True), vcf, fasta, out2, table=tab2, workers=2, shard_records=60, **KW
        )
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists() and summary.distributed["shards"] > 3
    _same_bytes(out1, out2)
    _same_bytes(tab1, tab2)


TORCH_GC = """
import torch


class GC(torch.nn.Module):
    \"\"\"G+C and A+T fractions: sums of 0/1, exact whatever the batch or thread count.\"\"\"

    seq_len = 21
    input_layout = "4,L"
    output_labels = ("gc", "at")

    def forward(self, x):
        gc = x[:, 1:3, :].sum(dim=(1, 2)) / x.shape[2]
        at = (x[:, 0, :] + x[:, 3, :]).sum(dim=1) / x.shape[2]
        return torch.stack([gc, at], dim=1)
"""


def _cli(tmp: Path, fasta: Path, vcf: Path, *extra: str):
    model = tmp.resolve().parent / "gc_model.py"
    if not model.exists():
        model.write_text(TORCH_GC)
    return CliRunner().invoke(
        main,
        [
            "score-variants",
            f"{model}::GC",
            "--vcf",
            str(vcf),
            "--fasta",
            str(fasta),
            "-o",
            str(tmp / "out.vcf.gz"),
            "--table",
            str(tmp / "out.tsv.gz"),
            "--scores",
            "diff,logit",
            "-q",
            *extra,
        ],
    )


def test_cli_workers(data, tmp_path, monkeypatch):
    """--workers starts real worker processes; the command line in the header leaves it out."""
    fasta, vcf = data
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir()
    many.mkdir()
    monkeypatch.chdir(one)  # the same command line in the header: out.vcf.gz in the working folder
    res = _cli(Path(), fasta, vcf)
    assert res.exit_code == 0, res.output
    monkeypatch.chdir(many)
    res = _cli(Path(), fasta, vcf, "--workers", "2", "--shard-records", "100")
    assert res.exit_code == 0, res.output
    for name in ("out.vcf.gz", "out.vcf.gz.tbi", "out.tsv.gz"):
        _same_bytes(one / name, many / name)
    unsorted = write_vcf(tmp_path / "unsorted.vcf", [_records()[5], _records()[1]])
    res = _cli(many, fasta, unsorted, "--workers", "1")
    assert res.exit_code == 1
    assert res.output.startswith("veff: error: ") and "sort" in res.output and res.output.count("\n") == 1


def test_bad_arguments_for_sharding(data, client, tmp_path):
    fasta, vcf = data
    with pytest.raises(InputError, match="one of client, workers and scheduler"):
        veff.score_variants(_model(), vcf, fasta, tmp_path / "o.vcf", client=client, workers=2)
    with pytest.raises(InputError, match="dump_sequences"):
        veff.score_variants(_model(), vcf, fasta, dump_sequences=tmp_path / "d.h5", client=client)
    unsorted = write_vcf(tmp_path / "unsorted.vcf", [_records()[5], ("2", 3, "x", "A", "C"), _records()[1]])
    with pytest.raises(InputError, match="bcftools sort"):
        veff.score_variants(_model(), unsorted, fasta, tmp_path / "o.vcf", client=client)
    # the same file is fine in one process
    assert veff.score_variants(_model(), unsorted, fasta, tmp_path / "o.vcf").records == 3
    assert not any(p.name.startswith(".veff-work") for p in tmp_path.iterdir())


def test_regions_give_the_same_bytes_sharded_and_keep_what_bcftools_keeps(data, client, tmp_path):
    fasta, vcf = data
    gz = tmp_path / "in.vcf.gz"
    subprocess.run(["bcftools", "view", "-Oz", "-o", str(gz), str(vcf)], check=True)
    subprocess.run(["bcftools", "index", "-t", str(gz)], check=True)
    # symbolic <DEL>s reach into the first region from before it (END), deletions into the second
    spec = "chr1:2600-4000,chr1:9000-9100,2:50-120,chrM"
    out1, out2 = _pair(tmp_path, "vcf")
    veff.score_variants(_model(), gz, fasta, out1, regions=spec, **KW)
    veff.score_variants(_model(), gz, fasta, out2, regions=spec, client=client, shard_records=10, **KW)
    _same_bytes(out1, out2)
    streamed = tmp_path / "streamed.vcf"  # no index: every record read, the others dropped
    veff.score_variants(_model(), vcf, fasta, streamed, regions=spec, **KW)

    def body(p: Path) -> list[str]:
        return [line for line in p.read_text().splitlines() if not line.startswith("#")]

    assert body(streamed) == body(out1)
    kept = subprocess.run(
        ["bcftools", "view", "-H", "-r", spec, str(gz)], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    got = body(out1)
    assert [line.split("\t")[2] for line in got] == [line.split("\t")[2] for line in kept]
    assert any(line.split("\t")[2].startswith("s") and int(line.split("\t")[1]) < 2600 for line in got)


def test_percentiles_and_nulls_are_the_bytes_of_one_process(data, client, tmp_path):
    fasta, vcf = data
    calib = tmp_path / "toy.calib.h5"
    veff.calibrate(_model(), fasta, calib, random_snvs=300, seed=2, n_quantiles=101, **KW)
    out1, out2 = _pair(tmp_path, "vcf.gz")
    tab1, tab2 = _pair(tmp_path, "tsv")
    kw = KW | {"calibration": calib, "null": "dinuc-shuffle:4", "null_seed": 3}
    veff.score_variants(_model(), vcf, fasta, out1, table=tab1, **kw)
    veff.score_variants(_model(), vcf, fasta, out2, table=tab2, client=client, shard_records=40, **kw)
    _same_bytes(out1, out2)
    _same_bytes(tab1, tab2)
    df = veff.read_scores(tab1)
    assert df["diff_null_p/weighted"].notna().any() and df["logit_pctl/a_frac"].notna().any()
