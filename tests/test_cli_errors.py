"""The command line's error convention: one ``veff: error:`` line, exit 1 (input) or 2 (usage), no traceback.

Each case here was a Python traceback or a multi-line message once; every test runs the real
command on real files and reads what it printed on stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import E1, EXAMPLE, HG38

from veff.cli import main

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"


def _score(*extra: str, model: Path | str = TORCH_MODEL, vcf: Path = E1, fasta: Path = HG38) -> list[str]:
    return ["score-variants", str(model), "--vcf", str(vcf), "--fasta", str(fasta), "-q", *extra]


def fails_with(args: list[str], *messages: str, code: int = 1) -> str:
    """Run the command; assert exit ``code`` and one ``veff: error:`` line holding every message."""
    res = CliRunner().invoke(main, args)
    assert isinstance(res.exception, SystemExit), res.exception  # not an uncaught exception
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("veff: error: "), lines[0]
    for m in messages:
        assert m in lines[0], lines[0]
    return lines[0]


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed command as a user runs it (a separate process: htslib writes to fd 2 itself)."""
    return subprocess.run(
        [sys.executable, "-m", "veff", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score-variants"], "Missing argument 'MODEL'. (see 'veff score-variants -h')"),
        (["score-varaints"], "No such command 'score-varaints'"),
        (_score("-o", "x.vcf", "--threads", "0"), "Invalid value for '--threads'"),
        (_score("-o", "x.vcf", "--no-such-option"), "No such option '--no-such-option'"),
        (_score(), "give -o/--output, --table or --dump-sequences"),
        (["models", "info"], "Missing argument 'MODEL'. (see 'veff models info -h')"),
    ],
)
def test_usage_errors_are_one_line_with_exit_status_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    fails_with(args, message, code=2)
    assert not (tmp_path / "x.vcf").exists()


def test_bare_command_prints_help_and_succeeds():
    res = CliRunner().invoke(main, [])
    assert res.exit_code == 0 and res.stdout.startswith("Usage: veff")


def test_warnings_are_one_veff_line_and_htslib_stays_quiet(tmp_path):
    """An unsorted input's bgzipped output (htslib's indexer complains) and kipoi-style tags (htslib
    warns that ``KV:...`` is not a valid INFO key): stderr holds veff's own lines only."""
    lines = E1.read_text().splitlines(keepends=True)
    header = [x for x in lines if x.startswith("#")]
    records = [x for x in lines if not x.startswith("#")]
    unsorted = tmp_path / "unsorted.vcf"
    unsorted.write_text("".join(header + records[::-1]))
    res = _cli(_score("-o", "out.vcf.gz", "--info-style", "kipoi", vcf=unsorted), tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out.vcf.gz").exists()
    err = res.stderr.splitlines()
    assert err == [
        "veff: warning: out.vcf.gz: written without an index because the input's records are not sorted "
        "by position (sort with `bcftools sort` and index with `bcftools index`)"
    ]
