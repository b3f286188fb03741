"""Where outputs go: refusals before any work, symlinks, FIFOs and /dev/stdout, OS errors as one line."""

from __future__ import annotations

import contextlib
import gzip
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import EXAMPLE, HG19, ROOT, base, other, write_vcf
from toy_models import GCModel

import veff
from veff.cli import main
from veff.models import CallableModel, InputLayout

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"


def _model(fn=None):
    return CallableModel(fn or GCModel(11), name="toy", seq_length=11, layout=InputLayout.parse("L,4"))


def _rows(n=15):
    return [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(40, 40 + 37 * n, 37)]


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _score_cli(vcf, fasta, *args):
    return _cli("score-variants", TORCH_MODEL, "--vcf", vcf, "--fasta", fasta, "-q", *args)


def _one_error_line(res) -> str:
    lines = res.output.splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("veff: error: ")
    return lines[0]


# -- refusals before any work ------------------------------------------------------------------------


def _refused(tmp_path, genome, output, **kwargs):
    fn = GCModel(11)
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(veff.InputError) as err:
        veff.score_variants(_model(fn), kwargs.pop("vcf"), genome, output, **kwargs)
    assert fn.calls == 0  # refused before the model ran
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    return str(err.value)


def test_an_output_that_is_an_input_is_refused_under_any_spelling(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    (tmp_path / "sub").mkdir()
    link = tmp_path / "link.vcf"
    link.symlink_to(vcf)
    for same in (vcf, tmp_path / "sub" / ".." / "in.vcf", link):
        assert "is the input VCF" in _refused(tmp_path, genome, same, vcf=vcf)
    assert "is the FASTA" in _refused(tmp_path, genome, genome, vcf=vcf)
    message = _refused(tmp_path, genome, tmp_path / "o.vcf", vcf=vcf, summary_json=vcf)
    assert "the summary JSON is the input VCF" in message


def test_two_outputs_with_one_path_are_refused(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    out = tmp_path / "x.tsv"
    out.write_text("old\n")
    message = _refused(tmp_path, genome, out, vcf=vcf, table=tmp_path / "." / "x.tsv")
    assert "given as both the output VCF and the table" in message
    res = _score_cli(vcf, genome, "-o", out, "--table", out)
    assert res.exit_code == 1
    assert "given as both the output VCF and the table" in _one_error_line(res)
    assert out.read_text() == "old\n"


def test_a_missing_or_read_only_output_folder_is_refused(genome, tmp_path, readonly_dir):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    assert "does not exist" in _refused(tmp_path, genome, tmp_path / "nope" / "o.vcf", vcf=vcf)
    assert "is a folder" in _refused(tmp_path, genome, tmp_path, vcf=vcf)
    message = _refused(tmp_path, genome, None, vcf=vcf, table=readonly_dir / "t.tsv")
    assert "cannot write to the output folder" in message
    res = _score_cli(vcf, genome, "-o", readonly_dir / "o.vcf")
    assert res.exit_code == 1 and "read-only" in _one_error_line(res)


def test_formats_that_need_a_regular_file_are_refused_on_a_stream(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    for name in ("t.parquet", "t.h5"):
        os.mkfifo(tmp_path / name)
        message = _refused(tmp_path, genome, None, vcf=vcf, table=tmp_path / name)
        assert "needs a regular file" in message


def test_what_is_a_stream():
    from veff.writers.targets import is_stream

    for name in ("/dev/stdout", "/dev/stderr", "/dev/fd/1", "/proc/self/fd/2", "/dev/null", "/dev/full"):
        assert is_stream(name), name
    for name in ("/dev/shm/out.vcf", "/dev/stdout.vcf", "/tmp/out.vcf"):
        assert not is_stream(name), name


# -- symbolic links, FIFOs, /dev/stdout ------------------------------------------------------------


def test_writing_through_a_symlink_replaces_the_target_and_keeps_the_link(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    (tmp_path / "store").mkdir()
    target = tmp_path / "store" / "real.vcf.gz"
    target.write_bytes(b"old")
    link = tmp_path / "out.vcf.gz"
    link.symlink_to(target)
    veff.score_variants(_model(), vcf, genome, link)
    assert link.is_symlink() and link.resolve() == target
    assert gzip.decompress(target.read_bytes()).count(b"VEFF_toy_STATUS=") == 15
    assert not [p for p in (tmp_path / "store").iterdir() if "veff-tmp" in p.name]
    # the index goes beside the name the user gave, where htslib looks for it
    out = subprocess.run(["tabix", str(link), "chr1"], capture_output=True, text=True, check=True)
    assert len(out.stdout.splitlines()) == 15


def _read_fifo(path: Path, into: list[bytes]) -> threading.Thread:
    def read() -> None:
        with open(path, "rb") as fh:
            into.append(fh.read())

    t = threading.Thread(target=read)
    t.start()
    return t


def test_a_fifo_is_written_as_a_stream_and_stays_a_fifo(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    plain = tmp_path / "plain.vcf"
    veff.score_variants(_model(), vcf, genome, plain, command="same")
    fifo = tmp_path / "pipe.vcf"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    veff.score_variants(_model(), vcf, genome, fifo, command="same")
    reader.join(timeout=30)
    assert got == [plain.read_bytes()]
    assert fifo.is_fifo()
    assert _listing(tmp_path) == ["genome.fa", "genome.fa.fai", "in.vcf", "pipe.vcf", "plain.vcf"]


def test_a_compressed_vcf_on_a_stream_is_written_without_an_index(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    fifo = tmp_path / "pipe.vcf.gz"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = _read_fifo(fifo, got)
    with pytest.warns(veff.VeffWarning, match="stream .*without an index"):
        veff.score_variants(_model(), vcf, genome, fifo)
    reader.join(timeout=30)
    assert gzip.decompress(got[0]).count(b"VEFF_toy_STATUS=") == 15
    assert fifo.is_fifo() and not Path(f"{fifo}.tbi").exists()


def test_dev_stdout_is_written_as_a_stream(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    target = "/dev/stdout"
    code = (
        "import sys, veff; from toy_models import GCModel;"
        "from veff.models import CallableModel, InputLayout;"
        "m = CallableModel(GCModel(11), name='toy', seq_length=11, layout=InputLayout.parse('L,4'));"
        f"veff.score_variants(m, sys.argv[1], sys.argv[2], {target!r})"
    )
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'tests'}")
    res = subprocess.run(
        [sys.executable, "-c", code, str(vcf), str(genome)], capture_output=True, env=env, timeout=120
    )
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.count(b"VEFF_toy_STATUS=") == 15
    assert Path("/dev/stdout").is_symlink()  # the system's link is still there


def test_full_device_is_one_error_line(genome, tmp_path):
    vcf = write_vcf(tmp_path / "in.vcf", _rows(15))
    res = _score_cli(vcf, genome, "-o", "/dev/full")
    assert res.exit_code == 1
    assert _one_error_line(res) == "veff: error: cannot write /dev/full: No space left on device"
    assert Path("/dev/full").is_char_device()


# -- OS errors while writing ------------------------------------------------------------------------


def _big_vcf(path: Path) -> Path:
    return write_vcf(
        path, [("chr1", p, f"v{p}", base("chr1", p), other(base("chr1", p))) for p in range(6, 595)]
    )


def test_a_full_disk_is_one_line_and_leaves_no_temp_file(genome, tmp_path, small_disk):
    vcf = _big_vcf(tmp_path / "in.vcf")
    old = small_disk / "old.vcf"
    old.write_text("old\n")
    cases = [
        ("-o", small_disk / "o.vcf"),
        ("--table", small_disk / "t.tsv"),
        ("-o", small_disk / "o.vcf.gz"),
    ]
    for option, path in cases:
        res = _score_cli(vcf, genome, option, path, "--scores", "diff,ref,alt,logit")
        assert res.exit_code == 1, res.output
        assert _one_error_line(res) == f"veff: error: cannot write {path}: No space left on device"
        assert _listing(small_disk) == ["filler", "old.vcf"]
    assert old.read_text() == "old\n"


def test_mutation_map_and_plot_on_a_full_disk_are_one_line(tmp_path, small_disk):
    out = small_disk / "m.h5"
    region = "chr17:10000-10400"
    # a real process: HDF5 keeps the file it could not finish, and its exit-time clean-up of that
    # file would crash the interpreter (exit 139) if the command did not leave without it
    args = ["create-mutation-map", TORCH_MODEL, "--fasta", HG19, "--region", region, "-o", out, "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "veff", *map(str, args)], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"veff: error: cannot write {out}: No space left on device"]
    assert _listing(small_disk) == ["filler"]
    good = tmp_path / "m.h5"
    res = _cli("create-mutation-map", TORCH_MODEL, "--fasta", HG19, "--region", region, "-o", good, "-q")
    assert res.exit_code == 0, res.output
    fig = small_disk / "m.png"
    res = _cli("plot-mutation-map", good, "-o", fig)
    assert res.exit_code == 1, res.output
    assert _one_error_line(res) == f"veff: error: cannot write {fig}: No space left on device"
    assert _listing(small_disk) == ["filler"]


def test_summary_json_that_cannot_be_written_is_one_line(genome, tmp_path, monkeypatch):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    from veff.writers.summary import SummaryJson

    def full(self):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SummaryJson, "_finish", full)
    summary = tmp_path / "s.json"
    res = _score_cli(vcf, genome, "-o", tmp_path / "o.vcf", "--summary-json", summary)
    assert res.exit_code == 1
    assert _one_error_line(res) == f"veff: error: cannot write {summary}: No space left on device"
    assert _listing(tmp_path) == ["genome.fa", "genome.fa.fai", "in.vcf"]


def test_an_index_that_cannot_be_written_is_an_error_not_unsorted(genome, tmp_path, monkeypatch):
    vcf = write_vcf(tmp_path / "in.vcf", _rows())
    import pysam

    def failing(*args, **kwargs):
        raise OSError(f"building of index for {args[0]} failed")

    monkeypatch.setattr(pysam, "tabix_index", failing)
    out = tmp_path / "o.vcf.gz"
    with pytest.raises(veff.OutputError, match=r"cannot write \S*o\.vcf\.gz\.tbi \(the index of"):
        veff.score_variants(_model(), vcf, genome, out)
    assert _listing(tmp_path) == ["genome.fa", "genome.fa.fai", "in.vcf"]
    # records out of order still give the unsorted warning and a file without index
    monkeypatch.undo()
    rows = _rows()
    unsorted = write_vcf(tmp_path / "u.vcf", [rows[3], *rows[:3], *rows[4:]])
    with pytest.warns(veff.VeffWarning, match="not sorted"):
        veff.score_variants(_model(), unsorted, genome, out)
    assert out.is_file() and not Path(f"{out}.tbi").exists()


# -- fixtures ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, options: str, *, needed_as_root: str):
    """A tmpfs mounted on the new folder ``path`` (unmounted after); skip as root when mount fails."""
    path.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if res.returncode != 0:
        if os.geteuid() == 0:
            pytest.skip(f"needs {needed_as_root} (mount -t tmpfs) when run as root")
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder that even root cannot write to: a read-only tmpfs (or chmod 555 for other users)."""
    with _tmpfs(tmp_path / "ro", "ro,size=64k", needed_as_root="a read-only mount") as mounted:
        if not mounted:
            (tmp_path / "ro").chmod(0o555)
        yield tmp_path / "ro"


@pytest.fixture
def small_disk(tmp_path):
    """A file system with almost no space left (a 64 kB tmpfs holding a filler file)."""
    with _tmpfs(tmp_path / "small", "size=64k", needed_as_root="a small tmpfs") as mounted:
        if not mounted:
            pytest.skip("needs a small tmpfs (mount -t tmpfs) for a real full disk")
        with open(tmp_path / "small" / "filler", "wb") as fh, contextlib.suppress(OSError):
            fh.write(b"x" * (60 * 1024))
        yield tmp_path / "small"


def test_mutation_map_outputs_are_refused_before_any_work(tmp_path):
    fasta = tmp_path / "ref.fa"
    fasta.write_bytes(HG19.read_bytes())
    res = _cli(
        "create-mutation-map", TORCH_MODEL, "--fasta", fasta, "--region", "chr17:10000-10400", "-o", fasta
    )
    assert res.exit_code == 1
    assert "the mutation map (-o) is the FASTA" in _one_error_line(res)
    assert fasta.read_bytes() == HG19.read_bytes()
    res = _cli(
        "create-mutation-map",
        TORCH_MODEL,
        "--fasta",
        fasta,
        "--region",
        "chr17:10000-10400",
        "-o",
        "/dev/null",
    )
    assert res.exit_code == 1 and "needs a regular file" in _one_error_line(res)
    fake = tmp_path / "m.png"
    fake.write_bytes(b"not a map")
    res = _cli("plot-mutation-map", fake, "-o", fake)
    assert res.exit_code == 1 and "is the mutation map" in _one_error_line(res)
    assert fake.read_bytes() == b"not a map"
