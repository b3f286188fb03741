"""A run is data: RunOptions checks every option once; the pipeline talks to a ShardHook strategy."""

from __future__ import annotations

import dataclasses

import pytest
from click.testing import CliRunner
from helpers import E2, EXAMPLE, HG19, base, other, write_vcf
from toy_models import TwoOutputModel

import veff
from veff.cli import main
from veff.engine.batching import probe_outputs
from veff.io.vcf import VcfReader
from veff.models import CallableModel, InputLayout
from veff.pipeline import execute
from veff.run.hooks import LocalHook
from veff.run.options import RunOptions
from veff.writers.sink import PartSink, Sink
from veff.writers.table import open_table
from veff.writers.vcf import VcfWriter

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"
BASE = {"model": "m.pt", "vcf": "in.vcf", "fasta": "ref.fa", "output": "out.vcf"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ref_mismatch": "maybe"}, "ref_mismatch must be 'skip' or 'score', got 'maybe'"),
        ({"centering": "middle"}, "centering must be 'exact' or 'kipoi' or None, got 'middle'"),
        ({"info_style": "vep"}, "info_style must be 'veff' or 'kipoi', got 'vep'"),
        ({"info_aggregate": "mean"}, "info_aggregate must be 'max_abs' or None, got 'mean'"),
        ({"info_style": "kipoi", "info_aggregate": "max_abs"}, "not available with --info-style kipoi"),
        ({"threads": 0}, "threads must be at least 1, got 0"),
        ({"batch_size": -2}, "batch_size must be at least 1, got -2"),
        ({"batch_size": 1.5}, "batch_size must be a whole number (at least 1), got 1.5"),
        ({"batch_size": True}, "batch_size must be a whole number (at least 1), got True"),
        ({"threads": 1.5}, "threads must be a whole number (at least 1), got 1.5"),
        ({"threads": "2"}, "threads must be a whole number (at least 1), got '2'"),
        ({"seq_length": 100.0}, "seq_length must be a whole number (at least 1), got 100.0"),
        ({"max_indel_length": None}, "max_indel_length must be a whole number (at least 0), got None"),
        ({"progress_interval": "5"}, "progress_interval must be more than 0 seconds"),
        ({"max_indel_length": -1}, "max_indel_length must be at least 0, got -1"),
        ({"info_prefix": "1bad"}, "not a valid VCF INFO key start"),
        ({"table": "t.xlsx"}, "unknown table format"),
        ({"aggregate": "window:x"}, "bad aggregate"),
        ({"regions": "chr1:1-2", "regions_file": "r.bed"}, "not both"),
        ({"workers": 2, "scheduler": "tcp://x:1"}, "give one of client, workers and scheduler"),
        ({"workers": 0}, "workers must be at least 1"),
        ({"output": None}, "nothing to do"),
        ({"dump_sequences": "d.h5"}, "dump_sequences runs no model"),
        ({"output": None, "dump_sequences": "d.h5", "workers": 2}, "dump_sequences is not sharded"),
    ],
)
def test_a_bad_option_is_one_line_on_construction(change, message):
    with pytest.raises(veff.InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        RunOptions(**(BASE | change))
    assert "\n" not in str(err.value)


def test_options_are_frozen_keyword_only_and_parsed_once():
    opts = RunOptions(**BASE, aggregate="window:50 max_abs", regions="chr1:10-20")
    assert opts.aggregation.scope == "window" and opts.aggregation.k == 50
    assert opts.select is not None and opts.select.overlaps("chr1", 15, 15)
    assert not opts.select.overlaps("chr1", 30, 30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.threads = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunOptions("m.pt", "in.vcf", "ref.fa")  # type: ignore[misc]
    assert not opts.sharded and RunOptions(**BASE, workers=2).sharded


def test_score_variants_checks_through_run_options(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 40, "a", base("chr1", 40), other(base("chr1", 40)))])
    with pytest.raises(veff.InputError, match="ref_mismatch must be 'skip' or 'score'"):
        veff.score_variants("never-loaded.pt", vcf, genome, tmp_path / "o.vcf", ref_mismatch="maybe")
    assert not (tmp_path / "o.vcf").exists()


def test_cli_option_errors_come_from_run_options(tmp_path):
    args = ["score-variants", str(TORCH_MODEL), "--vcf", str(E2), "--fasta", str(HG19), "-q"]
    res = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "o.vcf"), "--info-prefix", "9x"])
    assert res.exit_code == 1 and "not a valid VCF INFO key start" in res.output
    res = CliRunner().invoke(main, [*args, "--table", str(tmp_path / "t.csv")])
    assert res.exit_code == 1 and "unknown table format" in res.output


class _FirstRecords(LocalHook):
    """A strategy of its own: read only the first records, count probes and progress, keep the summary."""

    def __init__(self, n):
        self.n, self.probes, self.updates, self.summary, self.merged = n, 0, [], None, None

    def reader(self, path):
        reader = VcfReader(path)
        it = iter(reader)
        first = [next(it) for _ in range(self.n)]
        return _ListReader(reader, first)

    def probe(self, model, length, offset):
        self.probes += 1
        return probe_outputs(model, length, offset=offset)

    def progress(self, opts, reader):
        hook = self

        class Bar:
            def update(self, n):
                hook.updates.append(n)

            def close(self):
                pass

        return Bar()

    def merge(self, sinks, tally):
        self.merged = (sorted(type(s).__name__ for s in sinks), tally.records)

    def finished(self, summary):
        self.summary = summary


class _ListReader:
    def __init__(self, reader, items):
        self.vcf, self._reader, self._items, self.select = reader.vcf, reader, items, None
        self.path = reader.path

    def __iter__(self):
        return iter(self._items)

    def close(self):
        self._reader.close()


def test_the_pipeline_talks_to_its_shard_strategy_only_through_the_protocol(genome, tmp_path):
    rows = [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(40, 560, 37)]
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    model = CallableModel(TwoOutputModel(11), name="toy", seq_length=11, layout=InputLayout.parse("L,4"))
    hook = _FirstRecords(5)
    opts = RunOptions(model=model, vcf=vcf, fasta=genome, output=tmp_path / "o.vcf", table=tmp_path / "t.tsv")
    summary = execute(opts, hook)
    assert summary is hook.summary and summary.records == 5 and hook.probes == 1
    assert sum(hook.updates) == 5
    assert hook.merged == (["TsvWriter", "VcfWriter"], 5)
    assert list(veff.read_scores(tmp_path / "t.tsv").id) == [r[2] for r in rows[:5]]
    assert list(veff.read_scores(tmp_path / "o.vcf").id) == [r[2] for r in rows[:5]]


def test_the_outputs_that_a_shard_writes_as_parts_are_part_sinks(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 40, "a", base("chr1", 40), other(base("chr1", 40)))])
    writer = VcfWriter(VcfReader(vcf).vcf, tmp_path / "o.vcf", scores=["diff"], labels=["x"], prefix="VEFF_t")
    table = open_table(tmp_path / "t.parquet", scores=["diff"], labels=["x"])
    for sink in (writer, table):
        assert isinstance(sink, Sink) and isinstance(sink, PartSink)
        sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genome.fa", "in.vcf"]
