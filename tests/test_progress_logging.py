"""Progress (a bar with total and ETA, plain lines off a terminal) and the log levels of the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import E1, HG38, ROOT, write_vcf

from veff.cli import main
from veff.engine.progress import Progress
from veff.io.vcf import VcfReader

DONOR = ROOT / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"


def _args(vcf: Path, out: Path, *extra: str) -> list[str]:
    return ["score-variants", str(DONOR), "--vcf", str(vcf), "--fasta", str(HG38), "-o", str(out), *extra]


@pytest.fixture(scope="module")
def e1_gz(tmp_path_factory) -> Path:
    import pysam

    d = tmp_path_factory.mktemp("progress")
    gz = d / "e1.vcf.gz"
    pysam.tabix_compress(str(E1), str(gz))
    pysam.tabix_index(str(gz), preset="vcf")
    return gz


def test_plain_lines_every_interval_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress(unit="variants", total=30, interval=0.05, stream=out)
    for _ in range(3):
        bar.update(5)
        time.sleep(0.06)
    bar.update(15)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) >= 3
    assert lines[0].startswith("veff: progress: 10/30 variants (33%), ")  # not at once: after 0.05 s
    assert "ETA 0:00:0" in lines[0]
    assert lines[-1].startswith("veff: progress: 30/30 variants (100%)")
    assert sum("30/30" in line for line in lines) == 1


def test_the_total_is_estimated_from_the_bytes_read():
    out = io.StringIO()
    pos = {"at": 250}
    bar = Progress(unit="variants", size=1000, position=lambda: pos["at"], interval=3600, stream=out)
    bar.update(10)
    assert bar.estimate() == 40
    assert "10/about 40 variants (25%)" in bar.line()
    pos["at"] = 1000
    bar.update(20)
    assert bar.estimate() == 30
    bar.close()
    assert out.getvalue().startswith("veff: progress: 30/30 variants (100%)")
    unknown = Progress(unit="variants", interval=3600, stream=io.StringIO())
    unknown.update(7)
    assert unknown.line().startswith("veff: progress: 7 variants, ")


def test_the_bar_reaches_100_percent_when_the_run_ends():
    out = io.StringIO()
    bar = Progress(unit="variants", total=100, stream=out, tty=True)  # a wrong (too big) total
    bar.update(60)
    bar.close()
    assert "60/60" in out.getvalue().split("\r")[-1]
    assert "100%" in out.getvalue().split("\r")[-1]


@pytest.mark.parametrize("tty", [False, True])
def test_work_stopped_part_way_is_not_shown_as_100_percent(tty):
    """After an error or Ctrl-C the last line said 700/700 (100%) of a 1,981-window map."""
    out = io.StringIO()
    bar = Progress(unit="windows", total=100, interval=3600, stream=out, tty=tty)
    bar.update(40)
    bar.stop()
    last = out.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "40/100" in last and "40%" in last, last
    assert "100%" not in last


def test_a_reader_tells_the_bytes_read_and_the_index_count(e1_gz, tmp_path):
    reader = VcfReader(e1_gz)
    assert reader.indexed_records() == 45
    assert reader.size == e1_gz.stat().st_size
    seen = [reader.bytes_read() for _ in reader]
    assert len(seen) == 45
    assert seen[-1] == reader.size
    reader.close()
    big = tmp_path / "big.vcf"  # large enough that htslib has not read it all after one record
    write_vcf(big, [("chr1", 1 + k % 600, f"v{k}", "A", "C") for k in range(160_000)])
    plain = VcfReader(big)
    assert plain.indexed_records() is None
    records = iter(plain)
    next(records)
    assert 0 < plain.bytes_read() < plain.size / 2
    plain.close()


@pytest.mark.parametrize("indexed", [True, False])
def test_progress_off_a_terminal_is_lines_not_carriage_returns(e1_gz, tmp_path, indexed):
    vcf = e1_gz if indexed else E1
    with open(tmp_path / "err.txt", "w") as err:  # stderr is a file, as in a cluster job
        subprocess.run(
            [
                sys.executable,
                "-m",
                "veff.cli.main",
                *_args(vcf, tmp_path / "o.vcf", "--progress-interval", "0.1"),
            ],
            check=True,
            stderr=err,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
        )
    text = (tmp_path / "err.txt").read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert any(line.startswith("veff: progress: 45/45 variants (100%)") for line in lines), text
    assert lines[-1].startswith("veff: 45 records, 105 ALT alleles")


def test_log_levels(tmp_path):
    runner = CliRunner()
    default = runner.invoke(main, _args(E1, tmp_path / "a.vcf"))
    assert default.exit_code == 0, default.output
    assert "veff: 45 records" in default.stderr
    assert "model: donor_cnn" not in default.stderr
    verbose = runner.invoke(main, _args(E1, tmp_path / "b.vcf", "-v", "--log-file", str(tmp_path / "log")))
    assert verbose.exit_code == 0
    wanted = ["model: donor_cnn (pytorch), window length 101", "batch size ", "chunk ", "device cpu"]
    wanted += ["threads ", "timings (s): load_model ", "forward ", "finish_outputs ", "veff: 45 records"]
    for what in wanted:
        assert what in verbose.stderr, what
    log = (tmp_path / "log").read_text()
    assert " INFO veff: model: donor_cnn" in log and " INFO veff.summary: veff: 45 records" in log
    same = runner.invoke(main, _args(E1, tmp_path / "c.vcf", "--log-level", "info"))
    assert "model: donor_cnn" in same.stderr
    quiet = runner.invoke(main, _args(E1, tmp_path / "d.vcf", "-q"))
    assert quiet.stderr == ""
    errors = runner.invoke(main, _args(E1, tmp_path / "e.vcf", "--log-level", "error"))
    assert "veff: 45 records" not in errors.stderr and "model:" not in errors.stderr
    body = [(tmp_path / f"{n}.vcf").read_text().replace(f"{n}.vcf", "OUT") for n in "abcde"]
    assert len(set(body)) == 1  # logging options are not recorded in the header's command


def test_log_file_that_cannot_be_opened(tmp_path):
    res = CliRunner().invoke(main, _args(E1, tmp_path / "o.vcf", "--log-file", str(tmp_path / "no" / "log")))
    assert res.exit_code == 2
    assert "cannot open the log file" in res.stderr
