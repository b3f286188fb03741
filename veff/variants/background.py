"""Random SNVs drawn from a reference: the default background of a calibration.

:func:`random_snvs` draws ``n`` distinct positions uniformly over the A/C/G/T bases of the FASTA
(soft-masked bases included, ``N`` and other letters excluded), or over those inside BED regions
(overlapping regions count once), with a fixed seed; each gets an ALT drawn uniformly among the
three other bases. The same seed, FASTA and regions give the same SNVs on every machine. Contigs
are read one at a time, in blocks, so a whole human genome needs no more memory than its largest
contig.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.types import Region

__all__ = ["RandomSnv", "random_snvs"]

_BLOCK = 1 << 20
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_VALID = np.zeros(256, dtype=bool)
_VALID[_BASES] = True
_INDEX = np.zeros(256, dtype=np.int64)
_INDEX[_BASES] = np.arange(4)


@dataclass(frozen=True)
class RandomSnv:
    """One drawn SNV: FASTA contig, 1-based position, REF and ALT base."""

    chrom: str
    pos: int
    ref: str
    alt: str


def _segments(fasta: Fasta, regions: Sequence[Region] | None) -> list[tuple[str, int, int]]:
    """``(contig, start, end)`` to draw from, in FASTA order, overlaps merged."""
    if regions is None:
        return [(c, 0, n) for c, n in fasta.lengths.items()]
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for r in regions:
        chrom = fasta.resolve(r.chrom)
        if chrom is None:
            msg = f"regions: contig {r.chrom!r} is not in {fasta.path}"
            raise InputError(msg)
        lo, hi = max(0, r.start), min(fasta.lengths[chrom], r.end)
        if hi > lo:
            by_contig.setdefault(chrom, []).append((lo, hi))
    out = []
    for chrom in fasta.lengths:
        merged: list[list[int]] = []
        for lo, hi in sorted(by_contig.get(chrom, [])):
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        out += [(chrom, lo, hi) for lo, hi in merged]
    return out


def _blocks(segments: list[tuple[str, int, int]]) -> Iterator[tuple[str, int, int]]:
    for chrom, lo, hi in segments:
        for s in range(lo, hi, _BLOCK):
            yield chrom, s, min(hi, s + _BLOCK)


def random_snvs(
    fasta: Fasta, n: int, *, seed: int = 0, regions: Sequence[Region] | None = None
) -> list[RandomSnv]:
    """Draw ``n`` SNVs at distinct random A/C/G/T positions (see the module docstring).

    Parameters
    ----------
    fasta
        The reference.
    n
        How many SNVs.
    seed
        Seed of the draw.
    regions
        Draw only inside these intervals (0-based, half-open), or anywhere when None.

    Returns
    -------
    list of RandomSnv
        In FASTA contig order, then by position.

    Raises
    ------
    InputError
        When there are fewer than ``n`` A/C/G/T bases to draw from.
    """
    if n < 1:
        msg = f"random SNVs: n must be at least 1, got {n}"
        raise InputError(msg)
    blocks = list(_blocks(_segments(fasta, regions)))
    counts = np.zeros(len(blocks), dtype=np.int64)
    for k, (chrom, lo, hi) in enumerate(blocks):
        counts[k] = np.count_nonzero(_VALID[fasta.contig(chrom)[lo:hi]])
    total = int(counts.sum())
    if total < n:
        where = "inside the regions" if regions is not None else "in the FASTA"
        msg = f"{fasta.path}: only {total} A/C/G/T bases {where}; cannot draw {n} distinct SNVs"
        raise InputError(msg)
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(total, size=n, replace=False))
    shifts = rng.integers(1, 4, size=n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    out: list[RandomSnv] = []
    for k in np.unique(np.searchsorted(bounds, picks, side="right") - 1).tolist():
        chrom, lo, hi = blocks[k]
        seq = fasta.contig(chrom)[lo:hi]
        valid = np.flatnonzero(_VALID[seq])
        sel = slice(np.searchsorted(picks, bounds[k]), np.searchsorted(picks, bounds[k + 1]))
        idx = valid[picks[sel] - bounds[k]]
        refs = seq[idx]
        ref_k = _INDEX[refs]
        alts = _BASES[(ref_k + shifts[sel]) % 4]
        out += [
            RandomSnv(chrom, lo + int(i) + 1, chr(r), chr(a))
            for i, r, a in zip(idx.tolist(), refs.tolist(), alts.tolist(), strict=True)
        ]
    return out
