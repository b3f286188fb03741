"""--vcf - and -o -: veff between bcftools commands in a real shell pipe; -O v|z|b|u."""

from __future__ import annotations

import gzip
import os
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from conftest import E1, HG38, ROOT, write_vcf

import veff
from veff.errors import InputError

pytestmark = pytest.mark.skipif(shutil.which("bcftools") is None, reason="bcftools not installed")

DONOR = ROOT / "example_data" / "models" / "donor_cnn" / "donor_cnn.pt"
VEFF = f"{shlex.quote(sys.executable)} -m veff.cli.main"
ENV = os.environ | {"PYTHONPATH": str(ROOT)}


def _sh(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run a pipeline in bash; any failing command fails it (pipefail)."""
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=cwd, env=ENV, capture_output=True, check=False
    )


def _score(vcf: str, out: str, *extra: str) -> str:
    args = ["score-variants", str(DONOR), "--vcf", vcf, "--fasta", str(HG38), "-o", out, *extra]
    return f"{VEFF} {shlex.join(args)}"


def _body(vcf_text: bytes) -> list[bytes]:
    """The header without veff's and bcftools' command lines, and the records."""
    return [line for line in vcf_text.splitlines() if not line.startswith((b"##veff_command", b"##bcftools"))]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("streams")
    assert _sh(f"bcftools view -Oz -o in.vcf.gz {E1} && bcftools index -t in.vcf.gz", d).returncode == 0
    assert _sh("bcftools view -Ob -o in.bcf in.vcf.gz", d).returncode == 0
    # the reference: the same input, as a file, scored into a file
    res = _sh("bcftools view in.vcf.gz > viewed.vcf && " + _score("viewed.vcf", "ref.vcf", "-q"), d)
    assert res.returncode == 0, res.stderr
    return d


def test_bcftools_pipe_in_and_out(inputs):
    cmd = (
        "bcftools view in.vcf.gz | "
        + _score("-", "-", "--scores", "diff")
        + " | bcftools view -i 'INFO/VEFF_donor_cnn_STATUS~\"ok\"' -Ov"
    )
    res = _sh(cmd, inputs)
    assert res.returncode == 0, res.stderr.decode()
    assert b"veff: 45 records, 105 ALT alleles, 104 scored" in res.stderr  # the summary on stderr
    kept = [line for line in res.stdout.splitlines() if not line.startswith(b"#")]
    assert len(kept) == 44  # every record but the one whose only ALT has a REF mismatch
    # the same bytes as scoring the file into a file
    res = _sh("bcftools view in.vcf.gz | " + _score("-", "-", "-q"), inputs)
    assert res.returncode == 0, res.stderr.decode()
    assert _body(res.stdout) == _body((inputs / "ref.vcf").read_bytes())


@pytest.mark.parametrize(
    ("source", "otype", "check"),
    [
        ("cat in.vcf.gz", "z", "bgzf"),  # bgzipped VCF in, bgzipped VCF out
        ("cat in.bcf", "b", "bcf"),  # BCF in (copied to a temporary file), BCF out
        ("bcftools view in.vcf.gz", "u", "bcf"),  # uncompressed BCF
        ("bcftools view in.vcf.gz", "v", "vcf"),
    ],
)
def test_input_and_output_types_through_pipes(inputs, source, otype, check):
    res = _sh(f"{source} | " + _score("-", "-", "-O", otype, "-q") + " > out.bin", inputs)
    assert res.returncode == 0, res.stderr.decode()
    data = (inputs / "out.bin").read_bytes()
    if check == "bgzf":
        assert data[:4] == b"\x1f\x8b\x08\x04" and data[12:14] == b"BC"
    if check == "vcf":
        assert data.startswith(b"##fileformat=VCF")
    text = _sh("bcftools view out.bin", inputs)
    assert text.returncode == 0, text.stderr
    records = [line for line in text.stdout.splitlines() if not line.startswith(b"#")]
    ref = _sh("bcftools view -H ref.vcf", inputs).stdout.splitlines()  # both as htslib writes them
    assert records == ref and len(ref) == 45


def test_output_type_for_a_file_without_a_known_suffix(inputs):
    res = _sh(_score("in.vcf.gz", "scored.data", "-O", "z", "-q"), inputs)
    assert res.returncode == 0, res.stderr.decode()
    assert gzip.decompress((inputs / "scored.data").read_bytes()).startswith(b"##fileformat")
    assert (inputs / "scored.data.tbi").is_file()


def test_regions_on_standard_input_filter_as_it_streams(inputs):
    spec = "chr22:32068495-32068496"
    res = _sh(f"cat {E1} | " + _score("-", "-", "-r", spec, "-q"), inputs)
    assert res.returncode == 0, res.stderr.decode()
    want = _sh(f"bcftools view -H -r {spec} in.vcf.gz | cut -f3", inputs).stdout.split()
    got = [line.split(b"\t")[2] for line in res.stdout.splitlines() if not line.startswith(b"#")]
    assert got == want and len(got) == 5


def test_what_cannot_read_standard_input_says_so(inputs):
    res = _sh(f"cat {E1} | " + _score("-", "o.vcf", "--workers", "2"), inputs)
    assert res.returncode == 1
    assert b"veff: error: a sharded run (--workers/--scheduler)" in res.stderr
    assert b"cannot read standard input" in res.stderr
    assert not (inputs / "o.vcf").exists()
    res = _sh("printf 'not a vcf\\n' | " + _score("-", "o.vcf"), inputs)
    assert res.returncode == 1
    assert b"veff: error: <stdin>: no VCF header" in res.stderr


def test_overlap_dataloader_refuses_standard_input(tmp_path, genome, monkeypatch):
    fix = Path(__file__).resolve().parent / "data" / "kipoi" / "dl_overlap"
    bed = tmp_path / "r.bed"
    bed.write_text("chr1\t10\t18\tr1\t0\t+\n")
    vcf = write_vcf(tmp_path / "in.vcf", [("chr1", 12, "a", "A", "C")])
    stdin = open(vcf, "rb")  # noqa: SIM115
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=stdin))
    with pytest.raises(InputError, match="overlap mode, which reads the VCF twice; it cannot read standard"):
        veff.score_variants(
            fix, "-", genome, tmp_path / "o.vcf", dataloader_args={"intervals_file": str(bed)}
        )
    stdin.close()
