"""Which VCF records a run keeps: ``-r/--regions`` and ``-R/--regions-file``, as bcftools reads them.

A record is in a region when the bases it covers, ``POS`` to its end (``POS + len(REF) - 1``, or
``INFO/END`` for symbolic alleles: htslib's ``rlen``), overlap the region. That is what
``bcftools view -r/-R`` keeps (its default ``--regions-overlap 1``), so a deletion that starts just
before a region is in it.

Region text (``-r``): comma-separated ``CHROM``, ``CHROM:POS``, ``CHROM:START-END`` or
``CHROM:START-`` (1-based, inclusive); a contig name containing ``:`` is written in braces,
``{HLA-A*01:01}:1-100``. A regions file (``-R``) is BED (0-based, half-open) when its name ends in
``.bed`` or ``.bed.gz``, else tab-separated ``CHROM POS`` or ``CHROM START END`` (1-based,
inclusive), again as bcftools reads it. Lines starting with ``#`` are skipped.

Overlapping and adjacent regions are merged, so a record is kept once however many regions it
overlaps.
"""

from __future__ import annotations

import bisect
import gzip
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from veff.errors import InputError
from veff.types import Region

__all__ = ["OPEN_END", "RegionSet", "parse_region_text"]

#: the end of a region given without one (``chr1``, ``chr1:100-``) in :meth:`RegionSet.intervals`
OPEN_END = 2**62

_REGION = re.compile(
    r"^(?:\{(?P<braced>[^}]+)\}|(?P<name>[^:]+))(?::(?P<start>\d+)?(?P<dash>-)?(?P<end>\d+)?)?$"
)


def parse_region_text(text: str, *, source: str = "--regions") -> list[tuple[str, int, int | None]]:
    """Parse ``chr:start-end[,...]`` into 1-based inclusive ``(chrom, start, end)`` (``end`` None: open).

    Examples
    --------
    >>> parse_region_text("chr1:100-200,chr2,chr3:5,chrX:10-")
    [('chr1', 100, 200), ('chr2', 1, None), ('chr3', 5, 5), ('chrX', 10, None)]
    """
    out: list[tuple[str, int, int | None]] = []
    for item in _split(text):
        m = _REGION.match(item)
        if m is None or (m["start"] is None and (m["dash"] or m["end"])):
            msg = f"{source}: {item!r} is not CHROM, CHROM:POS, CHROM:START-END or CHROM:START-"
            raise InputError(msg)
        chrom = m["braced"] or m["name"]
        if m["start"] is None:
            out.append((chrom, 1, None))
            continue
        start = int(m["start"])
        end: int | None = start if not m["dash"] else (int(m["end"]) if m["end"] else None)
        _check(source, item, start, end)
        out.append((chrom, start, end))
    if not out:
        msg = f"{source}: no region given"
        raise InputError(msg)
    return out


def _split(text: str) -> list[str]:
    """Split on the commas between regions (not those inside braces)."""
    items, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
        else:
            cur += ch
    items.append(cur)
    return [s.strip() for s in items if s.strip()]


def _check(source: str, item: str, start: int, end: int | None) -> None:
    if start < 1 or (end is not None and end < start):
        msg = f"{source}: {item!r}: expected 1 <= START <= END (1-based, inclusive)"
        raise InputError(msg)


