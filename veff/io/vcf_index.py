"""Read the tabix (``.tbi``) and CSI (``.csi``) indexes of VCF and BCF files, and make them.

A sharded run (:mod:`veff.distributed.driver`) splits a VCF by genomic region; what it needs from the
index is, per contig: where its records start and end in the file (which orders the contigs as
they appear in the file), how many records it has, and where in the file the records at a given
position are (to cut a contig into pieces of about equal size). htslib writes all of that into
its indexes: the per-contig pseudo-bin holds the file offsets and the record count; the linear
index (TBI, one offset per 16 kb) or the ``loffset`` of the leaf bins (CSI) locate positions.

Formats: the SAM/BAM specification (https://samtools.github.io/hts-specs/SAMv1.pdf, section 5)
and the tabix specification (https://samtools.github.io/hts-specs/tabix.pdf).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from veff.errors import InputError

__all__ = ["ContigIndex", "VcfIndex", "build_index", "find_index", "is_bgzf", "read_index"]


@dataclass
class ContigIndex:
    """What the index says about one contig with records.

    Attributes
    ----------
    name
        Contig name.
    records
        Number of records (from the pseudo-bin), or None when the index does not say.
    begin, end
        Virtual file offsets of the first record and just past the last.
    windows
        ``(0-based window start, virtual offset)`` pairs, ascending: the file offset of the first
        record that overlaps each indexed window.
    """

    name: str
    records: int | None
    begin: int
    end: int
    windows: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class VcfIndex:
    """A parsed index.

    Attributes
    ----------
    path
        The index file.
    kind
        ``tbi`` or ``csi``.
    min_shift
        log2 of the smallest window (14 for TBI).
    contigs
        Contigs with records, in the order of their records in the file.
    """

    path: Path
    kind: str
    min_shift: int
    contigs: list[ContigIndex]

    @property
    def records(self) -> int | None:
        """Records of all contigs, or None when the index does not count them."""
        counts = [c.records for c in self.contigs]
        return None if any(n is None for n in counts) else sum(n or 0 for n in counts)


def is_bgzf(path: str | os.PathLike[str]) -> bool:
    """Whether the file starts with a BGZF block (gzip with the ``BC`` extra field)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    return len(head) >= 16 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def find_index(path: str | os.PathLike[str]) -> Path | None:
    """The index beside ``path`` that htslib would load (``.csi`` first, as htslib), or None."""
    for suffix in (".csi", ".tbi"):
        candidate = Path(f"{path}{suffix}")
        if candidate.is_file():
            return candidate
    return None


def build_index(path: str | os.PathLike[str], *, min_shift: int = 10) -> Path:
    """Build a CSI index beside a BGZF VCF or a BCF (windows of ``2**min_shift`` bp).

    Raises
    ------
    InputError
        When the records are not sorted (by position within contigs, each contig in one block).
    """
    import pysam

    try:
        pysam.tabix_index(str(path), preset="vcf", csi=True, min_shift=min_shift, force=True)
    except (OSError, ValueError) as exc:
        msg = (
            f"{path}: cannot index the VCF ({exc}); sharding needs records sorted by position within "
            "each contig and each contig's records together (sort with `bcftools sort`)"
        )
        raise InputError(msg) from exc
    return Path(f"{path}.csi")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            msg = "index ends early"
            raise ValueError(msg)
        out = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return out

    def one(self, fmt: str) -> int:
        return self.take(fmt)[0]

    def raw(self, n: int) -> bytes:
        out = self.data[self.at : self.at + n]
        self.at += n
        return out


def _names(blob: bytes) -> list[str]:
    return [n.decode() for n in blob.split(b"\0")[:-1]] if blob else []


def _tabix_header(r: _Reader) -> list[str]:
    r.take("<6i")  # format, col_seq, col_beg, col_end, meta, skip
    return _names(r.raw(r.one("<i")))


def read_index(path: str | os.PathLike[str], header_contigs: list[str] | None = None) -> VcfIndex:
    """Parse a ``.tbi`` or ``.csi`` file.

    Parameters
    ----------
    path
        The index.
    header_contigs
        Contig names of the file's header in their order (BCF indexes number contigs so and
        carry no names).
    """
    path = Path(path)
    try:
        data = gzip.decompress(path.read_bytes())
        r = _Reader(data)
        magic = r.raw(4)
        if magic == b"TBI\1":
            kind, min_shift, depth = "tbi", 14, 5
            n_ref = r.one("<i")
            names = _tabix_header(r)
        elif magic == b"CSI\1":
            kind = "csi"
            min_shift, depth, l_aux = r.take("<3i")
            aux = _Reader(r.raw(l_aux))
            names = _tabix_header(aux) if l_aux >= 28 else list(header_contigs or [])
            n_ref = r.one("<i")
        else:
            msg = f"not a TBI or CSI index (magic {magic!r})"
            raise ValueError(msg)
        meta_bin = ((1 << (3 * depth + 3)) - 1) // 7 + 1
        first_leaf = ((1 << (3 * depth)) - 1) // 7
        contigs = []
        for tid in range(n_ref):
            contig = _read_contig(r, kind, meta_bin, first_leaf, min_shift)
            if contig is None:
                continue
            if tid >= len(names):
                msg = f"contig number {tid} has no name"
                raise ValueError(msg)
            contig.name = names[tid]
            contigs.append(contig)
    except (OSError, ValueError, EOFError, struct.error, UnicodeDecodeError) as exc:
        msg = f"{path}: cannot read the index: {exc}"
        raise InputError(msg) from exc
    contigs.sort(key=lambda c: c.begin)
    return VcfIndex(path, kind, min_shift, contigs)


def _read_contig(r: _Reader, kind: str, meta_bin: int, first_leaf: int, min_shift: int) -> ContigIndex | None:
    records: int | None = None
    begin: int | None = None
    end = 0
    leaves: list[tuple[int, int]] = []
    for _ in range(r.one("<i")):
        if kind == "tbi":
            bin_id, n_chunk = r.take("<Ii")
            loffset = 0
        else:
            bin_id, loffset, n_chunk = r.take("<IQi")
        chunks = [r.take("<QQ") for _ in range(n_chunk)]
        if bin_id == meta_bin:
            if len(chunks) >= 2:
                begin, end = chunks[0]
                records = chunks[1][0]
            continue
        for beg, stop in chunks:
            begin = beg if begin is None else min(begin, beg)
            end = max(end, stop)
        if kind == "csi" and bin_id >= first_leaf:
            leaves.append(((bin_id - first_leaf) << min_shift, loffset))
    windows: list[tuple[int, int]] = []
    if kind == "tbi":
        offsets = r.take(f"<{r.one('<i')}Q")
        windows = [(k << min_shift, off) for k, off in enumerate(offsets) if off]
    else:
        windows = sorted(leaves)
    if begin is None or records == 0:
        return None
    return ContigIndex("", records, begin, end, windows)
