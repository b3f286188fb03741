"""Shards of a VCF for a sharded run (:mod:`veff.distributed.driver`): its index, and the regions to score.

:func:`indexed_input` finds (or builds, in the work folder) the index of the VCF; :func:`plan_shards`
cuts the indexed file into :class:`Shard` s of about a target number of records, in file order
(:func:`_target_records` picks that target from the records and the cluster's worker threads).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veff.errors import InputError
from veff.io.vcf import VcfReader
from veff.io.vcf_index import ContigIndex, VcfIndex, build_index, find_index, is_bgzf, read_index

__all__ = ["Shard", "indexed_input", "plan_shards"]

log = logging.getLogger("veff")

SHARDS_PER_THREAD = 4
MIN_SHARD_RECORDS = 16
MAX_SHARD_RECORDS = 250_000
SCAN_BYTES = 4 * 2**20  # contigs with less data (estimated, uncompressed) are cut at record positions


@dataclass(frozen=True)
class Shard:
    """A piece of the VCF: regions read one after another (see :class:`veff.io.vcf.VcfReader`).

    Attributes
    ----------
    index
        Position of the shard in the file (parts are merged in this order).
    regions
        ``(chrom, start, end)``: records with ``start <= POS <= end`` (1-based; ``end`` None: to
        the contig's end).
    records
        Estimated number of records (exact for whole contigs of an index that counts them).
    """

    index: int
    regions: tuple[tuple[str, int, int | None], ...]
    records: int


def _linear(voffset: int) -> int:
    """A virtual file offset as an estimate of the uncompressed bytes before it."""
    return (voffset >> 16) * 4 + (voffset & 0xFFFF)


def _contig_records(c: ContigIndex) -> int:
    if c.records is not None:
        return c.records
    return max(1, (_linear(c.end) - _linear(c.begin)) // 100)


def _index_starts(c: ContigIndex, pieces: int) -> list[int]:
    """1-based starts of pieces 2..n of contig ``c``, at index windows, about equal in file bytes."""
    lo, hi = _linear(c.begin), _linear(c.end)
    total = max(1, hi - lo)
    starts: list[int] = []
    seen = lo
    j = 1
    for window, voff in c.windows:
        if j >= pieces:
            break
        seen = max(seen, _linear(voff))
        if window > 0 and (seen - lo) * pieces >= j * total and (not starts or window + 1 > starts[-1]):
            starts.append(window + 1)
            while j < pieces and (seen - lo) * pieces >= j * total:
                j += 1
    return starts


def _scan_starts(path: str | os.PathLike[str], chrom: str, pieces: int) -> list[int]:
    """1-based starts of pieces 2..n of ``chrom``, of equal record counts (reads the positions)."""
    reader = VcfReader(path, regions=[(chrom, 0, None)])
    try:
        positions = [v.pos for v, _ in reader]
    finally:
        reader.close()
    starts: list[int] = []
    for j in range(1, pieces):
        pos = positions[j * len(positions) // pieces]
        if pos > (starts[-1] if starts else positions[0]):
            starts.append(pos)
    return starts


def plan_shards(
    index: VcfIndex, target_records: int, path: str | os.PathLike[str] | None = None
) -> list[Shard]:
    """Cut the indexed file into shards of about ``target_records`` records, in file order.

    Contigs of fewer records are grouped into one shard; larger ones are cut, at the index's
    windows, or, for contigs of less than :data:`SCAN_BYTES` of data (where the index is too
    coarse: htslib merges bins that share a BGZF block), at record positions read from ``path``.
    """
    target = max(1, target_records)
    shards: list[Shard] = []
    group: list[tuple[str, int, int | None]] = []
    group_n = 0

    def close_group() -> None:
        nonlocal group, group_n
        if group:
            shards.append(Shard(len(shards), tuple(group), group_n))
            group, group_n = [], 0

    for c in index.contigs:
        n = _contig_records(c)
        if n <= target:
            group.append((c.name, 0, None))
            group_n += n
            if group_n >= target:
                close_group()
            continue
        close_group()
        pieces = math.ceil(n / target)
        small = _linear(c.end) - _linear(c.begin) <= SCAN_BYTES
        if small and path is not None:
            starts = _scan_starts(path, c.name, pieces)
        else:
            starts = _index_starts(c, pieces)
        bounds = [0, *starts]
        share = max(1, round(n / len(bounds)))
        for k, start in enumerate(bounds):
            end = bounds[k + 1] - 1 if k + 1 < len(bounds) else None
            shards.append(Shard(len(shards), ((c.name, start, end),), share))
    close_group()
    return shards


def _target_records(total: int, threads: int, shard_records: int | None) -> int:
    if shard_records is not None:
        if shard_records < 1:
            msg = f"shard_records must be at least 1, got {shard_records}"
            raise InputError(msg)
        return shard_records
    per = math.ceil(total / max(1, threads * SHARDS_PER_THREAD))
    return int(min(MAX_SHARD_RECORDS, max(MIN_SHARD_RECORDS, per)))


def _read_magic(path: Path) -> bytes:
    import gzip

    with open(path, "rb") as fh:
        head = fh.read(2)
    opener: Any = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            return bytes(fh.read(5))
    except (OSError, EOFError):
        return b""


def _link(src: Path, dst: Path) -> None:
    try:
        dst.symlink_to(src)
    except OSError:
        shutil.copyfile(src, dst)


def indexed_input(vcf: Path, work: Path) -> tuple[Path, VcfIndex]:
    """The VCF to read shards from (``vcf`` or a copy/link in ``work``) and its parsed index.

    Raises
    ------
    InputError
        When the records are not sorted, or the index cannot be read.
    """
    bcf = _read_magic(vcf).startswith(b"BCF")
    bgzf = is_bgzf(vcf)
    if bcf and not bgzf:
        msg = f"{vcf}: uncompressed BCF cannot be indexed; convert it with `bcftools view -Ob`"
        raise InputError(msg)
    index = find_index(vcf) if bgzf else None
    path = vcf
    if index is not None and bcf and not vcf.name.endswith(".bcf"):
        # cyvcf2 reads regions of a BCF only when its name ends in .bcf
        path = work / "input.bcf"
        _link(vcf, path)
        _link(index, Path(f"{path}{index.suffix}"))
        index = Path(f"{path}{index.suffix}")
    elif index is None:
        t0 = time.perf_counter()
        path = work / ("input.bcf" if bcf else "input.vcf.gz")
        if bgzf:
            _link(vcf, path)
        else:
            log.info(
                "veff: %s has no index; compressing a copy into %s (bgzip and tabix it to skip this)",
                vcf,
                work,
            )
            _bgzip_copy(vcf, path)
        index = build_index(path)
        log.info("veff: indexed %s in %.1f s", vcf, time.perf_counter() - t0)
    header_contigs: list[str] | None = None
    if bcf:
        import pysam

        with pysam.VariantFile(str(path)) as vf:
            header_contigs = [str(name) for name in vf.header.contigs]
    return path, read_index(index, header_contigs)


def _bgzip_copy(src: Path, dst: Path) -> None:
    import gzip

    from veff.writers._text import BLOCK_BYTES, TextSink

    with open(src, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    sink = TextSink(dst, "bgzf")
    try:
        with gzip.open(src, "rb") if gz else open(src, "rb") as fh:
            while data := fh.read(BLOCK_BYTES):
                sink.write(data)
    finally:
        sink.close()
