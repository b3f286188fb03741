"""Gene-aware windows for SpliceAI-class splice models: one scored entry per record x ALT x transcript.

A splice model of this class maps an input of ``2 * flank + P`` bases to ``P`` output positions
(three classes: neither, acceptor, donor); output ``k`` looks at input ``k + flank``. Scoring a
variant within ``D`` bases (``--splice-distance``) needs the ``2D + 1`` outputs centred on it,
for the reference and for the alternative sequence, once per transcript that contains the
variant, because:

* bases outside the transcript are ``N`` (as SpliceAI's CLI pads them), so windows depend on the
  transcript;
* a minus-strand transcript is scored on the reverse complement: windows are reverse-complemented
  here and the predicted tracks flipped back by the caller (:meth:`SpliceSet.orient`).

**Reference tracks are shared.** Output ``k`` depends on input ``[k, k + 2 * flank]`` only, so the
reference outputs at a genomic position are the same in every window that covers it (with the same
transcript padding). One reference window of ``P = 2D + 1 + room`` outputs therefore serves every
record of the chunk whose ``2D + 1`` positions fall inside it, for all their ALTs; with ``span``
(for engines that take windows of any length, :mod:`veff.models.splicenet`) a window grows to
cover every record of the transcript within ``span`` bases of its first one, so records a few
kilobases apart share one window of ``P + span`` outputs instead of paying ``2 * flank`` input
bases each.

**Alt windows** put the ALT at input index ``flank + D``; they are ``L`` long whatever the allele
(a deletion pulls in the following bases, an insertion pushes them out), so that every window of
a chunk has the same shape. ``room`` output positions beyond the ``2D + 1`` hold the bases an
insertion adds: ``--max-indel-length`` of them, or in ``spliceai`` style as many as the chunk's
longest insertion adds (SpliceAI scores insertions of any length), so a chunk's geometry
(:attr:`SpliceSet.geometry`) depends on its own records only. In ``veff`` style insertions longer
than ``room + 1`` bases are ``indel_too_long``.

Two styles decide which alleles are scored and where:

``spliceai``
    SpliceAI 1.3.1's rules: alleles as written; no entry outside transcripts; records whose window
    leaves the contig (``near_contig_end``), whose REF disagrees with the FASTA or whose REF is
    longer than ``2D`` get no entry; symbolic, ``*`` and missing ALTs get none; MNVs and complex
    alleles get a ``.`` entry (``complex_not_scored``).
``veff``
    Alleles normalised first (so every representation of an indel gives the same answer), MNVs and
    complex alleles scored, windows past a contig end padded with N (``contig_edge``), a status for
    everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from veff.io.annotation import GeneAnnotation, Transcript
from veff.io.fasta import N_CODE, Fasta
from veff.types import Status, Variant
from veff.variants.sequences import (
    allele_status,
    codes_to_str,
    normalize_allele,
    reverse_complement_codes,
    str_to_codes,
)

__all__ = ["SpliceGeometry", "SplicePlanner", "SpliceRow", "SpliceSet", "SpliceStyle"]

SpliceStyle = Literal["spliceai", "veff"]


@dataclass(frozen=True)
class SpliceGeometry:
    """Window sizes of one run.

    Attributes
    ----------
    flank
        Input bases on each side of the outputs (SpliceAI: 5,000; OpenSpliceAI: flank / 2).
    distance
        ``D``: positions scored on each side of the variant.
    room
        Extra output positions for the bases an insertion adds.
    """

    flank: int
    distance: int
    room: int

    @property
    def cov(self) -> int:
        """Scored positions, ``2D + 1``."""
        return 2 * self.distance + 1

    @property
    def outputs(self) -> int:
        """Output positions per window, ``P = 2D + 1 + room``."""
        return self.cov + self.room

    @property
    def length(self) -> int:
        """Model input length ``L = 2 * flank + P``."""
        return 2 * self.flank + self.outputs


@dataclass(frozen=True)
class SpliceRow:
    """One output entry: a (record, ALT, transcript).

    Attributes
    ----------
    record, alt
        Index of the record in its chunk and of the ALT in the record.
    transcript
        The transcript scored against (None where no transcript contains the record).
    status
        Why it was or was not scored.
    row
        Row of the scored alt window in :attr:`SpliceSet.alt_codes`, or -1.
    """

    record: int
    alt: int
    transcript: Transcript | None
    status: Status
    row: int = -1


@dataclass
class SpliceSet:
    """Windows and entries of a chunk of records.

    Attributes
    ----------
    geometry
        Window sizes of this chunk (its ``room`` fits the chunk's insertions in ``spliceai`` style).
    variants, records
        The chunk's variants and cyvcf2 records, in input order.
    rows
        Every entry, in output order (records in order; per record ALT-major, then transcripts in
        annotation order, as SpliceAI writes them).
    statuses
        Per record, one status per ALT (for the status tag): the first scored entry's status, else
        the first entry's.
    ref_codes
        uint8 reference windows, in model orientation: one array (L_i,) each, ``L_i = L`` unless
        the planner merges windows (``span``).
    ref_minus
        bool, shape (n_ref,): the window is a reverse complement (minus-strand transcript).
    alt_codes, alt_minus
        The same for the alt windows, shape (n_alt, L) and (n_alt,).
    alt_ref
        int64, shape (n_alt,): reference window of each alt window.
    alt_offset
        int64, shape (n_alt,): index in the reference track of the first of the ``2D + 1`` positions.
    alt_alleles
        int64, shape (n_alt, 2): lengths of the scored REF and ALT.
    alt_pos
        int64, shape (n_alt,): 1-based position of the scored allele (the variant's DP 0).
    alt_boundary
        int64, shape (n_alt,): signed distance to the transcript's nearest exon boundary (SpliceAI).
    alt_sites
        int8, shape (n_alt, 2D + 1): annotated site at each scored position (1 acceptor, 2 donor,
        0 none), in forward orientation.
    """

    geometry: SpliceGeometry
    variants: list[Variant]
    records: list[Any]
    rows: list[SpliceRow]
    statuses: list[list[Status]]
    ref_codes: list[np.ndarray]
    ref_minus: np.ndarray
    alt_codes: np.ndarray
    alt_minus: np.ndarray
    alt_ref: np.ndarray
    alt_offset: np.ndarray
    alt_alleles: np.ndarray
    alt_pos: np.ndarray
    alt_boundary: np.ndarray
    alt_sites: np.ndarray

    def __len__(self) -> int:
        return len(self.variants)


@dataclass
class _Build:
    ref_codes: list[np.ndarray] = field(default_factory=list)
    ref_minus: list[bool] = field(default_factory=list)
    # id(transcript) -> (transcript, chrom, [(first scored position, alt window)]), in first-use order
    ref_requests: dict[int, tuple[Transcript, str, list[tuple[int, int]]]] = field(default_factory=dict)
    alt_codes: list[np.ndarray] = field(default_factory=list)
    alt_minus: list[bool] = field(default_factory=list)
    alt_ref: list[int] = field(default_factory=list)
    alt_offset: list[int] = field(default_factory=list)
    alt_alleles: list[tuple[int, int]] = field(default_factory=list)
    alt_pos: list[int] = field(default_factory=list)
    alt_boundary: list[int] = field(default_factory=list)
    alt_sites: list[np.ndarray] = field(default_factory=list)


class SplicePlanner:
    """Plan the windows of chunks of records (see the module docstring).

    Parameters
    ----------
    fasta
        Reference genome.
    annotation
        Transcripts to score against.
    geometry
        Window sizes.
    style
        ``spliceai`` or ``veff``.
    max_indel_length
        Longest length change scored in veff style.
    span
        Reference windows cover every record of a transcript within ``span`` bases of the window's
        first record (0: every window has the geometry's ``P`` outputs; its records lie within
        ``room`` bases).
    """

    def __init__(
        self,
        fasta: Fasta,
        annotation: GeneAnnotation,
        geometry: SpliceGeometry,
        *,
        style: SpliceStyle = "spliceai",
        max_indel_length: int = 50,
        span: int = 0,
    ) -> None:
        self.fasta = fasta
        self.span = max(0, span)
        self.annotation = annotation
        self.base = geometry
        self.geo = geometry  # of the chunk being planned
        self.style = style
        self.max_indel_length = max_indel_length
        self._sites: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def build(self, variants: list[Variant], records: list[Any] | None = None) -> SpliceSet:
        """Plan the entries and windows of a chunk of records."""
        self.geo = self._geometry(variants)
        b = _Build()
        rows: list[SpliceRow] = []
        statuses: list[list[Status]] = []
        for i, v in enumerate(variants):
            mine = self._plan(i, v, b)
            rows.extend(mine)
            statuses.append(_alt_statuses(v, mine))
        self._ref_windows(b)
        length, cov = self.geo.length, self.geo.cov

        def stack(arrs: list[np.ndarray], width: int, dtype: type) -> np.ndarray:
            return np.stack(arrs).astype(dtype) if arrs else np.empty((0, width), dtype)

        return SpliceSet(
            geometry=self.geo,
            variants=variants,
            records=records if records is not None else [None] * len(variants),
            rows=rows,
            statuses=statuses,
            ref_codes=b.ref_codes,
            ref_minus=np.array(b.ref_minus, dtype=bool),
            alt_codes=stack(b.alt_codes, length, np.uint8),
            alt_minus=np.array(b.alt_minus, dtype=bool),
            alt_ref=np.array(b.alt_ref, dtype=np.int64),
            alt_offset=np.array(b.alt_offset, dtype=np.int64),
            alt_alleles=np.array(b.alt_alleles, dtype=np.int64).reshape(-1, 2),
            alt_pos=np.array(b.alt_pos, dtype=np.int64),
            alt_boundary=np.array(b.alt_boundary, dtype=np.int64),
            alt_sites=stack(b.alt_sites, cov, np.int8),
        )

    def _geometry(self, variants: list[Variant]) -> SpliceGeometry:
        """The run's geometry, with room for the chunk's longest insertion in ``spliceai`` style."""
        if self.style != "spliceai":
            return self.base
        grow = max(
            (
                len(alt) - 1
                for v in variants
                if len(v.ref) == 1
                for alt in v.alts
                if len(alt) > 1 and allele_status(v.ref, alt) is None
            ),
            default=0,
        )
        if grow <= self.base.room:
            return self.base
        return SpliceGeometry(self.base.flank, self.base.distance, grow)

    # -- one record -----------------------------------------------------------------------------

    def _plan(self, i: int, v: Variant, b: _Build) -> list[SpliceRow]:
        if not v.alts or v.alts == (".",):
            return [SpliceRow(i, 0, None, Status.NO_ALT)]
        txs = self.annotation.overlapping(v.chrom, v.start)

        def every(status: Status) -> list[SpliceRow]:
            return [SpliceRow(i, j, None, status) for j in range(len(v.alts))]

        if not txs:
            return every(Status.OUTSIDE_GENES)
        chrom = self.fasta.resolve(v.chrom)
        if chrom is None:
            return every(Status.UNKNOWN_CONTIG)
        contig = self.fasta.contig(chrom)
        geo, s, r = self.geo, v.start, len(v.ref)
        half = geo.flank + geo.distance
        inside = s - half >= 0 and s + half + 1 <= len(contig)
        if self.style == "spliceai" and not inside:
            return every(Status.NEAR_CONTIG_END)
        if s < 0 or codes_to_str(contig[s : s + r]) != v.ref:
            return every(Status.REF_MISMATCH)
        if self.style == "spliceai" and r > 2 * geo.distance:
            return every(Status.INDEL_TOO_LONG)
        out: list[SpliceRow] = []
        for j, alt in enumerate(v.alts):
            bad = allele_status(v.ref, alt)
            if bad is not None:
                out.append(SpliceRow(i, j, None, Status.NO_ALT if alt == "." else bad))
                continue
            ns, nref, nalt = s, v.ref, alt
            if self.style == "spliceai":
                if r > 1 and len(alt) > 1:
                    out.extend(SpliceRow(i, j, t, Status.COMPLEX_NOT_SCORED) for t in txs)
                    continue
            else:
                ns, nref, nalt = normalize_allele(contig, s, v.ref, alt)
                if abs(len(nref) - len(nalt)) > self.max_indel_length or len(nref) > 2 * geo.distance:
                    out.append(SpliceRow(i, j, None, Status.INDEL_TOO_LONG))
                    continue
            if len(nalt) - len(nref) > geo.room:
                out.append(SpliceRow(i, j, None, Status.INDEL_TOO_LONG))
                continue
            edge = not (ns - half >= 0 and ns + half + len(nref) <= len(contig))
            status = Status.CONTIG_EDGE if edge else Status.OK
            for t in txs:
                row = self._add_alt(b, chrom, t, ns, nref, nalt)
                out.append(SpliceRow(i, j, t, status, row))
        return out

    # -- windows --------------------------------------------------------------------------------

    def _masked(self, chrom: str, t: Transcript, start: int, length: int) -> np.ndarray:
        codes = self.fasta.fetch_many(chrom, np.array([start]), length)[0].copy()
        lo, hi = t.start - start, t.end - start
        if lo > 0:
            codes[: min(lo, length)] = N_CODE
        if hi < length:
            codes[max(hi, 0) :] = N_CODE
        return codes

    def _ref_windows(self, b: _Build) -> None:
        """Cut the reference windows the chunk's alt windows asked for and point each alt at one.

        Per transcript, the requested first positions in increasing order are covered greedily:
        a window starts at the first one not yet covered and takes every one within
        ``max(room, span)`` bases of it; its ``P`` is the geometry's plus that extent beyond
        ``room``.
        """
        geo = self.geo
        reach = max(geo.room, self.span)
        b.alt_ref = [0] * len(b.alt_codes)
        b.alt_offset = [0] * len(b.alt_codes)
        for t, chrom, wanted in b.ref_requests.values():
            firsts = sorted(wanted)
            k = 0
            while k < len(firsts):
                start = firsts[k][0]
                end = k
                while end + 1 < len(firsts) and firsts[end + 1][0] - start <= reach:
                    end += 1
                outputs = geo.outputs + max(0, firsts[end][0] - start - geo.room)
                codes = self._masked(chrom, t, start - geo.flank, outputs + 2 * geo.flank)
                minus = t.strand == "-"
                b.ref_codes.append(reverse_complement_codes(codes[None])[0] if minus else codes)
                b.ref_minus.append(minus)
                for first, alt in firsts[k : end + 1]:
                    b.alt_ref[alt] = len(b.ref_codes) - 1
                    b.alt_offset[alt] = first - start
                k = end + 1

    def _add_alt(self, b: _Build, chrom: str, t: Transcript, s: int, ref: str, alt: str) -> int:
        geo = self.geo
        first = s - geo.distance
        b.ref_requests.setdefault(id(t), (t, chrom, []))[2].append((first, len(b.alt_codes)))
        w = first - geo.flank
        fwd = self._masked(chrom, t, w, geo.length + max(0, len(ref) - len(alt)))
        at = s - w
        codes = np.concatenate([fwd[:at], str_to_codes(alt), fwd[at + len(ref) :]])[: geo.length]
        minus = t.strand == "-"
        b.alt_codes.append(reverse_complement_codes(codes[None])[0] if minus else codes)
        b.alt_minus.append(minus)
        b.alt_alleles.append((len(ref), len(alt)))
        b.alt_pos.append(s + 1)
        b.alt_boundary.append(t.nearest_boundary(s + 1))
        b.alt_sites.append(self._site_types(t, first))
        return len(b.alt_codes) - 1

    def _site_types(self, t: Transcript, first: int) -> np.ndarray:
        """Annotated acceptors (1) and donors (2) at 0-based positions ``first .. first + 2D``."""
        got = self._sites.get(id(t))
        if got is None:
            # 1-based exon boundaries as SpliceAI takes them: first base and last base of each exon;
            # the transcript's own ends are not splice sites
            starts, ends = t.exon_starts[1:] + 1, t.exon_ends[:-1]
            acceptors, donors = (starts, ends) if t.strand == "+" else (ends, starts)
            got = self._sites[id(t)] = (acceptors - 1, donors - 1)  # 0-based
        out = np.zeros(self.geo.cov, dtype=np.int8)
        for code, sites in ((1, got[0]), (2, got[1])):
            k = sites - first
            out[k[(k >= 0) & (k < self.geo.cov)]] = code
        return out


def _alt_statuses(v: Variant, rows: list[SpliceRow]) -> list[Status]:
    n = max(1, len(v.alts))
    out: list[Status | None] = [None] * n
    for row in rows:
        cur = out[row.alt]
        if cur is None or (row.row >= 0 and cur not in (Status.OK, Status.CONTIG_EDGE)):
            out[row.alt] = row.status
    return [s if s is not None else Status.NO_ALT for s in out]
