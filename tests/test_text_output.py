"""Numbers as text and BGZF blocks: the two costs of writing a wide model's output."""

from __future__ import annotations

import gzip
import shutil
import subprocess

import numpy as np
import pysam

from veff.writers._floats import format_float_rows, format_floats
from veff.writers._text import TextSink


def _significant_digits(text: str) -> int:
    mantissa = text.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.strip("0"))


def test_every_finite_float32_reads_back_exactly_with_the_fewest_digits():
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)]
    extremes = np.array([0.0, -0.0, 1.0, 0.1, 1e-45, 3.4028235e38, 1e-4, 1e16, 123456789.0], np.float32)
    values = np.concatenate([values, extremes, rng.random(10_000, dtype=np.float32)])
    text = format_floats(values)
    assert len(text) == len(values)
    back = np.array([float(t) for t in text], dtype=np.float32)
    assert np.array_equal(back.view(np.uint32), values.view(np.uint32))  # same bits, -0.0 kept
    shortest = [_significant_digits(np.format_float_scientific(v, unique=True)) for v in values[:20_000]]
    assert [_significant_digits(t) for t in text[:20_000]] == shortest


def test_rows_keep_their_shape_and_name_non_finite_values():
    values = np.array([[0.5, np.nan, 2.0], [np.inf, -np.inf, -0.25], [1e-9, 3.0, 7.0]], np.float32)
    assert format_float_rows(values) == ["0.5|nan|2.0", "inf|-inf|-0.25", "1e-9|3.0|7.0"]
    assert format_float_rows(values, sep="\t", nan="") == ["0.5\t\t2.0", "inf\t-inf\t-0.25", "1e-9\t3.0\t7.0"]
    assert format_float_rows(values[:, :1]) == ["0.5", "inf", "1e-9"]
    assert format_float_rows(np.zeros((2, 0), np.float32)) == ["", ""]
    assert format_float_rows(np.zeros((0, 4), np.float32)) == []
    wide = np.arange(2 * 919, dtype=np.float32).reshape(2, 919) / 7
    rows = format_float_rows(wide)
    assert [len(r.split("|")) for r in rows] == [919, 919]
    assert np.array_equal(np.array([r.split("|") for r in rows], dtype=np.float32), wide)


def test_bgzf_output_is_valid_for_gzip_htslib_and_bgzip(tmp_path):
    lines = [f"chr1\t{k}\t{'|'.join(map(str, range(k % 50)))}\n" for k in range(200_000)]
    data = "".join(lines).encode()
    path = tmp_path / "out.txt.gz"
    sink = TextSink(path, "bgzf")
    for lo in range(0, len(data), 100_003):  # past the 8 MB written inline: blocks from the pool
        sink.write(data[lo : lo + 100_003])
    sink.close()
    assert len(data) > 8 << 20
    assert gzip.decompress(path.read_bytes()) == data
    with pysam.BGZFile(str(path), "rb") as fh:  # htslib's reader, block by block
        assert fh.read() == data
    bgzip = shutil.which("bgzip")
    assert bgzip is not None, "bgzip (Debian package tabix) is part of the test set-up"
    assert subprocess.run([bgzip, "-t", str(path)], capture_output=True).returncode == 0
