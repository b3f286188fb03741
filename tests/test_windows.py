from __future__ import annotations

import pytest
from helpers import CHR1, CHR2, write_fasta

from veff.io.fasta import Fasta
from veff.types import Status, Variant
from veff.variants.sequences import codes_to_str
from veff.variants.windows import WindowBuilder

GENOME = "ACGTACGTACGTTTTTGGGGCCCCAAAA"  # 28 bp


@pytest.fixture
def small(tmp_path):
    return Fasta(write_fasta(tmp_path / "s.fa", {"c": GENOME}))


def _alt(ws, k=0):
    return codes_to_str(ws.alt_codes[k])


def test_deletion_pulls_bases_from_the_right_flank(small):
    # REF "TAC" at 1-based 4 (0-based 3), ALT "T": deletes AC
    ws = WindowBuilder(small, 7, normalize=False).build([Variant("c", 4, "TAC", ("T",))])
    assert ws.statuses == [[Status.OK]]
    assert codes_to_str(ws.ref_codes[0]) == GENOME[0:7]  # variant at index 3
    assert _alt(ws) == "ACG" + "T" + GENOME[6:9]


def test_insertion_trims_the_right_end(small):
    ws = WindowBuilder(small, 7, normalize=False).build([Variant("c", 4, "T", ("TGGG",))])
    assert codes_to_str(ws.ref_codes[0]) == GENOME[0:7]
    assert _alt(ws) == "ACG" + "TGGG"


def test_snv_and_mnv_windows(small):
    ws = WindowBuilder(small, 8, normalize=False).build(
        [Variant("c", 10, "CG", ("TA",)), Variant("c", 10, "C", ("A",))]
    )
    assert codes_to_str(ws.ref_codes[0]) == GENOME[6:14]
    assert _alt(ws, 0) == GENOME[6:9] + "TA" + GENOME[11:14]
    assert _alt(ws, 1) == GENOME[6:9] + "A" + GENOME[10:14]


def test_equivalent_representations_give_identical_windows(tmp_path):
    fa = Fasta(write_fasta(tmp_path / "g.fa", {"2": CHR2}))
    # homopolymer GAAAAAAT at 0-based 100..107: delete one A, written three ways
    forms = [
        Variant("2", 101, "GA", ("G",)),
        Variant("2", 103, "AA", ("A",)),
        Variant("2", 106, "AAT", ("AT",)),
    ]
    ws = WindowBuilder(fa, 21).build(forms)
    assert all(s == [Status.OK] for s in ws.statuses)
    alts = {codes_to_str(a) for a in ws.alt_codes}
    refs = {codes_to_str(ws.ref_codes[r]) for r in ws.alt_ref}
    assert len(alts) == 1 and len(refs) == 1
    assert ws.normalized[(1, 0)] == (101, "GA", "G")


def test_ref_window_shared_by_alts_of_a_record(tmp_path):
    fa = Fasta(write_fasta(tmp_path / "g.fa", {"chr1": CHR1}))
    b = CHR1[299].upper()
    alts = (*tuple(x for x in "ACGT" if x != b), b + "GG")
    ws = WindowBuilder(fa, 11).build([Variant("chr1", 300, b, alts)])
    assert ws.ref_codes.shape[0] == 1 and len(ws.alt_ref) == 4
    assert set(ws.alt_ref.tolist()) == {0}


def test_statuses_for_long_indels_and_contig_edges(small):
    ws = WindowBuilder(small, 7, max_indel_length=2).build(
        [
            Variant("c", 4, "TACG", ("T",)),
            Variant("c", 1, "A", ("G",)),
            Variant("c", 27, "A", ("G",)),
            Variant("c", 4, "T", ("TGG",)),
        ]
    )
    assert ws.statuses == [[Status.INDEL_TOO_LONG], [Status.CONTIG_EDGE], [Status.CONTIG_EDGE], [Status.OK]]
    assert codes_to_str(ws.ref_codes[0]) == "NNNACGT"


def test_deletion_must_fit_its_restriction_interval(small):
    from veff.io.bed import BedIndex
    from veff.types import Region

    bed = BedIndex([Region("c", 0, 8)])
    ws = WindowBuilder(small, 7, restriction=bed, normalize=False).build(
        [Variant("c", 4, "T", ("A",)), Variant("c", 4, "TA", ("T",)), Variant("c", 4, "TAC", ("T",))]
    )
    assert ws.statuses == [[Status.OK], [Status.OK], [Status.NOT_IN_REGION]]
