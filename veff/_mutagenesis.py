"""Building blocks of mutation maps: window tiling, mutant tables, score jobs, variant lookup.

See :mod:`veff.mutation_map` for the rules these implement.
"""

from __future__ import annotations

import numpy as np

from veff._types import Region, Variant
from veff.errors import InputError

__all__ = ["VariantIndex", "mutant_table", "mutate", "tile_region"]

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_BASE_INDEX = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(b"ACGT"):
    _BASE_INDEX[_c] = _BASE_INDEX[_c + 32] = _i


def tile_region(region: Region, length: int) -> list[Region]:
    """Cover ``region`` with windows of exactly ``length`` (the tiling rule of :mod:`veff.mutation_map`).

    Examples
    --------
    >>> [(w.start, w.end) for w in tile_region(Region("c", 100, 125), 10)]
    [(100, 110), (110, 120), (115, 125)]
    >>> [(w.start, w.end) for w in tile_region(Region("c", 100, 101), 5)]
    [(98, 103)]
    """
    if length < 1:
        msg = f"window length must be at least 1, got {length}"
        raise InputError(msg)
    n = region.end - region.start
    if n <= 0:
        msg = f"empty query region {region.chrom}:{region.start}-{region.end}"
        raise InputError(msg)
    if n < length:
        starts = [region.start - (length - n) // 2]
    else:
        starts = list(range(region.start, region.end - length + 1, length))
        if starts[-1] + length < region.end:
            starts.append(region.end - length)
    return [Region(region.chrom, s, s + length, region.strand, region.name) for s in starts]


def mutant_table(ref_codes: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """List the single-base mutants of a window.

    Parameters
    ----------
    ref_codes
        uint8 codes of the reference window, shape (L,).
    valid
        bool, shape (L,): positions that may be mutated (default: all).

    Returns
    -------
    tuple of numpy.ndarray
        ``(positions, bases)``, int64, shape (M,), sorted by position; bases index ``ACGT``.
        The reference base is skipped; positions whose reference is not A/C/G/T get all 4.
    """
    length = len(ref_codes)
    ref_idx = _BASE_INDEX[ref_codes]
    pos = np.repeat(np.arange(length, dtype=np.int64), 4)
    base = np.tile(np.arange(4, dtype=np.int64), length)
    keep = base != ref_idx[pos]
    if valid is not None:
        keep &= valid[pos]
    return pos[keep], base[keep]


def mutate(ref_codes: np.ndarray, pos: np.ndarray, base: np.ndarray) -> np.ndarray:
    out = np.repeat(ref_codes[None, :], len(pos), axis=0)
    out[np.arange(len(pos)), pos] = _ACGT[base]
    return out


class VariantIndex:
    """Query variants by FASTA contig and 0-based start, to list those inside a window."""

    def __init__(self, variants: list[tuple[str, Variant]]) -> None:
        by: dict[str, list[Variant]] = {}
        for chrom, v in variants:
            by.setdefault(chrom, []).append(v)
        self._data = {}
        for chrom, vs in by.items():
            vs.sort(key=lambda v: v.start)
            self._data[chrom] = (np.array([v.start for v in vs], dtype=np.int64), vs)

    def within(self, chrom: str, start: int, end: int) -> list[Variant]:
        starts, vs = self._data.get(chrom, (np.empty(0, np.int64), []))
        lo, hi = np.searchsorted(starts, [start, end])
        return vs[lo:hi]
