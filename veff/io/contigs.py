"""Whether a VCF and a FASTA are of one reference build, judged from their contig names before any work."""

from __future__ import annotations

import os
from collections.abc import Iterable
from itertools import islice

from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader

__all__ = ["check_same_build", "no_shared_contig"]

_SAMPLE_RECORDS = 1000
_SHOWN = 4


def _few(names: Iterable[str]) -> str:
    items = list(dict.fromkeys(names))
    return ", ".join(items[:_SHOWN]) + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")


def no_shared_contig(vcf: str | os.PathLike[str], vcf_contigs: Iterable[str], fasta: Fasta) -> InputError:
    """The error for a VCF none of whose contigs is in the FASTA (naming a few of each)."""
    msg = (
        f"{vcf}: none of its contigs ({_few(vcf_contigs)}) is in the FASTA {fasta.path} "
        f"({_few(fasta.lengths)}); is the FASTA of the VCF's reference build? (names match with or "
        "without 'chr', and M/MT)"
    )
    return InputError(msg)


def check_same_build(vcf: str | os.PathLike[str], fasta: Fasta) -> None:
    """Refuse a VCF whose contigs are none of the FASTA's (another reference build, or another species).

    The VCF's ``##contig`` lines and the contigs of its first 1,000 records are looked up in the
    FASTA (:meth:`~veff.io.fasta.Fasta.resolve`: with or without ``chr``). One match is enough: a
    VCF with some contigs the FASTA lacks is scored, those records getting ``unknown_contig``.
    When the header declares no contigs and the first 1,000 records all miss, the answer waits
    for the end of the run (:func:`veff.score_variants` then raises the same error).

    Raises
    ------
    InputError
        Naming a few contigs of each file.
    """
    reader = VcfReader(vcf)
    try:
        declared = reader.contigs
        seen = [v.chrom for v, _ in islice(reader, _SAMPLE_RECORDS)]
        complete = reader.records_read < _SAMPLE_RECORDS
    finally:
        reader.close()
    if not seen or any(fasta.resolve(c) is not None for c in [*declared, *dict.fromkeys(seen)]):
        return
    if declared or complete:
        raise no_shared_contig(vcf, [*dict.fromkeys(seen), *declared], fasta)
