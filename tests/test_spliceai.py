"""A real position-resolved model: SpliceAI (Keras weights from the ``spliceai`` PyPI package).

The weights may not be committed (their licence), so the test uses the installed package
(``make install`` installs it) and skips when it is absent.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pysam
import pytest
from click.testing import CliRunner
from helpers import E1, HG38, write_vcf

from veff.cli import main
from veff.writers.read import read_scores

SPEC = importlib.util.find_spec("spliceai")
if SPEC is None or SPEC.origin is None:  # pragma: no cover - depends on the environment
    pytest.skip("the spliceai package is not installed", allow_module_level=True)
MODEL = Path(SPEC.origin).parent / "models" / "spliceai1.h5"
CONTEXT, P = 10000, 101
L = CONTEXT + P
LABELS = ("neither", "acceptor", "donor")


def _one_hot(seq: str) -> np.ndarray:
    lut = {"A": 0, "C": 1, "G": 2, "T": 3}
    out = np.zeros((len(seq), 4), np.float32)
    for i, c in enumerate(seq.upper()):
        if c in lut:
            out[i, lut[c]] = 1
    return out


def test_spliceai_window50_max_abs_matches_direct_computation(tmp_path: Path) -> None:
    import keras

    # SNVs at the SLC5A1 exon 2 acceptor (from the shipped example VCF) and one far from genes
    rows = [
        ("chr22", 32010000, "intergenic", "A", "G"),
        ("chr22", 32068494, "acc_-1", "A", "C"),
        ("chr22", 32068495, "exon_+0", "G", "T"),
        ("chr22", 32068497, "exon_+2", "T", "A"),
    ]
    assert all(f"\t{pos}\t" in E1.read_text() for _, pos, *_ in rows)
    vcf = write_vcf(tmp_path / "sp.vcf", rows)
    table = tmp_path / "sp.tsv"
    res = CliRunner().invoke(
        main,
        [
            "score-variants",
            str(MODEL),
            "--vcf",
            str(vcf),
            "--fasta",
            str(HG38),
            "--seq-length",
            str(L),
            "--aggregate",
            "window:50 max_abs",
            "--output-labels",
            ",".join(LABELS),
            "--table",
            str(table),
            "-o",
            str(tmp_path / "sp.vcf.gz"),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    got = read_scores(table)
    assert list(got["status"]) == ["ok"] * len(rows)

    model = keras.models.load_model(str(MODEL), compile=False)
    centre = (L - 1) // 2
    with pysam.FastaFile(str(HG38)) as fa:
        for k, (chrom, pos, _, ref, alt) in enumerate(rows):
            start = pos - 1 - centre
            seq = fa.fetch(chrom, start, start + L).upper()
            assert seq[centre] == ref
            mut = seq[:centre] + alt + seq[centre + 1 :]
            pred = np.asarray(model.predict_on_batch(np.stack([_one_hot(seq), _one_hot(mut)])))
            assert pred.shape == (2, P, 3)
            var = centre - CONTEXT // 2  # output index of the variant
            lo, hi = max(0, var - 50), min(P, var + 51)
            diff = (pred[1] - pred[0])[lo:hi]
            want = diff[np.argmax(np.abs(diff), axis=0), np.arange(3)]
            np.testing.assert_allclose(
                [got[f"diff/{lab}"].iloc[k] for lab in LABELS], want, rtol=1e-4, atol=1e-6
            )
    # destroying the acceptor AG of SLC5A1 exon 2 abolishes the acceptor call
    assert got["diff/acceptor"].iloc[1] < -0.5
    assert abs(got["diff/acceptor"].iloc[0]) < 0.01
