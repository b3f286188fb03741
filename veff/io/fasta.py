"""Reference FASTA access (the only module that imports pysam's FASTA reader).

Sequences come back as ``uint8`` arrays of upper-case ASCII letters; soft-masked (lower-case)
bases are upper-cased. Positions outside a contig read as ``N``. Coordinates are 0-based,
half-open, as everywhere inside veff.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from veff.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Fasta", "contig_aliases", "match_contig"]

N_CODE = ord("N")


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
    """Build the ``.fai`` (and ``.gzi``) index next to ``path`` if it is missing."""
    import pysam

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
    if all(p.exists() for p in needed):
        return
    if not os.access(path.parent, os.W_OK):
        msg = (
            f"{path}: no FASTA index ({needed[0].name}) and the folder is not writable; "
            f"build it with `samtools faidx {path}` in a writable copy"
        )
        raise InputError(msg)
    try:
        pysam.faidx(str(path))
    except pysam.SamtoolsError as exc:
        msg = f"{path}: could not index the FASTA: {str(exc).strip()}"
        raise InputError(msg) from exc


class Fasta:
    """A reference genome read with pysam, contigs cached as uint8 arrays.

    Parameters
    ----------
    path
        FASTA file, plain or BGZF-compressed. A missing index is built when the folder is writable.
    max_cached_contigs
        How many whole contigs to keep in memory (a sorted VCF needs one).
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
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
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

    def contig(self, name: str) -> np.ndarray:
        """Return the whole contig ``name`` (a FASTA name) as upper-case uint8 codes."""
        arr = self._cache.get(name)
        if arr is not None:
            self._cache.move_to_end(name)
            return arr
        seq = self._fa.fetch(reference=name)
        arr = np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)  # read-only
        self._cache[name] = arr
        while len(self._cache) > self._max_cached:
            self._cache.popitem(last=False)
        return arr

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
