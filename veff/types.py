"""Value objects shared by every stage of veff, and the one coordinate convention.

Coordinates
-----------
* ``Variant.pos`` is **1-based**, exactly as the VCF ``POS`` column.
  ``Variant.start`` is the same base as a 0-based offset (``pos - 1``).
* ``Region`` is **0-based, half-open** ``[start, end)``, as in BED files. Its length is ``end - start``.
* A window of length ``L`` for a variant is a ``Region`` with ``end - start == L``; the index of the
  variant's first REF base inside the window is ``variant.start - region.start``.

Conversions happen only where files are read or written (``veff.io`` and ``veff.writers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal, NamedTuple

__all__ = ["SCORED_STATUSES", "Region", "RowKey", "Status", "Strand", "Variant"]

Strand = Literal["+", "-", "."]


@dataclass(frozen=True, slots=True)
class Variant:
    """One VCF record's key fields.

    Parameters
    ----------
    chrom
        Contig name as written in the VCF.
    pos
        1-based position of the first REF base (VCF ``POS``).
    ref
        REF allele, upper case.
    alts
        ALT alleles, as written but with bases in upper case (lower-case ``acgt`` are the same
        bases); may hold symbolic alleles, ``*`` or be empty for ``.``.
    id
        VCF ``ID`` (``"."`` when missing).

    Examples
    --------
    A deletion of T after the A at VCF position 100: ``start``/``end`` are the REF bases as a
    0-based half-open range.

    >>> v = Variant("chr1", 100, "AT", ("A",))
    >>> v.start, v.end
    (99, 101)
    >>> v.key("A")
    'chr1:100:AT:A'
    """

    chrom: str
    pos: int
    ref: str
    alts: tuple[str, ...]
    id: str = "."

    @property
    def start(self) -> int:
        """0-based offset of the first REF base."""
        return self.pos - 1

    @property
    def end(self) -> int:
        """0-based exclusive end of the REF allele."""
        return self.pos - 1 + len(self.ref)

    def key(self, alt: str, feature: str = "") -> str:
        """Return the row key ``chrom:pos:ref:alt`` (``chrom:pos:ref:alt:feature`` with a feature).

        Examples
        --------
        >>> v = Variant("chr1", 100, "A", ("C",))
        >>> v.key("C"), v.key("C", "GENE1")
        ('chr1:100:A:C', 'chr1:100:A:C:GENE1')
        """
        return f"{self.chrom}:{self.pos}:{self.ref}:{alt}" + (f":{feature}" if feature else "")


class RowKey(NamedTuple):
    """The key of one row of every output: a record, one of its ALT alleles, and a feature.

    ``record`` is the record's index in its chunk (:class:`veff.variants.windows.WindowSet`),
    ``alt`` the 0-based index of the ALT allele in the record. ``feature`` is ``""`` for a score
    of the ALT as a whole (every score today); a per-feature score (per gene or transcript, as
    SpliceAI scores each gene a variant touches) gives one row per feature of an ALT, all with
    the ALT's windows.
    """

    record: int
    alt: int
    feature: str = ""


@dataclass(frozen=True, slots=True)
class Region:
    """A genomic interval, 0-based half-open ``[start, end)``.

    Examples
    --------
    The 21-bp window centred on the variant above holds its REF bases:

    >>> w = Region("chr1", 89, 110)
    >>> len(w), w.contains(99, 101), w.contains(109, 111)
    (21, True, False)
    """

    chrom: str
    start: int
    end: int
    strand: Strand = "."
    name: str = ""

    def __len__(self) -> int:
        return self.end - self.start

    def contains(self, start: int, end: int) -> bool:
        """Return whether ``[start, end)`` lies inside this region."""
        return self.start <= start and end <= self.end


class Status(str, Enum):
    """Why an ALT allele was or was not scored (written to the ``<PREFIX>_STATUS`` tag).

    Scored: ``ok``, ``contig_edge`` (window padded with N past the contig end),
    ``ref_mismatch_scored`` (``--ref-mismatch score``: VCF REF written into the reference window).
    Not scored: everything else. Gene-aware splice scoring (:mod:`veff.variants.splice`) adds
    ``outside_genes`` (no annotated transcript contains the position), ``near_contig_end``
    (SpliceAI's skip of windows that leave the contig) and ``complex_not_scored`` (MNVs and
    complex alleles in SpliceAI's style, written as ``.`` entries).

    Examples
    --------
    >>> str(Status.CONTIG_EDGE), Status.CONTIG_EDGE in SCORED_STATUSES
    ('contig_edge', True)
    """

    OK = "ok"
    CONTIG_EDGE = "contig_edge"
    REF_MISMATCH_SCORED = "ref_mismatch_scored"
    REF_MISMATCH = "ref_mismatch"
    UNKNOWN_CONTIG = "unknown_contig"
    BEYOND_CONTIG = "beyond_contig"
    NONFINITE = "nonfinite"
    NOT_IN_REGION = "not_in_region"
    UNSUPPORTED_ALLELE = "unsupported_allele"
    INDEL_TOO_LONG = "indel_too_long"
    NO_ALT = "no_alt"
    OUTSIDE_GENES = "outside_genes"
    NEAR_CONTIG_END = "near_contig_end"
    COMPLEX_NOT_SCORED = "complex_not_scored"

    def __str__(self) -> str:
        return self.value


SCORED_STATUSES = frozenset({Status.OK, Status.CONTIG_EDGE, Status.REF_MISMATCH_SCORED})
