"""Turn a chunk of VCF records into reference and alternative model-input windows.

For every record the REF allele is checked against the FASTA, every ALT gets a
:class:`~veff.types.Status`, and each scorable ALT gets a fixed-length alt window (see
:mod:`veff.variants.sequences` for the rule) next to a reference window that is shared by the ALTs of the
record that need the same window (one per record in the usual case, so the reference is
predicted once per record, not once per ALT).

Alleles are normalised (shared bases trimmed, left-aligned in repeats, as ``bcftools norm``)
before windows are placed, so equivalent representations of a change get identical windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby, repeat
from typing import Any, Literal

import numpy as np

from veff.io.bed import BedIndex
from veff.io.fasta import Contig, Fasta
from veff.types import Region, RowKey, Status, Variant
from veff.variants.regions import Centering, centre_index, restricted_window
from veff.variants.sequences import allele_status, codes_to_str, normalize_allele, str_to_codes

__all__ = ["DEFAULT_MAX_INDEL_LENGTH", "WindowBuilder", "WindowSet"]

RefMismatchPolicy = Literal["skip", "score"]
DEFAULT_MAX_INDEL_LENGTH = 50
_BASES = frozenset("ACGT")


@dataclass
class WindowSet:
    """Windows for a chunk of records.

    Attributes
    ----------
    variants
        The records' variants, in input order.
    records
        The matching cyvcf2 records (passed through to writers).
    statuses
        Per record, one status per ALT.
    ref_codes
        uint8, shape (n_ref, L): reference windows.
    ref_regions
        Genomic region of each reference window (FASTA contig names).
    alt_codes
        uint8, shape (n_alt, L): windows of the scored ALTs.
    alt_ref
        int, shape (n_alt,): row of ``ref_codes`` that each alt window is compared with.
    alt_slot
        int, shape (n_alt, 2): ``(record index, ALT index)`` of each scored ALT, the first two
        fields of its :class:`~veff.types.RowKey` (:meth:`row_keys`). The rows of the outputs are
        these, one per scored ALT, unless a per-feature score gives an ALT several rows
        (:class:`veff.writers.sink.ScoredChunk`).
    normalized
        ``(record index, ALT index) -> (pos, ref, alt)`` (1-based pos) where normalisation changed
        the allele.
    alt_geometry
        int, shape (n_alt, 3): per scored ALT, the index ``o`` of the (normalised) REF in its
        window and the lengths of the normalised REF and ALT (what position-resolved scores need
        to find the variant and align the alt track with the reference track).
    extra_inputs
        Other model inputs per reference row, name -> array of shape (n_ref, ...), or None (the
        usual case). Only windows from a model's own dataloader carry them
        (:mod:`veff.models.kipoi.windows`); alt windows use the arrays of their ``alt_ref`` row.
    """

    variants: list[Variant]
    records: list[Any]
    statuses: list[list[Status]]
    ref_codes: np.ndarray
    ref_regions: list[Region]
    alt_codes: np.ndarray
    alt_ref: np.ndarray
    alt_slot: np.ndarray
    normalized: dict[tuple[int, int], tuple[int, str, str]] = field(default_factory=dict)
    alt_geometry: np.ndarray = field(default_factory=lambda: np.empty((0, 3), np.int64))
    extra_inputs: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.variants)

    def row_keys(self) -> list[RowKey]:
        """The :class:`~veff.types.RowKey` of each alt window (feature ``""``), in ``alt_slot`` order."""
        return [RowKey(i, a) for i, a in self.alt_slot.tolist()]


@dataclass
class _Pending:
    """Alt windows collected while a chunk is planned."""

    ref_starts: list[tuple[str, int]] = field(default_factory=list)
    snv: list[tuple[int, int, int, int]] = field(default_factory=list)  # alt row, ref row, off, base
    other: list[tuple[int, np.ndarray]] = field(default_factory=list)  # alt row, codes
    alt_ref: list[int] = field(default_factory=list)
    alt_slot: list[tuple[int, int]] = field(default_factory=list)
    geometry: list[tuple[int, int, int]] = field(default_factory=list)  # offset, len(ref), len(alt)
    ref_patch: list[tuple[int, int, np.ndarray]] = field(default_factory=list)


class WindowBuilder:
    """Plan windows for variants.

    Parameters
    ----------
    fasta
        Reference genome.
    seq_length
        Model input length L.
    centering
        ``exact`` or ``kipoi`` (see :mod:`veff.variants.regions`).
    restriction
        Optional BED intervals that windows must lie in.
    ref_mismatch
        ``skip``: REF alleles that disagree with the FASTA are not scored; ``score``: the VCF REF
        is written into the reference window and the ALT scored against it.
    max_indel_length
        Longest indel (length difference of REF and ALT) that is scored.
    normalize
        Normalise alleles before placing windows.
    """

    def __init__(
        self,
        fasta: Fasta,
        seq_length: int,
        *,
        centering: Centering = "exact",
        restriction: BedIndex | None = None,
        ref_mismatch: RefMismatchPolicy = "skip",
        max_indel_length: int = DEFAULT_MAX_INDEL_LENGTH,
        normalize: bool = True,
    ) -> None:
        self.fasta = fasta
        self.length = seq_length
        self.centre = centre_index(seq_length, centering)
        self.centering = centering
        self.restriction = restriction
        self.ref_mismatch = ref_mismatch
        self.max_indel_length = max_indel_length
        self.normalize = normalize

    def build(self, variants: list[Variant], records: list[Any] | None = None) -> WindowSet:
        """Plan the windows of a chunk of records (see :class:`WindowSet`)."""
        pend = _Pending()
        statuses: list[list[Status]] = []
        normalized: dict[tuple[int, int], tuple[int, str, str]] = {}
        i = 0  # runs of plain SNVs are planned at once, the records between runs one by one
        for chrom, lo, hi in [*self._snv_runs(variants), (None, len(variants), len(variants))]:
            statuses.extend(self._plan_record(k, variants[k], pend, normalized) for k in range(i, lo))
            if chrom is not None:
                statuses.extend(self._plan_snvs(lo, variants[lo:hi], chrom, pend))
            i = hi
        ref_codes = self._fetch_refs(pend)
        alt_codes = np.empty((len(pend.alt_ref), self.length), dtype=np.uint8)
        if pend.snv:
            rows, refs, offs, bases = (np.array(c, dtype=np.int64) for c in zip(*pend.snv, strict=True))
            alt_codes[rows] = ref_codes[refs]
            alt_codes[rows, offs] = bases.astype(np.uint8)
        for row, codes in pend.other:
            alt_codes[row] = codes
        return WindowSet(
            variants=variants,
            records=records if records is not None else [None] * len(variants),
            statuses=statuses,
            ref_codes=ref_codes,
            ref_regions=[Region(c, s, s + self.length) for c, s in pend.ref_starts],
            alt_codes=alt_codes,
            alt_ref=np.array(pend.alt_ref, dtype=np.int64),
            alt_slot=np.array(pend.alt_slot, dtype=np.int64).reshape(-1, 2),
            normalized=normalized,
            alt_geometry=np.array(pend.geometry, dtype=np.int64).reshape(-1, 3),
        )

    def _fetch_refs(self, pend: _Pending) -> np.ndarray:
        out = np.empty((len(pend.ref_starts), self.length), dtype=np.uint8)
        by_chrom: dict[str, list[int]] = {}
        for row, (chrom, _) in enumerate(pend.ref_starts):
            by_chrom.setdefault(chrom, []).append(row)
        for chrom, rows in by_chrom.items():
            starts = np.array([pend.ref_starts[r][1] for r in rows], dtype=np.int64)
            out[rows] = self.fasta.fetch_many(chrom, starts, self.length)
        for row, off, codes in pend.ref_patch:
            out[row, off : off + len(codes)] = codes[: self.length - off]
        return out

    def _snv_runs(self, variants: list[Variant]) -> Iterator[tuple[str, int, int]]:
        """Yield ``(FASTA contig, lo, hi)`` for runs of records that :meth:`_plan_snvs` plans at once.

        Those are records with one A/C/G/T SNV ALT whose REF matches the FASTA, when no BED
        restriction is given: their windows depend on the position alone. Every other record goes
        through :meth:`_plan_record`; both give the same windows and statuses for these records.
        """
        if self.restriction is not None or self.length - self.centre < 1 or self.max_indel_length < 0:
            return
        chroms = [
            self.fasta.resolve(v.chrom)
            if len(v.ref) == 1 and len(v.alts) == 1 and v.ref in _BASES and v.alts[0] in _BASES
            else None
            for v in variants
        ]
        by_chrom: dict[str, list[int]] = {}
        for k, c in enumerate(chroms):
            if c is not None:
                by_chrom.setdefault(c, []).append(k)
        for chrom, rows in by_chrom.items():
            starts = np.array([variants[k].start for k in rows], dtype=np.int64)
            ref = np.array([ord(variants[k].ref) for k in rows], dtype=np.uint8)
            contig = self.fasta.contig(chrom)
            inside = (starts >= 0) & (starts < len(contig))
            match = inside & (contig[np.where(inside, starts, 0)] == ref)
            for k in np.asarray(rows)[~match].tolist():
                chroms[k] = None  # REF mismatch: planned record by record
        lo = 0
        for name, run in groupby(chroms):
            hi = lo + sum(1 for _ in run)
            if name is not None:
                yield name, lo, hi
            lo = hi

    def _plan_snvs(self, lo: int, variants: list[Variant], chrom: str, pend: _Pending) -> list[list[Status]]:
        """Plan records ``lo, lo + 1, ...`` from :meth:`_snv_runs` together (one ref and one alt row each)."""
        n, centre = len(variants), self.centre
        w = np.array([v.start for v in variants], dtype=np.int64) - centre
        edge = (w < 0) | (w + self.length > self.fasta.lengths[chrom])
        ref_rows = range(len(pend.ref_starts), len(pend.ref_starts) + n)
        alt_rows = range(len(pend.alt_ref), len(pend.alt_ref) + n)
        pend.ref_starts.extend(zip(repeat(chrom, n), w.tolist(), strict=True))
        pend.alt_ref.extend(ref_rows)
        pend.alt_slot.extend(zip(range(lo, lo + n), repeat(0, n), strict=True))
        pend.geometry.extend(repeat((centre, 1, 1), n))
        bases = (ord(v.alts[0]) for v in variants)
        pend.snv.extend(zip(alt_rows, ref_rows, repeat(centre, n), bases, strict=True))
        return [[Status.CONTIG_EDGE] if e else [Status.OK] for e in edge.tolist()]

    def _plan_record(
        self,
        i: int,
        v: Variant,
        pend: _Pending,
        normalized: dict[tuple[int, int], tuple[int, str, str]],
    ) -> list[Status]:
        if not v.alts or v.alts == (".",):
            return [Status.NO_ALT]
        chrom = self.fasta.resolve(v.chrom)
        if chrom is None:
            return [Status.UNKNOWN_CONTIG] * len(v.alts)
        contig = self.fasta.contig(chrom)
        s, r = v.start, len(v.ref)
        if s < 0 or s + r > len(contig):  # REF not (wholly) on the contig: another build, or a typo
            return [
                Status.NO_ALT if a == "." else allele_status(v.ref, a) or Status.BEYOND_CONTIG for a in v.alts
            ]
        genome_ref = codes_to_str(contig[s : s + r])
        mismatch = genome_ref != v.ref
        if mismatch and self.ref_mismatch == "skip":
            return [
                allele_status(v.ref, a) or Status.REF_MISMATCH if a != "." else Status.NO_ALT for a in v.alts
            ]
        out: list[Status] = []
        ref_rows: dict[int, int] = {}
        for j, alt in enumerate(v.alts):
            bad = allele_status(v.ref, alt)
            if bad is not None:
                out.append(Status.NO_ALT if alt == "." else bad)
                continue
            ns, nref, nalt = (s, v.ref, alt)
            if self.normalize and not mismatch:
                ns, nref, nalt = normalize_allele(contig, s, v.ref, alt)
                if (ns, nref, nalt) != (s, v.ref, alt):
                    normalized[(i, j)] = (ns + 1, nref, nalt)
            status = self._place(i, j, chrom, contig, ns, nref, nalt, mismatch, pend, ref_rows)
            out.append(status)
        return out

    def _place(
        self,
        i: int,
        j: int,
        chrom: str,
        contig: Contig,
        start: int,
        ref: str,
        alt: str,
        mismatch: bool,
        pend: _Pending,
        ref_rows: dict[int, int],
    ) -> Status:
        length, r, a = self.length, len(ref), len(alt)
        if abs(r - a) > self.max_indel_length or max(r, a) > length - self.centre:
            return Status.INDEL_TOO_LONG
        extent = length + max(0, r - a)
        if self.restriction is None:
            w = start - self.centre
        else:
            region = restricted_window(
                self.restriction.containing(chrom, start, start + r),
                start,
                length,
                self.centering,
                extent=extent,
            )
            if region is None:
                return Status.NOT_IN_REGION
            w = region.start
        off = start - w
        row = ref_rows.get(w)
        if row is None:
            row = ref_rows[w] = len(pend.ref_starts)
            pend.ref_starts.append((chrom, w))
            if mismatch:
                pend.ref_patch.append((row, off, str_to_codes(ref)))
        alt_row = len(pend.alt_ref)
        pend.alt_ref.append(row)
        pend.alt_slot.append((i, j))
        pend.geometry.append((off, r, a))
        if r == 1 and a == 1:
            pend.snv.append((alt_row, row, off, ord(alt)))
        else:
            ext = self.fasta.fetch_many(chrom, np.array([w]), extent)[0]
            codes = np.concatenate([ext[:off], str_to_codes(alt), ext[off + r :]])[:length]
            pend.other.append((alt_row, codes))
        if mismatch:
            return Status.REF_MISMATCH_SCORED
        if w < 0 or w + extent > len(contig):
            return Status.CONTIG_EDGE
        return Status.OK
