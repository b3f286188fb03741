"""BED reading with pybedtools (the only module that imports it).

BED intervals are 0-based, half-open, exactly as veff's :class:`~veff.types.Region`. Contig names
are matched to other files with or without a ``chr`` prefix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from veff.errors import InputError
from veff.io.fasta import match_contig
from veff.types import Region

__all__ = ["BedIndex", "read_regions"]


def read_regions(path: str | os.PathLike[str]) -> list[Region]:
    """Read a BED file (3 or more columns; ``name`` and ``strand`` used when present).

    Raises
    ------
    InputError
        Naming the file and line when a line is not a valid BED interval.
    """
    import pybedtools

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: BED file not found"
        raise InputError(msg)
    regions: list[Region] = []
    try:
        for lineno, iv in enumerate(pybedtools.BedTool(str(path)), start=1):
            if iv.start < 0 or iv.end < iv.start:
                msg = f"{path}:{lineno}: expected 0 <= start <= end, got {iv.start}-{iv.end}"
                raise InputError(msg)
            strand = iv.strand if iv.strand in ("+", "-") else "."
            name = iv.name if len(iv.fields) > 3 else ""
            regions.append(Region(iv.chrom, iv.start, iv.end, strand, name))  # type: ignore[arg-type]
    except (pybedtools.MalformedBedLineError, IndexError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        msg = f"{path}:{len(regions) + 1}: not a BED line (chrom, start, end expected): {exc}"
        raise InputError(msg) from exc
    return regions


@dataclass
class _ContigIntervals:
    starts: np.ndarray
    ends: np.ndarray
    regions: list[Region]


class BedIndex:
    """Look up the BED intervals that contain a genomic span.

    Parameters
    ----------
    regions
        Intervals (any order).
    """

    def __init__(self, regions: list[Region]) -> None:
        by_chrom: dict[str, list[Region]] = {}
        for r in regions:
            by_chrom.setdefault(r.chrom, []).append(r)
        self._data: dict[str, _ContigIntervals] = {}
        for chrom, regs in by_chrom.items():
            regs.sort(key=lambda r: (r.start, r.end))
            self._data[chrom] = _ContigIntervals(
                np.array([r.start for r in regs], dtype=np.int64),
                np.array([r.end for r in regs], dtype=np.int64),
                regs,
            )
        self._max_len = max((len(r) for r in regions), default=0)
        self._names: dict[str, str | None] = {}

    @classmethod
    def from_bed(cls, path: str | os.PathLike[str]) -> BedIndex:
        """Build the index from a BED file."""
        return cls(read_regions(path))

    def containing(self, chrom: str, start: int, end: int) -> list[Region]:
        """Return intervals that contain ``[start, end)`` on ``chrom``, sorted by start."""
        if chrom not in self._names:
            self._names[chrom] = match_contig(chrom, self._data)
        name = self._names[chrom]
        if name is None:
            return []
        d = self._data[name]
        hi = int(np.searchsorted(d.starts, start, side="right"))
        lo = int(np.searchsorted(d.starts, start - self._max_len, side="left"))
        return [d.regions[i] for i in range(lo, hi) if d.ends[i] >= end]
