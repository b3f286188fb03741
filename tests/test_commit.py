"""The outputs of a run are committed together, or not at all (an injected failure at the end)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers import E2, EXAMPLE, HG19, base, other, write_vcf
from toy_models import TwoOutputModel

import veff
from veff.cli import main
from veff.io.fasta import Fasta
from veff.models import CallableModel, InputLayout
from veff.writers.summary import SummaryJson
from veff.writers.table import TableWriter
from veff.writers.vcf import VcfWriter

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"


def _model():
    return CallableModel(TwoOutputModel(11), name="toy", seq_length=11, layout=InputLayout.parse("L,4"))


def _rows():
    return [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(40, 560, 37)]


def _old_outputs(tmp_path):
    Fasta(tmp_path / "genome.fa").close()  # its index is built before the listing is taken
    paths = {
        "vcf": tmp_path / "o.vcf.gz",
        "tbi": tmp_path / "o.vcf.gz.tbi",
        "table": tmp_path / "t.parquet",
        "summary": tmp_path / "s.json",
    }
    for name, path in paths.items():
        path.write_bytes(f"old {name}\n".encode())
    return paths


def _records(path):
    return sum(1 for line in path.read_text().splitlines() if not line.startswith("#"))


def _listing(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


def test_every_output_is_replaced_together(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    paths = _old_outputs(tmp_path)
    before = _listing(tmp_path)
    summary = veff.score_variants(
        _model(), vcf, genome, paths["vcf"], table=paths["table"], summary_json=paths["summary"]
    )
    assert _listing(tmp_path) == before  # no temporary file left, nothing else written
    assert veff.read_scores(paths["vcf"]).shape[0] == len(_rows())
    assert veff.read_scores(paths["table"]).shape[0] == len(_rows())
    written = json.loads(paths["summary"].read_text())
    assert written["records"] == summary.records == len(_rows()) and written["statuses"] == {"ok": 15}
    assert paths["tbi"].read_bytes() != b"old tbi\n"


@pytest.mark.parametrize("abort_fails", [False, True], ids=["abort_ok", "abort_fails"])
def test_a_table_that_fails_after_the_vcf_is_complete_replaces_nothing(
    genome, tmp_path, monkeypatch, abort_fails
):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    paths = _old_outputs(tmp_path)
    before = _listing(tmp_path)
    finished = []
    real_finish = VcfWriter.finish

    def vcf_finish(self):
        real_finish(self)
        finished.append(self._out._atomic.tmp)

    def table_finish(self):
        assert finished and finished[0].exists()  # the VCF (and its index) is complete
        assert finished[0].with_name(finished[0].name + ".tbi").exists()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(VcfWriter, "finish", vcf_finish)
    monkeypatch.setattr(TableWriter, "finish", table_finish)
    if abort_fails:  # the table's own clean-up fails too: the other temporary files still go

        def broken_close(self):
            raise OSError("cannot close")

        monkeypatch.setattr("veff.writers._table_parquet.ParquetWriter._finish", broken_close)
    with pytest.raises(veff.OutputError, match=r"^cannot write \S*t\.parquet: No space left on device$"):
        veff.score_variants(
            _model(), vcf, genome, paths["vcf"], table=paths["table"], summary_json=paths["summary"]
        )
    assert _listing(tmp_path) == before
    for name, path in paths.items():
        assert path.read_bytes() == f"old {name}\n".encode()


def test_a_summary_that_fails_replaces_neither_vcf_nor_table(genome, tmp_path, monkeypatch):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    paths = _old_outputs(tmp_path)
    before = _listing(tmp_path)

    def failing(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(SummaryJson, "_finish", failing)
    with pytest.raises(KeyboardInterrupt):
        veff.score_variants(
            _model(), vcf, genome, paths["vcf"], table=paths["table"], summary_json=paths["summary"]
        )
    assert _listing(tmp_path) == before
    assert all(p.read_bytes() == f"old {n}\n".encode() for n, p in paths.items())


def test_cli_summary_json_is_an_output_of_the_run(tmp_path, monkeypatch):
    out, table, summary = tmp_path / "e2.vcf.gz", tmp_path / "e2.tsv", tmp_path / "s.json"
    args = ["score-variants", str(TORCH_MODEL), "--vcf", str(E2), "--fasta", str(HG19), "-q"]
    args += ["-o", str(out), "--table", str(table), "--summary-json", str(summary)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    written = json.loads(summary.read_text())
    assert written["output"] == str(out) and written["records"] == _records(E2)
    summary.write_text("old\n")

    def failing(self):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(TableWriter, "finish", failing)
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1
    assert res.output == f"veff: error: cannot write {table}: Read-only file system\n"
    assert summary.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2.tsv", "e2.vcf.gz", "e2.vcf.gz.tbi", "s.json"]