def _read_regions_file(path: str | os.PathLike[str]) -> list[tuple[str, int, int | None]]:
    path = Path(path)
    if not path.is_file():
        msg = f"{path}: regions file not found"
        raise InputError(msg)
    name = path.name.lower()
    bed = name.endswith((".bed", ".bed.gz"))
    opener = gzip.open if name.endswith(".gz") else open
    out: list[tuple[str, int, int | None]] = []
    columns: int | None = None  # CHROM POS (2) or CHROM START END (3)
    expected = "CHROM START END (BED, 0-based)" if bed else "CHROM POS or CHROM START END (1-based)"
    try:
        with opener(path, "rt") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip() or line.startswith(("#", "track ", "browser ")):
                    continue
                fields = line.rstrip("\r\n").split("\t")
                if columns is None:  # the first line decides, as in bcftools
                    columns = 3 if bed or (len(fields) >= 3 and fields[2].strip().isdigit()) else 2
                try:
                    chrom, start = fields[0], int(fields[1]) + bed
                    end = int(fields[2]) if columns == 3 else start
                except (IndexError, ValueError):
                    msg = f"{path}:{lineno}: expected tab-separated {expected}, got {line.rstrip()!r}"
                    raise InputError(msg) from None
                if not chrom or start < 1 or end < start - bed:
                    msg = f"{path}:{lineno}: expected {expected} with a start not past the end"
                    raise InputError(msg)
                if end >= start:  # an empty BED interval selects nothing
                    out.append((chrom, start, end))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the regions file ({exc})"
        raise InputError(msg) from exc
    return out


class RegionSet:
    """Merged 1-based inclusive intervals per contig, in the order the contigs were first named.

    Parameters
    ----------
    regions
        ``(chrom, start, end)`` intervals, 1-based inclusive (``end`` None: to the contig end).
    """

    def __init__(self, regions: Iterable[tuple[str, int, int | None]]) -> None:
        by_contig: dict[str, list[tuple[int, int | None]]] = {}
        for chrom, start, end in regions:
            by_contig.setdefault(chrom, []).append((start, end))
        self.contigs: dict[str, list[tuple[int, int | None]]] = {
            c: _merge(ivs) for c, ivs in by_contig.items()
        }
        self._starts = {c: [s for s, _ in ivs] for c, ivs in self.contigs.items()}

    @classmethod
    def from_options(
        cls, regions: str | Sequence[str] | None = None, regions_file: str | os.PathLike[str] | None = None
    ) -> RegionSet | None:
        """The selection of ``regions=`` (text or list of texts) and ``regions_file=``, or None for all."""
        if regions is not None and regions_file is not None:
            msg = "give regions (-r) or a regions file (-R), not both"
            raise InputError(msg)
        if regions_file is not None:
            return cls(_read_regions_file(regions_file))
        if regions is None:
            return None
        texts = [regions] if isinstance(regions, str) else list(regions)
        return cls(r for t in texts for r in parse_region_text(str(t)))

    def overlaps(self, chrom: str, pos: int, end: int) -> bool:
        """Whether bases ``pos..end`` (1-based, inclusive) of ``chrom`` overlap a region."""
        starts = self._starts.get(chrom)
        if not starts:
            return False
        k = bisect.bisect_right(starts, end) - 1  # last region starting at or before ``end``
        if k < 0:
            return False
        stop = self.contigs[chrom][k][1]
        return stop is None or stop >= pos

    def intervals(self) -> list[Region]:
        """The merged regions as 0-based half-open :class:`~veff.types.Region` (an open end: ``OPEN_END``)."""
        return [
            Region(c, s - 1, OPEN_END if e is None else e) for c, ivs in self.contigs.items() for s, e in ivs
        ]

    def queries(self, order: Sequence[str]) -> list[tuple[str, int, int | None]]:
        """The merged regions, contigs in ``order`` (the file's), then any others as named."""
        known = [c for c in order if c in self.contigs] + [c for c in self.contigs if c not in set(order)]
        return [(c, s, e) for c in known for s, e in self.contigs[c]]


def _merge(ivs: list[tuple[int, int | None]]) -> list[tuple[int, int | None]]:
    out: list[tuple[int, int | None]] = []
    for start, end in sorted(ivs, key=lambda iv: iv[0]):
        if out:
            prev_start, prev_end = out[-1]
            if prev_end is None:
                continue
            if start <= prev_end + 1:
                out[-1] = (prev_start, None if end is None else max(prev_end, end))
                continue
        out.append((start, end))
    return out
