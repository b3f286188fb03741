"""The vectorised SNV path of WindowBuilder gives exactly what record-by-record planning gives."""

from __future__ import annotations

import random

import numpy as np
import pytest
from helpers import write_fasta

from veff.io.bed import BedIndex
from veff.io.fasta import Fasta
from veff.types import Status, Variant
from veff.variants.windows import WindowBuilder, WindowSet

GENOMES = {"chr1": 300, "chr2": 40, "3": 120}


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    rng = random.Random(7)
    seqs = {c: "".join(rng.choice("ACGTacgtN") for _ in range(n)) for c, n in GENOMES.items()}
    tmp = tmp_path_factory.mktemp("g")
    return seqs, Fasta(write_fasta(tmp / "g.fa", seqs)), tmp


def _records(seqs: dict[str, str], rng: random.Random, n: int) -> list[Variant]:
    """Mostly SNVs (some with a wrong REF, some at contig ends), mixed with every other kind."""
    out = []
    for _ in range(n):
        chrom = rng.choice(["chr1", "chr2", "3", "1", "chrX"])
        seq = seqs.get(chrom, seqs.get("chr" + chrom, "A" * 50))
        pos = rng.randint(0, len(seq) + 1)
        true = seq[pos - 1].upper() if 1 <= pos <= len(seq) else "A"
        ref = true if rng.random() < 0.85 else rng.choice("ACGT")
        kind = rng.random()
        if kind < 0.6:
            alts: tuple[str, ...] = (rng.choice("ACGT"),)
        elif kind < 0.7:
            alts = tuple(rng.sample("ACGT", rng.randint(2, 3)))
        elif kind < 0.8:
            ref = seq[max(pos - 1, 0) : pos + 2].upper() or "AC"
            alts = (ref[0],)
        elif kind < 0.9:
            alts = (rng.choice(["<DEL>", ".", "*", "a", "N"]),)
        else:
            alts = (ref + "GT",)
        out.append(Variant(chrom, pos, ref, alts))
    return out


def _record_by_record(builder: WindowBuilder, variants: list[Variant], monkeypatch) -> WindowSet:
    with monkeypatch.context() as m:
        m.setattr(WindowBuilder, "_snv_runs", lambda self, variants: iter(()))
        return builder.build(variants)


def _assert_same(got: WindowSet, want: WindowSet) -> None:
    for name in WindowSet.__dataclass_fields__:
        a, b = getattr(got, name), getattr(want, name)
        if isinstance(b, np.ndarray):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert a == b, name


@pytest.mark.parametrize("length", [1, 2, 7, 21])
@pytest.mark.parametrize(
    "options",
    [{}, {"centering": "kipoi"}, {"ref_mismatch": "score"}, {"max_indel_length": 0}, {"restrict": True}],
    ids=["exact", "kipoi", "mismatch-score", "no-indels", "restricted"],
)
def test_snv_runs_match_record_by_record_planning(genome, monkeypatch, length, options):
    seqs, fasta, tmp = genome
    options = dict(options)
    if options.pop("restrict", False):
        bed = tmp / "r.bed"
        bed.write_text("chr1\t10\t200\nchr2\t0\t40\n")
        options["restriction"] = BedIndex.from_bed(bed)
    if length == 1 and options.get("centering") == "kipoi":
        length = 2  # kipoi centring (L//2 - 1) needs L >= 2
    builder = WindowBuilder(fasta, length, **options)
    rng = random.Random(length)
    for _ in range(20):
        variants = _records(seqs, rng, rng.randint(0, 40))
        _assert_same(builder.build(variants), _record_by_record(builder, variants, monkeypatch))


def test_snv_runs_cover_plain_snvs_only(tmp_path):
    fasta = Fasta(write_fasta(tmp_path / "s.fa", {"chr1": "ACGTACGTACGTTTTTGGGGCCCCAAAA"}))
    variants = [
        Variant("chr1", 10, "C", ("A",)),
        Variant("chr1", 11, "G", ("A", "C")),  # multi-allelic
        Variant("chr1", 10, "G", ("A",)),  # REF mismatch
        Variant("chr1", 1, "A", ("T",)),  # at the contig edge: still a plain SNV
        Variant("chr1", 2, "C", ("T",)),
        Variant("chrX", 5, "A", ("C",)),  # unknown contig
    ]
    builder = WindowBuilder(fasta, 11)
    assert list(builder._snv_runs(variants)) == [("chr1", 0, 1), ("chr1", 3, 5)]
    ws = builder.build(variants)
    assert ws.statuses == [
        [Status.OK],
        [Status.OK, Status.OK],
        [Status.REF_MISMATCH],
        [Status.CONTIG_EDGE],
        [Status.CONTIG_EDGE],
        [Status.UNKNOWN_CONTIG],
    ]
    assert ws.alt_slot.tolist() == [[0, 0], [1, 0], [1, 1], [3, 0], [4, 0]]
    assert ws.alt_geometry.tolist() == [[5, 1, 1]] * 5
