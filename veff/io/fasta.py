"""Reference FASTA access (the only module that imports pysam's FASTA reader).

Sequences come back as ``uint8`` arrays of upper-case ASCII letters; soft-masked (lower-case)
bases are upper-cased. Positions outside a contig read as ``N``. Coordinates are 0-based,
half-open, as everywhere inside veff.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from veff.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["Contig", "Fasta", "contig_aliases", "match_contig"]

N_CODE = ord("N")
BLOCK_SHIFT = 20
"""A contig is read in blocks of ``2**BLOCK_SHIFT`` bases (1 Mb) until :data:`WHOLE_AFTER_BLOCKS`."""
WHOLE_AFTER_BLOCKS = 16
"""A contig of which a run reads more blocks than this is read whole (a dense VCF: one read)."""


def contig_aliases(name: str) -> list[str]:
    """Return the names under which a contig may appear in other files.

    ``chr1`` <-> ``1``, and the mitochondrial names ``chrM`` / ``chrMT`` / ``M`` / ``MT``.
    """
    bare = name[3:] if name.lower().startswith("chr") else name
    names = [name, bare, "chr" + bare]
    if bare.upper() in ("M", "MT"):
        names += ["chrM", "chrMT", "MT", "M"]
    seen: dict[str, None] = dict.fromkeys(names)
    return list(seen)


def match_contig(name: str, available: Iterable[str]) -> str | None:
    """Return the name in ``available`` that denotes contig ``name``, or None.

    Examples
    --------
    >>> match_contig("17", ["chr17", "chr22"])
    'chr17'
    >>> match_contig("chrM", ["MT"])
    'MT'
    """
    pool = set(available)
    for alias in contig_aliases(name):
        if alias in pool:
            return alias
    return None


def _ensure_index(path: Path) -> None:
    """Make sure ``path`` has a ``.fai`` (and ``.gzi``) index that fits it; build it when needed.

    A missing index is built. An index older than the FASTA is rebuilt when the folder is
    writable; any index is then checked against the file (:func:`_stale_index`), and one that
    does not fit (another FASTA's, or the FASTA changed since) is rebuilt when the folder is
    writable, else an error. Without this, every record would read the wrong bases and come out
    ``ref_mismatch``.
    """
    with open(path, "rb") as fh:
        magic = fh.read(4)
    is_gz = magic[:2] == b"\x1f\x8b"
    if is_gz and not (len(magic) == 4 and magic[3] & 4):
        msg = (
            f"{path}: gzip-compressed but not BGZF; recompress with "
            f"`gunzip -c {path} | bgzip > {path.with_suffix('')}.bgz.gz` (bgzip from htslib/tabix)"
        )
        raise InputError(msg)
    needed = [Path(f"{path}.fai")] + ([Path(f"{path}.gzi")] if is_gz else [])
    writable = os.access(path.parent, os.W_OK)
    if not all(p.exists() for p in needed):
        if not writable:
            msg = (
                f"{path}: no FASTA index ({needed[0].name}) and the folder is not writable; "
                f"build it with `samtools faidx {path}` in a writable copy"
            )
            raise InputError(msg)
        _build_index(path, needed)
        return
    key = (str(path.resolve()), *(p.stat().st_mtime_ns for p in (path, *needed)))
    if key in _CHECKED:
        return
    older = any(p.stat().st_mtime_ns < path.stat().st_mtime_ns for p in needed)
    problem = "it is older than the FASTA" if older and writable else _stale_index(path, needed)
    if problem is not None:
        if not writable:
            msg = (
                f"{path}: its index {needed[0].name} does not fit the file ({problem}) and the folder "
                f"is not writable; rebuild it with `samtools faidx {path}` in a writable copy"
            )
            raise InputError(msg)
        _build_index(path, needed)
        if _stale_index(path, needed) is not None:  # pragma: no cover (samtools' own index)
            msg = f"{path}: the rebuilt index does not fit the file ({problem})"
            raise InputError(msg)
        key = (str(path.resolve()), *(p.stat().st_mtime_ns for p in (path, *needed)))
    _CHECKED.add(key)


_CHECKED: set[tuple[object, ...]] = set()  # (path, mtimes) of FASTA + index checked in this process
_CHECK_CONTIGS = 100  # contigs checked at each end of a large index


def _build_index(path: Path, needed: list[Path]) -> None:
    """Build the index into temporary files and rename them into place (readers never see half)."""
    import pysam

    tmp = [p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in needed]
    args = ["--fai-idx", str(tmp[0])] + (["--gzi-idx", str(tmp[1])] if len(tmp) > 1 else [])
    try:
        pysam.faidx(str(path), *args)
        for t, p in zip(tmp, needed, strict=True):
            os.replace(t, p)
    except pysam.SamtoolsError as exc:
        msg = f"{path}: could not index the FASTA: {' '.join(str(exc).split())}"
        raise InputError(msg) from exc
    finally:
        for t in tmp:
            t.unlink(missing_ok=True)


def _stale_index(path: Path, needed: list[Path]) -> str | None:
    """Why the ``.fai`` (and ``.gzi``) do not fit ``path``, or None when they do.

    For every contig (the first and last 100 of a larger index) the bytes the index points at
    are read: the header line must end just before the sequence, the first line must have the
    declared width, and the last base must be followed by the end of the line and then the next
    ``>`` header or the end of the file. A stale index (another FASTA's, or one written before a
    contig changed length) fails this at the first contig it shifts.
    """
    try:
        entries = []
        for line in needed[0].read_text().splitlines():
            if line.strip():
                cols = line.split("\t")
                entries.append((cols[0], int(cols[1]), int(cols[2]), int(cols[3]), int(cols[4])))
        read_at = _bgzf_reader(path, needed[1]) if len(needed) > 1 else _plain_reader(path)
    except (OSError, ValueError, struct.error) as exc:
        return f"unreadable index: {exc}"
    entries.sort(key=lambda e: e[2])
    if len(entries) > 2 * _CHECK_CONTIGS:
        entries = entries[:_CHECK_CONTIGS] + entries[-_CHECK_CONTIGS:]
    try:
        for name, length, offset, bases, width in entries:
            if length == 0:
                continue
            if bases < 1 or width < bases or offset < 1 or read_at(offset - 1, 1) != b"\n":
                return f"contig {name}: its sequence does not start at offset {offset}"
            if length > bases:
                first = read_at(offset, width)
                if len(first) < width or first[bases:].strip(b"\r\n") or b"\n" in first[:bases]:
                    return f"contig {name}: its lines are not {bases} bases long"
            last = length - 1
            pos = offset + (last // bases) * width + last % bases
            end = read_at(pos, width + 3)
            if not end[:1].strip() or end[:1] == b">" or end[1:].lstrip(b"\r\n")[:1] not in (b"", b">"):
                return f"contig {name}: its sequence is not {length} bases long"
    except (OSError, ValueError, EOFError) as exc:
        return f"it points past the file ({exc})"
    return None


def _plain_reader(path: Path) -> Callable[[int, int], bytes]:
    def read_at(offset: int, n: int) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)

    return read_at


def _bgzf_reader(path: Path, gzi: Path) -> Callable[[int, int], bytes]:
    """Read uncompressed bytes of a BGZF file at an offset, through its ``.gzi`` block list."""
    from pysam.libcbgzf import BGZFile

    raw = gzi.read_bytes()
    (count,) = struct.unpack_from("<Q", raw)
    blocks = [(0, 0), *(struct.unpack_from("<QQ", raw, 8 + 16 * k) for k in range(count))]
    starts = [u for _, u in blocks]

    def read_at(offset: int, n: int) -> bytes:
        c, u = blocks[bisect.bisect_right(starts, offset) - 1]
        fh = BGZFile(str(path), "rb", index=None)
        try:
            fh.seek((c << 16) | (offset - u))
            return bytes(fh.read(n))
        finally:
            fh.close()

    return read_at


class Contig:
    """One FASTA contig as upper-case uint8 codes, read from the file as far as it is used.

    Indexed like a 1-D ``numpy.ndarray`` (an int, a slice, an int array of any shape) and
    ``len()``; ``numpy.asarray(contig)`` is the whole sequence. A contig of up to two blocks is
    read at once; a longer one in 1 Mb blocks (:data:`BLOCK_SHIFT`), each read once, until more
    than :data:`WHOLE_AFTER_BLOCKS` are needed, when it is read whole. A handful of variants on
    a 250 Mb chromosome thus reads a few Mb, not the chromosome (1 s and 750 MB for chr1), and a
    dense VCF reads each contig once, as a whole. A request over neighbouring blocks is served
    from one array of them (kept for the next request), so the windows of a chunk are cut with
    one gather, as from the whole contig.

    Parameters
    ----------
    read
        ``read(start, end)``: bases ``[start, end)`` as upper-case uint8 codes.
    length
        Bases in the contig.
    """

    def __init__(self, read: Callable[[int, int], np.ndarray], length: int) -> None:
        self._read = read
        self._length = length
        self._blocks: dict[int, np.ndarray] = {}
        self._run: tuple[int, np.ndarray] | None = None  # (start, bases) of the last neighbouring blocks
        self._whole: np.ndarray | None = read(0, length) if length <= 2 << BLOCK_SHIFT else None

    def __len__(self) -> int:
        return self._length

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.whole if dtype is None else self.whole.astype(dtype)

    @property
    def whole(self) -> np.ndarray:
        """The whole contig, shape (length,), read-only."""
        if self._whole is None:
            self._whole = self._read(0, self._length)
            self._blocks.clear()
            self._run = None
        return self._whole

    def _block(self, b: int) -> np.ndarray:
        """Block ``b``: bases ``[b << BLOCK_SHIFT, (b + 1) << BLOCK_SHIFT)`` (fewer at the end)."""
        lo = b << BLOCK_SHIFT
        if self._whole is not None:
            return self._whole[lo : lo + (1 << BLOCK_SHIFT)]
        block = self._blocks.get(b)
        if block is None:
            if len(self._blocks) >= WHOLE_AFTER_BLOCKS:
                return self.whole[lo : lo + (1 << BLOCK_SHIFT)]
            block = self._blocks[b] = self._read(lo, min(self._length, lo + (1 << BLOCK_SHIFT)))
        return block

    def _span(self, lo: int, hi: int) -> tuple[np.ndarray, int]:
        """``(bases, offset)``: an array holding positions ``[lo, hi)`` at ``position - offset``."""
        if self._whole is not None:
            return self._whole, 0
        first, last = lo >> BLOCK_SHIFT, (hi - 1) >> BLOCK_SHIFT
        if first == last:
            return self._block(first), first << BLOCK_SHIFT
        if self._run is not None:
            start, bases = self._run
            if start <= lo and hi <= start + len(bases):
                return bases, start
        if last - first >= WHOLE_AFTER_BLOCKS:
            return self.whole, 0
        parts = [self._block(b) for b in range(first, last + 1)]
        if self._whole is not None:  # the blocks went past the limit: read whole meanwhile
            return self._whole, 0
        self._run = (first << BLOCK_SHIFT, np.concatenate(parts))
        return self._run[1], self._run[0]

    def _positions(self, key: Any) -> np.ndarray:
        """``key`` as int64 positions within the contig (negative ones from the end, as numpy)."""
        idx = np.asarray(key)
        if idx.dtype.kind not in "iu":
            msg = f"contig positions must be integers, not {idx.dtype}"
            raise IndexError(msg)
        idx = idx.astype(np.int64, copy=False)
        if idx.size and idx.min() < 0:
            idx = np.where(idx < 0, idx + self._length, idx)
        if idx.size and (idx.min() < 0 or idx.max() >= self._length):
            msg = f"position out of bounds for a contig of {self._length} bases"
            raise IndexError(msg)
        return idx

    def __getitem__(self, key: Any) -> Any:
        if self._whole is not None:
            return self._whole[key]
        if isinstance(key, slice):
            start, stop, step = key.indices(self._length)
            if step != 1:
                return self.whole[key]
            if stop <= start:
                return self.whole[:0]
            bases, offset = self._span(start, stop)
            return bases[start - offset : stop - offset]
        if isinstance(key, (int, np.integer)):
            i = int(self._positions(key))
            return self._block(i >> BLOCK_SHIFT)[i & ((1 << BLOCK_SHIFT) - 1)]
        idx = self._positions(key)
        if idx.size == 0:
            return np.empty(idx.shape, dtype=np.uint8)
        lo, hi = int(idx.min()), int(idx.max()) + 1
        if (hi - 1 >> BLOCK_SHIFT) - (lo >> BLOCK_SHIFT) < WHOLE_AFTER_BLOCKS:
            bases, offset = self._span(lo, hi)
            return bases[idx - offset]
        # far apart (a few variants along a chromosome): the blocks they fall in, or all of it
        which = idx >> BLOCK_SHIFT
        blocks = np.unique(which).tolist()
        if len(set(blocks) | set(self._blocks)) > WHOLE_AFTER_BLOCKS:
            return self.whole[idx]
        out = np.empty(idx.shape, dtype=np.uint8)
        for b in blocks:
            here = which == b
            out[here] = self._block(b)[idx[here] - (b << BLOCK_SHIFT)]
        return out


class Fasta:
    """A reference genome read with pysam, contigs cached as uint8 codes (:class:`Contig`).

    Parameters
    ----------
    path
        FASTA file, plain or BGZF-compressed. A missing index is built when the folder is writable.
    max_cached_contigs
        How many contigs to keep in memory (a sorted VCF needs one).
    """

    def __init__(self, path: str | os.PathLike[str], *, max_cached_contigs: int = 2) -> None:
        import pysam

        self.path = Path(path)
        if not self.path.is_file():
            msg = f"{self.path}: reference FASTA not found"
            raise InputError(msg)
        _ensure_index(self.path)
        try:
            self._fa = pysam.FastaFile(str(self.path))
        except (OSError, ValueError) as exc:
            msg = f"{self.path}: cannot open as FASTA: {exc}"
            raise InputError(msg) from exc
        self.lengths: dict[str, int] = dict(zip(self._fa.references, self._fa.lengths, strict=True))
        self._cache: OrderedDict[str, Contig] = OrderedDict()
        self._max_cached = max(1, max_cached_contigs)
        self._names: dict[str, str | None] = {}

    def __getstate__(self) -> dict[str, object]:
        return {"path": self.path, "max": self._max_cached}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["path"], max_cached_contigs=state["max"])  # type: ignore[misc]

    def resolve(self, chrom: str) -> str | None:
        """Return the FASTA's name for ``chrom`` (``chr`` prefix and ``M``/``MT`` tolerant), or None."""
        if chrom not in self._names:
            self._names[chrom] = match_contig(chrom, self.lengths)
        return self._names[chrom]

    def contig(self, name: str) -> Contig:
        """Return contig ``name`` (a FASTA name) as upper-case uint8 codes, read as it is used."""
        found = self._cache.get(name)
        if found is not None:
            self._cache.move_to_end(name)
            return found

        def read(start: int, end: int) -> np.ndarray:
            seq = self._fa.fetch(reference=name, start=start, end=end)
            return np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)  # read-only

        contig = self._cache[name] = Contig(read, self.lengths[name])
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return contig

    def fetch(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Return ``[start, end)`` of FASTA contig ``chrom`` as uint8 codes, N outside the contig."""
        return self.fetch_many(chrom, np.array([start]), end - start)[0]

    def fetch_many(self, chrom: str, starts: np.ndarray, length: int) -> np.ndarray:
        """Return windows ``[s, s + length)`` for every ``s`` in ``starts``.

        Parameters
        ----------
        chrom
            FASTA contig name (see :meth:`resolve`).
        starts
            0-based window starts, shape (n,). May be negative or run past the contig end.
        length
            Window length L.

        Returns
        -------
        numpy.ndarray
            uint8 codes, shape (n, L); positions outside the contig are ``N``.
        """
        seq = self.contig(chrom)
        starts = np.asarray(starts, dtype=np.int64)
        n = len(seq)
        if starts.size and starts.min() >= 0 and starts.max() + length <= n:
            idx = starts[:, None] + np.arange(length, dtype=np.int64)
            return seq[idx]
        out = np.full((starts.size, length), N_CODE, dtype=np.uint8)
        idx = starts[:, None] + np.arange(length, dtype=np.int64)
        inside = (idx >= 0) & (idx < n)
        out[inside] = seq[idx[inside]]
        return out

    def close(self) -> None:
        """Close the file and drop cached contigs."""
        self._fa.close()
        self._cache.clear()
