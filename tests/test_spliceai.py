"""A real position-resolved model: SpliceAI (Keras weights from the ``spliceai`` PyPI package).

The weights may not be committed (their licence), so the test uses the installed package
(``make install`` installs it) and skips when it is absent.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pysam
import pytest
from click.testing import CliRunner
from helpers import E1, E2, EXAMPLE, HG19, HG38, write_vcf

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


# -- gene-aware scoring with the five SpliceAI networks (veff.score_splice) ---------------------

SPLICE = Path(__file__).parent / "data" / "spliceai"
ENSEMBLE = [MODEL.parent / f"spliceai{k}.h5" for k in range(1, 6)]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    # the test machine's cores are shared: small ops on two contended threads are 10x slower
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _subset(vcf: Path, ids: set[str], out: Path) -> Path:
    lines = vcf.read_text().splitlines(keepends=True)
    out.write_text("".join(x for x in lines if x.startswith("#") or x.split("\t")[2] in ids))
    return out


def _entries(path: Path, ids: set[str] | None = None) -> dict[str, str | None]:
    opener = gzip.open if str(path).endswith(".gz") else open
    got: dict[str, str | None] = {}
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            f = line.rstrip("\n").split("\t")
            info = dict(kv.split("=", 1) for kv in f[7].split(";") if "=" in kv)
            if ids is None or f[2] in ids:
                got[f"{f[1]}:{f[2]}"] = info.get("SpliceAI")
    return got


def _fresh(call: str) -> None:
    """Run ``call`` (Python, with this module as ``t``) in a new interpreter.

    In the full test suite, after Keras and other tests had read HDF5 files in the same process,
    HDF5 crashed (segfault) closing the SpliceAI file h5py had just read for SpliceNet; alone the
    same tests pass. A command-line run is a fresh process, so the checks run in one.
    """
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    code = f"import sys; sys.path.insert(0, {str(here)!r}); import test_spliceai as t; {call}"
    env = {**os.environ, "PYTHONPATH": str(here.parent)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def test_splicenet_equals_keras_and_incremental_equals_full() -> None:
    _fresh("t._check_splicenet()")


def _check_splicenet() -> None:
    import keras
    import torch

    torch.set_num_threads(1)

    from veff.io.annotation import read_annotation
    from veff.io.fasta import Fasta
    from veff.io.vcf import VcfReader
    from veff.models.splicenet import SpliceNetEnsemble
    from veff.pipeline_splice import _edits
    from veff.variants.sequences import one_hot
    from veff.variants.splice import SpliceGeometry, SplicePlanner

    net = SpliceNetEnsemble([MODEL])
    geo = SpliceGeometry(5000, 50, 10)
    cases = [
        (E1, HG38, "genes_E1_grch38_chr22.txt", 32193191),
        (E2, HG19, "genes_E2_grch37_chr17.txt", 11870),
    ]
    for vcf, fasta, genes, pos in cases:
        planner = SplicePlanner(Fasta(fasta), read_annotation(SPLICE / genes), geo, style="veff")
        # the 1-bp deletion at pos, and the SNVs and insertions at pos + 1
        variants = [v for v, _ in VcfReader(vcf) if (v.pos, len(v.ref)) in ((pos, 2), (pos + 1, 1))]
        ss = planner.build(variants)
        kinds = {tuple(x) for x in ss.alt_alleles.tolist()}
        assert {(1, 1), (2, 1), (1, 2)} <= kinds  # SNVs, deletions and insertions
        ref, alt = net.predict_splice(ss.ref_codes, ss.alt_codes, _edits(ss))
        full_alt = net.predict(one_hot(ss.alt_codes))
        np.testing.assert_allclose(np.stack(ref), net.predict(one_hot(np.stack(ss.ref_codes))), atol=1e-6)
        used = ~np.isnan(alt)
        assert used.any(axis=(1, 2)).all()
        np.testing.assert_allclose(alt[used], full_alt[used], atol=1e-5)
    # an ensemble's items run on worker threads; the bytes do not depend on how many
    pair = SpliceNetEnsemble([MODEL, MODEL.with_name("spliceai2.h5")])
    edits = _edits(ss)
    runs = [pair.predict_splice(ss.ref_codes, ss.alt_codes, edits, workers=w) for w in (1, 2)]
    assert [r.tobytes() for r in runs[0][0]] == [r.tobytes() for r in runs[1][0]]
    assert runs[0][1].tobytes() == runs[1][1].tobytes()
    # reference windows merged over records up to 4 kb apart (both strands) give the same tracks
    strands: set[bool] = set()
    for vcf, fasta, genes, _ in cases:
        variants = [v for v, _ in VcfReader(vcf)]
        got = []
        for span in (0, 4096):
            planner = SplicePlanner(
                Fasta(fasta), read_annotation(SPLICE / genes), geo, style="veff", span=span
            )
            ss = planner.build(variants)
            ref, alt = net.predict_splice(ss.ref_codes, ss.alt_codes, _edits(ss))
            fwd = [t[::-1] if m else t for t, m in zip(ref, ss.ref_minus.tolist(), strict=True)]
            at = [fwd[r][o : o + geo.cov] for r, o in zip(ss.alt_ref, ss.alt_offset, strict=True)]
            got.append((len(ss.ref_codes), np.stack(at), alt, set(ss.ref_minus.tolist())))
        assert got[1][0] < got[0][0]
        strands |= got[1][3]
        np.testing.assert_allclose(got[1][1], got[0][1], atol=1e-6)
        np.testing.assert_allclose(got[1][2], got[0][2], atol=1e-6)
    assert strands == {True, False}
    keras_model = keras.models.load_model(str(MODEL), compile=False)
    x = one_hot(ss.ref_codes[0][None])
    np.testing.assert_allclose(net.predict(x), np.asarray(keras_model.predict_on_batch(x)), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("vcf", "fasta", "genes", "expected", "ids"),
    [
        (
            E2,
            HG19,
            "genes_E2_grch37_chr17.txt",
            "E2_hg19_chr17_1-40000.spliceai_D50_M0.vcf",
            {"within_5kb_of_chrom_start", "DOC2B_exon_end_-1", "DOC2B_exon_end_del2", "DOC2B_exon_start_+0"},
        ),
        (
            E1,
            HG38,
            "genes_E1_grch38_chr22.txt",
            "E1_hg38_chr22_32000001-32300000.spliceai_D50_M0.vcf",
            {"intergenic_no_gene", "ref_mismatch", "SLC5A1_exon_start_del4", "RFPL2_exon_end_+0"},
        ),
        (
            # a held-out set: 113 records on nine GRCh38 chr2 genes of both strands, at 36 exon
            # boundaries and deep in introns (SNVs, 1-2 ALTs, deletions of 1-12, insertions of
            # 1-9 bases), plus a record near the contig start and an intergenic one
            SPLICE / "chr2_heldout.vcf",
            EXAMPLE / "reference" / "hg38_chr2_1-2333275.fa.gz",
            "genes_chr2_grch38.txt",
            "chr2_heldout.spliceai_D50_M0.vcf",
            {
                x.split("\t")[2]
                for x in (SPLICE / "chr2_heldout.vcf").read_text().splitlines()
                if not x.startswith("#")
            },
        ),
        *(
            (  # the same set with SpliceAI's mask, and with -D 300 (every third record, and the skips)
                SPLICE / "chr2_heldout.vcf",
                EXAMPLE / "reference" / "hg38_chr2_1-2333275.fa.gz",
                "genes_chr2_grch38.txt",
                expected,
                {
                    x.split("\t")[2]
                    for k, x in enumerate(
                        ln
                        for ln in (SPLICE / "chr2_heldout.vcf").read_text().splitlines()
                        if not ln.startswith("#")
                    )
                    if k % 3 == 0 or x.split("\t")[2] in ("near_start", "intergenic")
                },
            )
            for expected in ("chr2_heldout.spliceai_D50_M1.vcf", "chr2_heldout.spliceai_D300_M0.vcf")
        ),
        (
            # insertions of 51-300 bases (longer than --max-indel-length): SpliceAI scores them all
            SPLICE / "E2_long_insertions.vcf",
            HG19,
            "genes_E2_grch37_chr17.txt",
            "E2_long_insertions.spliceai_D50_M0.vcf",
            {"ins70_near_contig_start", "ins60", "ins300", "ins52"},
        ),
    ],
)
def test_spliceai_style_reproduces_spliceai_cli(
    tmp_path: Path, vcf: Path, fasta: Path, genes: str, expected: str, ids: set[str]
) -> None:
    args = ", ".join(repr(str(x)) for x in (tmp_path, vcf, fasta, genes, expected))
    _fresh(f"t._check_reproduces({args}, {sorted(ids)!r})")


def _check_reproduces(tmp: str, vcf_: str, fasta: str, genes: str, expected: str, id_list: list[str]) -> None:
    import torch

    from veff import score_splice

    torch.set_num_threads(1)
    tmp_path, vcf, ids = Path(tmp), Path(vcf_), set(id_list)

    small = _subset(vcf, ids, tmp_path / "in.vcf")
    out = tmp_path / "out.vcf.gz"
    got_dm = re.search(r"_D(\d+)_M([01])\.vcf$", expected)
    assert got_dm is not None
    distance, mask = int(got_dm[1]), got_dm[2] == "1"  # the CLI's -D and -M, from the file name
    score_splice(ENSEMBLE, small, fasta, out, annotation=SPLICE / genes, distance=distance, mask=mask)
    want = _entries(SPLICE / expected, ids)
    got = _entries(out)
    assert len(got) == len(want) >= len(ids)
    assert got == want  # every field as SpliceAI 1.3.1 wrote it, skipped records included
    assert sum(v is None for v in got.values()) >= 1


@pytest.mark.slow
def test_builtin_gene_tables_are_the_packages() -> None:
    from veff.io.annotation import read_annotation

    genes = read_annotation("grch37")
    assert Path(genes.source).parent == MODEL.parent.parent / "annotations"
    assert len(genes) > 10_000


def test_spliceai_upstream_unit_test_strings(tmp_path: Path) -> None:
    """SpliceAI's own tests/test_delta_score.py cases (-D 500 -M 0, TUBB8 on the hg19 chr10 slice)."""
    _fresh(f"t._check_upstream({str(tmp_path)!r})")


def _check_upstream(tmp: str) -> None:
    import torch

    torch.set_num_threads(1)
    out = Path(tmp) / "up.vcf"
    res = CliRunner().invoke(
        main,
        [
            "score-variants",
            *map(str, ENSEMBLE),
            "--vcf",
            str(SPLICE / "tubb8_upstream.vcf"),
            "--fasta",
            str(SPLICE / "hg19_chr10_1-110000.fa"),
            "--annotation",
            str(SPLICE / "genes_TUBB8_grch37_chr10.txt"),
            "--info-style",
            "spliceai",
            "--splice-distance",
            "500",
            "-o",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert list(_entries(out).values()) == [
        "C|TUBB8|0.15|0.27|0.00|0.05|89|-23|-267|193",
        "T|TUBB8|0.01|0.18|0.15|0.62|-2|110|-190|0",
    ]
