"""Streaming VCF/BCF reading with cyvcf2 (the only module that opens input VCFs).

Records are read one at a time and never held whole; each comes with its cyvcf2 object so the
writer can emit it unchanged. ``Variant.pos`` keeps the VCF's 1-based ``POS``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from veff.errors import InputError, VeffWarning
from veff.io.vcf_index import find_index, read_index
from veff.io.vcf_regions import RegionSet
from veff.types import Variant

__all__ = ["VcfReader", "count_alleles", "region_string"]


class VcfReader:
    """Open a VCF (plain, bgzipped) or BCF file for streaming.

    Parameters
    ----------
    path
        Input file.
    region
        Optional ``chrom:start-end`` (1-based, inclusive) to read through the file's index.
    regions
        Optional ``(chrom, start, end)`` intervals read one after another through the file's index,
        keeping only records whose ``POS`` lies in ``[start, end]`` (1-based, inclusive; ``end``
        None: to the contig's end). A region query also returns records that start before the
        region and reach into it (deletions, symbolic alleles with ``END``); filtering by ``POS``
        puts every record in exactly one of several adjacent regions (a shard of a sharded run).
    select
        Keep only records that overlap these regions (``-r/-R``, :mod:`veff.io.vcf_regions`): read
        through the file's index when it has one (records in file order, each once), else by
        reading every record and dropping the others. Applies on top of ``region``/``regions``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        region: str | None = None,
        regions: Sequence[tuple[str, int, int | None]] | None = None,
        select: RegionSet | None = None,
    ) -> None:
        from cyvcf2 import VCF

        self.path = Path(path)
        if not self.path.is_file():
            msg = f"{self.path}: VCF not found"
            raise InputError(msg)
        try:
            self.vcf: Any = VCF(str(self.path), gts012=False, lazy=True, threads=None)
        except (OSError, Exception) as exc:  # cyvcf2 raises bare Exception on bad headers
            msg = f"{self.path}: cannot read as VCF/BCF ({exc})"
            raise InputError(msg) from exc
        self.region = region
        self.regions = None if regions is None else list(regions)
        self.select = select
        self.records_read = 0

    @property
    def contigs(self) -> list[str]:
        """Contig names declared in the header (``##contig`` lines)."""
        return list(self.vcf.seqnames)

    def __iter__(self) -> Iterator[tuple[Variant, Any]]:
        """Yield ``(Variant, cyvcf2_record)`` in file order."""
        select = self.select
        if self.regions is not None:
            source: Any = self._in_regions(self.regions)
        elif self.region:
            source = self.vcf(self.region)
        elif select is not None and find_index(self.path) is not None:
            source, select = self._selected_via_index(select), None
        else:
            source = self.vcf
        if select is not None:  # no index: every record is read, those outside are dropped
            source = self._filtered(source, select)
        it = iter(source)
        while True:
            try:
                rec = next(it)
            except StopIteration:
                return
            except Exception as exc:
                msg = (
                    f"{self.path}: unreadable record after record {self.records_read} "
                    f"(data line {self.records_read + 1}): {exc}"
                )
                raise InputError(msg) from exc
            self.records_read += 1
            yield (
                Variant(
                    rec.CHROM,
                    rec.POS,
                    rec.REF.upper(),
                    tuple(rec.ALT),
                    rec.ID or ".",
                ),
                rec,
            )

    def _in_regions(self, regions: list[tuple[str, int, int | None]]) -> Iterator[Any]:
        for chrom, start, end in regions:
            for rec in self.vcf(region_string(chrom, start, end)):
                pos = rec.POS
                if pos >= start and (end is None or pos <= end):
                    yield rec

    def _selected_via_index(self, select: RegionSet) -> Iterator[Any]:
        index = read_index(find_index(self.path), self.contigs)  # type: ignore[arg-type]
        indexed = [c.name for c in index.contigs]  # in file order
        for chrom in select.contigs:
            if chrom not in indexed:
                warnings.warn(
                    f"{self.path}: no records on region contig {chrom!r}", VeffWarning, stacklevel=4
                )
        last: tuple[str, int | None] | None = None
        for chrom, start, end in select.queries(indexed):
            if chrom not in indexed:
                continue
            for rec in self.vcf(region_string(chrom, start, end)):
                # a record overlapping the previous region of this contig was yielded there
                if last is not None and last[0] == chrom and last[1] is not None and last[1] >= rec.POS:
                    continue
                yield rec
            last = (chrom, end)

    @staticmethod
    def _filtered(source: Any, select: RegionSet) -> Iterator[Any]:
        for rec in source:
            if select.overlaps(rec.CHROM, rec.POS, max(rec.POS, rec.end)):
                yield rec

    def close(self) -> None:
        """Close the file."""
        self.vcf.close()


def count_alleles(path: str | os.PathLike[str], limit: int, select: RegionSet | None = None) -> int | None:
    """REF plus ALT alleles of every record of a small VCF, or None past ``limit`` (or when unreadable).

    Reads at most about ``limit`` alleles' worth of records (of those in ``select``), so it costs
    little on any file; used to keep the automatic batch size of a small run from being mostly padding.
    """
    total = 0
    try:
        reader = VcfReader(path, select=select)
        try:
            for v, _ in reader:
                total += 1 + max(1, len(v.alts))
                if total > limit:
                    return None
        finally:
            reader.close()
    except Exception:  # the run itself reports unreadable input, with the record that broke
        return None
    return total


def region_string(chrom: str, start: int, end: int | None) -> str:
    """Region text for htslib: 1-based inclusive ``[start, end]`` (``end`` None: to the contig end).

    Examples
    --------
    >>> region_string("chr1", 101, 200), region_string("HLA-A*01:01", 1, None)
    ('chr1:101-200', '{HLA-A*01:01}')
    """
    name = f"{{{chrom}}}" if ":" in chrom else chrom
    if end is None:
        return name if start <= 1 else f"{name}:{start}-"
    return f"{name}:{max(1, start)}-{end}"
