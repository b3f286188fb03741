"""Ctrl-C and SIGTERM end a real run cleanly: one line, exit 130/143, no temp file, old outputs kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import EXAMPLE, HG38, ROOT

TORCH_MODEL = EXAMPLE / "models" / "donor_cnn" / "donor_cnn.pt"
START, END = 32_000_101, 32_299_900  # the sequence of the example reference slice


@pytest.fixture(scope="module")
def big_vcf(tmp_path_factory):
    """Every SNV (one ALT each) of most of the example reference: about 300,000 records, sorted."""
    import pysam

    path = tmp_path_factory.mktemp("big") / "big.vcf"
    seq = pysam.FastaFile(str(HG38)).fetch("chr22", START - 1, END).upper()
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}
    with open(path, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n##contig=<ID=chr22,length=32300000>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        fh.writelines(
            f"chr22\t{START + k}\t.\t{b}\t{alt[b]}\t.\t.\t.\n" for k, b in enumerate(seq) if b in alt
        )
    # the same as BCF: its records are read by cyvcf2 in the reader thread, which must stop first
    subprocess.run(["bcftools", "view", "-Ob", "-o", str(path.with_suffix(".bcf")), str(path)], check=True)
    return path


def _started(folder: Path, workers: bool, min_bytes: int = 1) -> bool:
    """Whether the run has written records: a temporary output (or, sharded, a part) with data."""
    candidates = list(folder.glob(".*veff-tmp-*"))
    if workers:
        candidates += list(folder.glob(".veff-work-*/parts/*"))
    return any(p.is_file() and p.stat().st_size >= min_bytes for p in candidates)


def _signal_once_writing(
    args: list[str], folder: Path, sig: int, *, workers: bool, min_bytes: int = 1
) -> tuple[int, str]:
    """Run ``args`` in ``folder``; send ``sig`` once its output has ``min_bytes``; return (status, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not _started(folder, workers, min_bytes):
            assert proc.poll() is None, f"the run ended before it was signalled: {proc.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the run did not start writing"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err.decode()


_INT = (signal.SIGINT, 130, "veff: interrupted; no output written")
_TERM = (signal.SIGTERM, 143, "veff: terminated; no output written")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "line", "workers", "suffix"),
    [(*_INT, None, ".bcf"), (*_TERM, None, ".vcf"), (*_TERM, 2, ".vcf")],
    ids=["sigint_bcf", "sigterm", "sigterm_workers2"],
)
def test_a_signal_while_writing_ends_the_run_cleanly(tmp_path, big_vcf, sig, code, line, workers, suffix):
    out = tmp_path / "out.vcf.gz"
    table = tmp_path / "out.tsv"
    old = {out: b"old vcf\n", Path(f"{out}.tbi"): b"old index\n", table: b"old table\n"}
    for path, data in old.items():
        path.write_bytes(data)
    before = sorted(p.name for p in tmp_path.iterdir())
    vcf = big_vcf.with_suffix(suffix)
    args = [sys.executable, "-m", "veff", "score-variants", str(TORCH_MODEL), "--vcf", str(vcf)]
    args += ["--fasta", str(HG38), "-o", str(out), "--table", str(table), "-q", "--batch-size", "64"]
    if workers:
        args += ["--workers", str(workers), "--shard-records", "20000"]
    returncode, err = _signal_once_writing(args, tmp_path, sig, workers=bool(workers))
    assert returncode == code, err
    assert err.splitlines() == [line]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp file, no work folder
    for path, data in old.items():
        assert path.read_bytes() == data


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "line"), [_INT, _TERM], ids=["sigint", "sigterm"])
def test_a_signal_while_a_mutation_map_is_written_keeps_the_old_map(tmp_path, sig, code, line):
    out = tmp_path / "map.h5"
    out.write_bytes(b"a map from before")
    args = [sys.executable, "-m", "veff", "create-mutation-map", str(TORCH_MODEL), "--fasta", str(HG38)]
    args += ["--region", "chr22:32000001-32290000", "--method", "naive", "-o", str(out)]
    args += ["--progress-interval", "0.2"]
    # signalled once windows are counted (about 5 KB each in the file)
    returncode, err = _signal_once_writing(args, tmp_path, sig, workers=False, min_bytes=400_000)
    lines = err.splitlines()
    assert returncode == code, lines
    assert lines[-1] == line
    assert all(x.startswith("veff: progress: ") for x in lines[:-1]), lines
    assert "(100%)" not in lines[-2]  # the last progress line says how far it got
    assert out.read_bytes() == b"a map from before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.h5"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, 2], ids=["local", "workers2"])
def test_the_last_progress_line_of_an_interrupted_run_says_how_far_it_got(tmp_path, big_vcf, workers):
    """It said N/N (100%) just before 'interrupted': the count became the total on closing (and a
    sharded run's driver closed its bar as if complete)."""
    args = [sys.executable, "-m", "veff", "score-variants", str(TORCH_MODEL), "--vcf", str(big_vcf)]
    args += ["--fasta", str(HG38), "-o", str(tmp_path / "out.vcf"), "--progress-interval", "0.2"]
    if workers:
        args += ["--workers", str(workers), "--shard-records", "20000"]
    # signalled once records are counted: a chunk (4,096 records, about 250 KB) is written before it is
    returncode, err = _signal_once_writing(
        args, tmp_path, signal.SIGINT, workers=bool(workers), min_bytes=600_000
    )
    lines = [x for x in err.splitlines() if not x.startswith("veff: warning: ")]
    assert returncode == 130, lines
    assert lines[-1] == _INT[2]
    assert lines[-2].startswith("veff: progress: ") and "(100%)" not in lines[-2], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == []
