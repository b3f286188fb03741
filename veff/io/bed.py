"""BED reading: intervals from a BED file (plain or gzipped), checked line by line.

BED intervals are 0-based, half-open, exactly as veff's :class:`~veff.types.Region`. Columns are
separated by tabs: ``chrom``, ``start``, ``end``, then optionally ``name``, ``score``, ``strand``
(used when present) and more (ignored). Empty lines and ``#``, ``track`` and ``browser`` lines are
skipped. Contig names are matched to other files with or without a ``chr`` prefix. Anything else
(space-separated columns, a VCF, a start that is not a number) is one error naming the file and
line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from veff.errors import InputError
from veff.io.fasta import match_contig
from veff.types import Region

__all__ = ["BedIndex", "read_regions"]


def _lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        from isal import igzip

        stream = igzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    else:
        stream = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115 (closed below)
    with stream:
        try:
            yield from stream
        except (OSError, EOFError) as exc:
            msg = f"{path}: cannot read as (gzipped) text: {exc}"
            raise InputError(msg) from exc


def _whole(text: str, what: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        msg = f"{where}: {what} {text!r} is not a whole number; expected chrom<TAB>start<TAB>end (0-based)"
        raise InputError(msg) from None


def read_regions(path: str | os.PathLike[str]) -> list[Region]:
    """Read a BED file (3 or more tab-separated columns; ``name`` and ``strand`` used when present).

    Raises
    ------
    InputError
        Naming the file and line when a line is not a valid BED interval.
    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: BED file not found"
        raise InputError(msg)
    regions: list[Region] = []
    for lineno, raw in enumerate(_lines(path), start=1):
        line = raw.rstrip("\r\n")
        where = f"{path}:{lineno}"
        if lineno == 1 and line.startswith("##fileformat=VCF"):
            msg = f"{where}: a VCF, not a BED file; give intervals as chrom<TAB>start<TAB>end (0-based)"
            raise InputError(msg)
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        f = line.split("\t")
        if len(f) < 3:
            spaced = len(line.split()) >= 3
            msg = (
                f"{where}: {'columns separated by spaces, not tabs' if spaced else 'fewer than 3 columns'}; "
                f"expected chrom<TAB>start<TAB>end (0-based), got {line[:60]!r}"
            )
            raise InputError(msg)
        start, end = _whole(f[1], "start", where), _whole(f[2], "end", where)
        if start < 0 or end < start:
            msg = f"{where}: expected 0 <= start <= end, got {start}-{end}"
            raise InputError(msg)
        strand = f[5] if len(f) > 5 and f[5] in ("+", "-") else "."
        name = f[3] if len(f) > 3 else ""
        regions.append(Region(f[0], start, end, strand, name))  # type: ignore[arg-type]
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
