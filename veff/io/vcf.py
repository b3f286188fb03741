"""Streaming VCF/BCF reading (the only module that opens input VCFs).

Records are read one at a time and never held whole. Each comes with what the writer needs to emit
it unchanged: for text input (``.vcf``, ``.vcf.gz``) the record's line, as the bytes of the file
(with its line end), so that every column the user gave is written back byte for byte; for BCF
input (which holds no text) the cyvcf2 record. The header is read by cyvcf2 (``VcfReader.vcf``).
``Variant.pos`` keeps the VCF's 1-based ``POS``.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from veff.errors import InputError, VeffWarning
from veff.io.vcf_index import find_index, read_index
from veff.io.vcf_regions import RegionSet
from veff.types import Variant

__all__ = ["STDIN", "VcfReader", "count_alleles", "is_bcf", "region_string"]

STDIN = "-"  # the VCF path that means standard input

_LINE_BUFFER = 1 << 20


def is_bcf(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a BCF file (compressed or not), read from its first bytes."""
    import gzip

    with open(path, "rb") as fh:
        head = fh.read(2)
    opener: Any = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            return bytes(fh.read(3)) == b"BCF"
    except (OSError, EOFError):
        return False


class VcfReader:
    """Open a VCF (plain, bgzipped) or BCF file for streaming.

    Parameters
    ----------
    path
        Input file, or ``-`` for standard input (plain or gzipped VCF read as it comes; BCF copied
        to a temporary file first). Standard input has no index: it is read once, in order.
    regions
        Optional ``(chrom, start, end)`` intervals read one after another through the file's index,
        keeping only records whose ``POS`` lies in ``[start, end]`` (1-based, inclusive; ``end``
        None: to the contig's end). A region query also returns records that start before the
        region and reach into it (deletions, symbolic alleles with ``END``); filtering by ``POS``
        puts every record in exactly one of several adjacent regions (a shard of a sharded run).
    select
        Keep only records that overlap these regions (``-r/-R``, :mod:`veff.io.vcf_regions`): read
        through the file's index when it has one (records in file order, each once), else by
        reading every record and dropping the others. Applies on top of ``regions``.
    cyvcf2_records
        Yield cyvcf2 records (to read their INFO) instead of the records' lines, also for text input.

    Attributes
    ----------
    vcf
        The cyvcf2 reader of the file (its header: contigs, INFO declarations, samples).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        regions: Sequence[tuple[str, int, int | None]] | None = None,
        select: RegionSet | None = None,
        cyvcf2_records: bool = False,
    ) -> None:
        from cyvcf2 import VCF

        self.stdin = str(path) == STDIN
        self.path = Path("<stdin>") if self.stdin else Path(path)
        self._open: list[Any] = []  # text streams being read, closed by close()
        self._tmp: Path | None = None  # a folder for what is read from standard input
        self._stdin: tuple[Any, int] | None = None  # standard input after its header, lines so far
        if self.stdin:
            if regions is not None:
                msg = "standard input cannot be read by region (it has no index); give a file"
                raise InputError(msg)
            header = self._read_stdin(whole=cyvcf2_records)
        elif not self.path.is_file():
            msg = f"{self.path}: VCF not found"
            raise InputError(msg)
        else:
            header = self.path
        try:
            self.vcf: Any = VCF(str(header), gts012=False, lazy=True, threads=None)
        except (OSError, Exception) as exc:  # cyvcf2 raises bare Exception on bad headers
            self._remove_tmp()
            msg = f"{self.path}: cannot read as VCF/BCF ({exc})"
            raise InputError(msg) from exc
        self.regions = None if regions is None else list(regions)
        self.select = select
        self.text = self._stdin is not None or (not cyvcf2_records and not is_bcf(header))
        if self.stdin and self._stdin is None:  # BCF (or cyvcf2 records): read from its copy
            self.path = header
        self.records_read = 0
        self._tbx: Any = None
        self._raw: Any = None  # the file under the text stream (its position: bytes read)
        self.index = None if self.stdin else find_index(self.path)

    def _read_stdin(self, *, whole: bool) -> Path:
        """Read the header of standard input (plain or gzipped VCF), or copy all of a BCF.

        Returns the file cyvcf2 reads the header from; the records of a VCF are read later from
        the stream itself, so scoring starts while the input still comes.
        """
        import tempfile

        stream: Any = sys.stdin.buffer
        if stream.peek(2)[:2] == b"\x1f\x8b":
            from isal import igzip

            stream = igzip.open(stream, "rb")
        self._tmp = Path(tempfile.mkdtemp(prefix="veff-stdin-"))
        try:
            if whole or stream.peek(3)[:3] == b"BCF":
                copy = self._tmp / "stdin.bcf"
                with open(copy, "wb") as fh:
                    while data := stream.read(_LINE_BUFFER):
                        fh.write(data)
                return copy
            lines: list[bytes] = []
            for line in stream:
                lines.append(line)
                if line.startswith(b"#CHROM"):
                    break
            else:
                msg = "<stdin>: no VCF header (expected ##fileformat lines and a #CHROM line)"
                raise InputError(msg)
        except (OSError, EOFError) as exc:
            self._remove_tmp()
            msg = f"<stdin>: cannot read ({exc})"
            raise InputError(msg) from exc
        except InputError:
            self._remove_tmp()
            raise
        header = self._tmp / "header.vcf"
        header.write_bytes(b"".join(lines))
        self._stdin = (stream, len(lines))
        return header

    def _remove_tmp(self) -> None:
        if self._tmp is not None:
            import shutil

            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    @property
    def size(self) -> int | None:
        """Bytes of the file (None for standard input)."""
        return None if self.stdin else self.path.stat().st_size

    def bytes_read(self) -> int | None:
        """Bytes of the file read so far (a little ahead of the records), or None when not known.

        Known when the whole text file is read (not through the index, not for BCF).
        """
        raw = self._raw
        if raw is None:
            return None
        try:
            return os.lseek(raw.fileno(), 0, os.SEEK_CUR)
        except (OSError, ValueError):  # closed
            return None

    def indexed_records(self) -> int | None:
        """Records of the whole file as its index counts them, or None (no index, or no counts)."""
        if self.index is None:
            return None
        try:
            return read_index(self.index, self.contigs).records
        except InputError:
            return None

    @property
    def contigs(self) -> list[str]:
        """Contig names declared in the header (``##contig`` lines)."""
        return list(self.vcf.seqnames)

    def __iter__(self) -> Iterator[tuple[Variant, Any]]:
        """Yield ``(Variant, record)`` in file order.

        ``record`` is the line of the record (``bytes``, with its line end) for text input, else
        the cyvcf2 record.
        """
        select = self.select
        source: Iterator[tuple[Variant, Any]]
        if self.regions is not None:
            source = self._in_regions(self.regions)
        elif select is not None and find_index(self.path) is not None:
            source, select = self._selected_via_index(select), None
        elif self.text:
            source = self._text_records(self._all_lines())
        else:
            source = self._cyvcf2_records(self.vcf)
        if select is not None:  # no index: every record is read, those outside are dropped
            source = (
                item for item in source if select.overlaps(item[0].chrom, item[0].pos, _last_base(*item))
            )
        for item in source:
            self.records_read += 1
            yield item

    def _query(self, chrom: str, start: int, end: int | None) -> Iterator[tuple[Variant, Any]]:
        """Records overlapping 1-based ``[start, end]`` of ``chrom``, through the index."""
        if not self.text:
            return self._cyvcf2_records(self.vcf(region_string(chrom, start, end)))
        tbx = self._tabix()
        if chrom not in tbx.contigs:
            return iter(())
        lines = (text.encode("latin-1") + b"\n" for text in tbx.fetch(chrom, max(0, start - 1), end))
        return self._text_records((None, line) for line in lines)

    def _in_regions(self, regions: list[tuple[str, int, int | None]]) -> Iterator[tuple[Variant, Any]]:
        for chrom, start, end in regions:
            for v, rec in self._query(chrom, start, end):
                if v.pos >= start and (end is None or v.pos <= end):
                    yield v, rec

    def _selected_via_index(self, select: RegionSet) -> Iterator[tuple[Variant, Any]]:
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
            for v, rec in self._query(chrom, start, end):
                # a record overlapping the previous region of this contig was yielded there
                if last is not None and last[0] == chrom and last[1] is not None and last[1] >= v.pos:
                    continue
                yield v, rec
            last = (chrom, end)

    # -- text input ----------------------------------------------------------------------------
    def _text_records(self, lines: Iterator[tuple[int | None, bytes]]) -> Iterator[tuple[Variant, bytes]]:
        parse = self._parse
        for number, line in lines:
            v = parse(line, number)
            if v is not None:
                yield v, line

    def _all_lines(self) -> Iterator[tuple[int | None, bytes]]:
        if self._stdin is not None:
            rest, seen = self._stdin
            try:
                yield from enumerate(rest, seen + 1)
            except (OSError, EOFError) as exc:
                msg = f"{self.path}: cannot read past data record {self.records_read} ({exc})"
                raise InputError(msg) from exc
            return
        raw: Any = open(self.path, "rb", buffering=_LINE_BUFFER)  # noqa: SIM115  (closed below)
        stream: Any = raw
        if raw.peek(2)[:2] == b"\x1f\x8b":
            from isal import igzip

            stream = igzip.open(raw, "rb")
            self._open.append(stream)
        self._open.append(raw)
        self._raw = raw
        try:
            yield from enumerate(stream, 1)
        except (OSError, EOFError) as exc:
            msg = f"{self.path}: cannot read past data record {self.records_read} ({exc})"
            raise InputError(msg) from exc
        finally:
            stream.close()
            raw.close()

    def _tabix(self) -> Any:
        if self._tbx is None:
            import pysam

            index = find_index(self.path)
            try:  # latin-1 maps every byte to one character and back: the line's bytes are kept
                self._tbx = pysam.TabixFile(
                    str(self.path), index=None if index is None else str(index), encoding="latin-1"
                )
            except OSError as exc:
                msg = f"{self.path}: cannot read by region (is it bgzipped and indexed?): {exc}"
                raise InputError(msg) from exc
            self._open.append(self._tbx)
        return self._tbx

    def _parse(self, line: bytes, number: int | None) -> Variant | None:
        """The Variant of a record's line; None for header, comment and empty lines."""
        if line[:1] == b"#" or not line.strip():
            return None
        f = line.split(b"\t", 7)
        if len(f) < 8:
            where = f"line {number}" if number is not None else f"data record {self.records_read + 1}"
            msg = (
                f"{self.path}: {where}: expected 8 or more tab-separated columns (CHROM POS ID REF ALT "
                f"QUAL FILTER INFO), found {len(f)}"
            )
            raise InputError(msg)
        try:
            pos = int(f[1])
        except ValueError:
            where = f"line {number}" if number is not None else f"data record {self.records_read + 1}"
            msg = f"{self.path}: {where}: POS {f[1].decode(errors='replace')!r} is not a whole number"
            raise InputError(msg) from None
        alt = f[4]
        if not alt.isupper() and b"<" not in alt and b"[" not in alt and b"]" not in alt:
            alt = alt.upper()  # lower-case bases (soft-masked style) are the same bases
        return Variant(
            f[0].decode(errors="replace"),
            pos,
            f[3].decode(errors="replace").upper(),
            () if alt == b"." else tuple(alt.decode(errors="replace").split(",")),
            f[2].decode(errors="replace") or ".",
        )

    # -- BCF input, or cyvcf2 records ----------------------------------------------------------
    def _cyvcf2_records(self, source: Any) -> Iterator[tuple[Variant, Any]]:
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
            alts = tuple(a if a.isupper() or "<" in a or "[" in a or "]" in a else a.upper() for a in rec.ALT)
            yield Variant(rec.CHROM, rec.POS, rec.REF.upper(), alts, rec.ID or "."), rec

    def close(self) -> None:
        """Close the file."""
        for fh in self._open:
            fh.close()
        self._open.clear()
        self._tbx = None
        self.vcf.close()
        self._remove_tmp()


def count_alleles(path: str | os.PathLike[str], limit: int, select: RegionSet | None = None) -> int | None:
    """REF plus ALT alleles of every record of a small VCF, or None past ``limit`` (or when unreadable).

    Reads at most about ``limit`` alleles' worth of records (of those in ``select``), so it costs
    little on any file; used to keep the automatic batch size of a small run from being mostly padding.
    """
    if str(path) == STDIN:  # read once, by the run itself
        return None
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


def _last_base(v: Variant, rec: Any) -> int:
    """1-based last base a record covers: ``INFO/END`` when given, else the end of REF (htslib's rlen)."""
    if not isinstance(rec, bytes):
        return max(v.pos, rec.end)
    info = rec.split(b"\t", 8)[7]
    if b"END=" in info:
        for entry in info.split(b";"):
            if entry.startswith(b"END="):
                try:
                    return max(v.pos, int(entry[4:]))
                except ValueError:
                    break
    return max(v.pos, v.pos + len(v.ref) - 1)


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
