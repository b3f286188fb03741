"""Read gene annotations for splice scoring: SpliceAI's gene table, GTF and GFF3 (plain or gzipped).

A :class:`GeneAnnotation` holds transcripts (the "genes" a splice model scores a variant against):
name, contig, strand, transcript span and exons, 0-based half-open as everywhere in veff. It
answers the two questions SpliceAI asks of its table: which transcripts contain a position
(``TX_START < POS <= TX_END`` for 1-based ``POS``, in file order) and how far the nearest exon
boundary is.

Formats
-------
SpliceAI's table (``spliceai/annotations/grch38.txt``): tab-separated, header
``#NAME CHROM STRAND TX_START TX_END EXON_START EXON_END``, 0-based starts, 1-based ends, exon
lists comma-separated with a trailing comma. One row is one scored unit, named ``NAME``.

GTF / GFF3: ``exon`` features grouped by transcript (GTF ``transcript_id``, GFF3 ``Parent``);
the transcript span is its ``transcript``/``mRNA`` line when there is one, else its exons' span.
Which transcripts are kept (``transcripts=``):

* ``canonical`` (default): per gene, the transcript tagged ``Ensembl_canonical`` (GENCODE >= 34,
  Ensembl); a gene without one takes the first of its transcripts tagged ``MANE_Select``, then
  ``appris_principal_*``, ``CCDS``, ``basic``; among equals the one with most exonic bases, then
  the longest span, then the smallest transcript ID. One unit per gene, named by the gene name,
  as SpliceAI's table. (On GENCODE v25, which has no canonical tag, this picks SpliceAI's own
  canonical transcript for three of four genes tested; SpliceAI's table is the exact choice.)
* ``mane``: transcripts tagged ``MANE_Select`` only (genes without one are not scored).
* ``all``: every transcript, each its own unit (named by the gene name; the transcript ID is kept
  in :attr:`Transcript.transcript_id`).

Units are ordered by contig (first appearance), then start, then name, so that output order does
not depend on the order of lines in the file (SpliceAI's own table is already sorted so).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast
from urllib.parse import unquote

import numpy as np

from veff.errors import InputError
from veff.io.fasta import contig_aliases

__all__ = ["GeneAnnotation", "Transcript", "TranscriptChoice", "read_annotation"]

TranscriptChoice = Literal["canonical", "mane", "all"]
# tags that make a transcript a gene's canonical one, best first (prefixes: appris_principal_1..5)
_PREFERRED = ("Ensembl_canonical", "MANE_Select", "appris_principal", "CCDS", "basic")
_TABLE_HEADER = ("#NAME", "CHROM", "STRAND", "TX_START", "TX_END", "EXON_START", "EXON_END")
_BLOCK = 1 << 20  # bytes read at a time
_TX_TYPES = frozenset(
    {"transcript", "mrna", "lnc_rna", "ncrna", "mirna", "snrna", "snorna", "rrna", "trna"}
    | {"primary_transcript"}
)


@dataclass(frozen=True)
class Transcript:
    """One scored unit: a transcript with its exons.

    Attributes
    ----------
    name
        Gene symbol written to the output (SpliceAI's ``SYMBOL``).
    chrom
        Contig as written in the annotation.
    strand
        ``+`` or ``-``.
    start, end
        Transcript span, 0-based half-open.
    exon_starts, exon_ends
        int64, shape (n_exons,): exons, 0-based half-open, sorted.
    transcript_id, gene_id
        IDs from a GTF/GFF3 (empty for SpliceAI's table).
    """

    name: str
    chrom: str
    strand: str
    start: int
    end: int
    exon_starts: np.ndarray
    exon_ends: np.ndarray
    transcript_id: str = ""
    gene_id: str = ""

    @functools.cached_property
    def boundaries(self) -> np.ndarray:
        """SpliceAI's exon boundaries, 1-based, sorted: first and last base of every exon.

        Computed on first use (a genome-wide annotation has 10^5 transcripts, a run few variants).
        """
        return np.union1d(self.exon_starts + 1, self.exon_ends).astype(np.int64)

    @property
    def feature(self) -> str:
        """The unit's key in an output row: the transcript ID when there is one, else the name."""
        return self.transcript_id or self.name

    def nearest_boundary(self, pos: int) -> int:
        """Signed distance from 1-based ``pos`` to the nearest exon boundary (SpliceAI's rule).

        On a tie the boundary upstream (smaller coordinate) wins, as in SpliceAI.
        """
        d = self.boundaries - pos
        return int(d[np.argmin(np.abs(d))]) if len(d) else 10**9


class GeneAnnotation:
    """Transcripts indexed by contig.

    Parameters
    ----------
    transcripts
        The scored units, in output order.
    source
        Where they were read from (for messages).
    """

    def __init__(self, transcripts: list[Transcript], source: str = "") -> None:
        self.transcripts = transcripts
        self.source = source
        self._by_chrom: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        rows: dict[str, list[int]] = {}
        for k, t in enumerate(transcripts):
            rows.setdefault(t.chrom, []).append(k)
        for chrom, ks in rows.items():
            idx = np.array(ks, dtype=np.int64)
            starts = np.array([transcripts[k].start for k in ks], dtype=np.int64)
            ends = np.array([transcripts[k].end for k in ks], dtype=np.int64)
            self._by_chrom[chrom] = (idx, starts, ends)
        self._alias: dict[str, str | None] = {}

    def __len__(self) -> int:
        return len(self.transcripts)

    def _chrom(self, chrom: str) -> str | None:
        if chrom not in self._alias:
            self._alias[chrom] = next((a for a in contig_aliases(chrom) if a in self._by_chrom), None)
        return self._alias[chrom]

    def overlapping(self, chrom: str, start: int) -> list[Transcript]:
        """Transcripts whose span contains the 0-based position ``start``, in annotation order."""
        name = self._chrom(chrom)
        if name is None:
            return []
        idx, starts, ends = self._by_chrom[name]
        hit = idx[(starts <= start) & (start < ends)]
        return [self.transcripts[k] for k in hit.tolist()]


def _open_text(path: Path) -> Iterator[str]:
    """The lines of a plain or gzipped UTF-8 text file (universal newlines), read in 1 MB blocks.

    Gzip is inflated by ISA-L (``isal``, 2-3x faster than zlib). A read error, a damaged gzip
    stream or bad UTF-8 anywhere in the file is an :class:`InputError` naming the file.
    """
    from isal import igzip, isal_zlib

    damaged = cast("type[Exception]", isal_zlib.error)  # (typed as an instance in isal's stubs)
    try:
        with path.open("rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        raw = io.BufferedReader(igzip.open(path, "rb"), _BLOCK) if gz else path.open("rb", buffering=_BLOCK)
        with io.TextIOWrapper(raw, encoding="utf-8") as text:
            yield from text
    except (OSError, EOFError, UnicodeDecodeError, damaged) as exc:
        msg = f"{path}: cannot read the annotation ({exc})"
        raise InputError(msg) from exc


def read_annotation(
    path: str | os.PathLike[str], *, transcripts: TranscriptChoice = "canonical"
) -> GeneAnnotation:
    """Read SpliceAI's gene table, a GTF or a GFF3 (plain or gzipped; the format is detected).

    Parameters
    ----------
    path
        The annotation file; ``grch37`` or ``grch38`` (where no such file exists) is SpliceAI's own
        table from the installed ``spliceai`` package, as SpliceAI's ``-A`` takes them.
    transcripts
        Which GTF/GFF3 transcripts become scored units (see the module docstring); SpliceAI's table
        is taken as it is.

    Raises
    ------
    InputError
        Unreadable file, or a line that does not fit its format (file and line named).
    """
    p = _builtin_table(path)
    if transcripts not in ("canonical", "mane", "all"):
        msg = f"transcript choice must be canonical, mane or all, got {transcripts!r}"
        raise InputError(msg)
    if not p.is_file():
        msg = f"{p}: annotation file not found"
        raise InputError(msg)
    first = next((ln for ln in _open_text(p) if ln.strip() and not ln.startswith("##")), "")
    with _gc_paused():
        units = _read_table(p) if first.startswith("#NAME") else _read_gtf(p, transcripts)
    if not units:
        msg = f"{p}: no transcripts with exons found (expected SpliceAI's gene table, a GTF or a GFF3)"
        raise InputError(msg)
    return GeneAnnotation(units, str(p))


def _builtin_table(path: str | os.PathLike[str]) -> Path:
    """SpliceAI's own table for ``grch37`` / ``grch38`` where no such file exists.

    These are SpliceAI's ``-A`` names; the table is the one shipped in the installed ``spliceai``
    package (found without importing it).
    """
    p = Path(path)
    name = str(path)
    if name not in ("grch37", "grch38") or p.exists():
        return p
    import importlib.util

    spec = importlib.util.find_spec("spliceai")
    table = Path(spec.origin).parent / "annotations" / f"{name}.txt" if spec and spec.origin else None
    if table is None or not table.is_file():
        msg = (
            f"annotation {name!r} names SpliceAI's built-in gene table, but the spliceai package "
            "is not installed: give the table's path (or a GTF/GFF3)"
        )
        raise InputError(msg)
    return table


def _ints(text: str, where: str) -> np.ndarray:
    parts = text.strip().split(",")
    if parts and parts[-1] == "":
        parts = parts[:-1]
    try:
        return np.array([int(x) for x in parts], dtype=np.int64)
    except ValueError as exc:
        msg = f"{where}: expected a comma-separated list of integers, got {text!r}"
        raise InputError(msg) from exc


def _read_table(p: Path) -> list[Transcript]:
    out: list[Transcript] = []
    header_seen = False
    for n, line in enumerate(_open_text(p), 1):
        if not line.strip() or line.startswith("##"):
            continue
        cols = line.rstrip("\r\n").split("\t")
        where = f"{p}:{n}"
        if not header_seen:
            if tuple(c.strip() for c in cols[:7]) != _TABLE_HEADER:
                msg = f"{where}: expected the header {' '.join(_TABLE_HEADER)}"
                raise InputError(msg)
            header_seen = True
            continue
        if len(cols) < 7:
            msg = f"{where}: expected 7 tab-separated columns ({' '.join(_TABLE_HEADER)})"
            raise InputError(msg)
        name, chrom, strand, tx_s, tx_e, ex_s, ex_e = (c.strip() for c in cols[:7])
        if strand not in ("+", "-"):
            msg = f"{where}: STRAND must be + or -, got {strand!r}"
            raise InputError(msg)
        try:
            start, end = int(tx_s), int(tx_e)
        except ValueError as exc:
            msg = f"{where}: TX_START and TX_END must be integers, got {tx_s!r}, {tx_e!r}"
            raise InputError(msg) from exc
        starts, ends = _ints(ex_s, where), _ints(ex_e, where)
        if len(starts) != len(ends) or not len(starts) or start >= end:
            msg = f"{where}: expected as many EXON_START as EXON_END values and TX_START < TX_END"
            raise InputError(msg)
        out.append(Transcript(name, chrom, strand, start, end, starts, ends))
    return out


# GTF attribute items as they have always been read: ``key "value"`` or ``key value``, ";" after.
_GTF_ATTR = re.compile(r'\s*([^\s";]+)\s+"?([^";]*)"?\s*;?')
_WANTED = ("transcript_id", "gene_id", "gene_name", "tag", "ID", "Name", "Parent")  # keys read
# per wanted key, its plain items: GTF ``; key "value"`` up to the next ";", GFF3 ``;key=value``
# (the column is searched with "; " or ";" put in front: _gtf_column, _gff3_column)
_GTF_PLAIN = {k: re.compile(f'; {k} "([^";]*)"(?=;|\\Z)') for k in _WANTED}
_GFF3_PLAIN = {k: re.compile(f";{k}=([^;]*)") for k in _WANTED}
_FEATURES = _TX_TYPES | {"exon", "gene"}  # the feature types read; all other lines are skipped


def _gtf_column(text: str) -> str:
    """A GTF attribute column as :func:`_gtf_values` searches it."""
    return "; " + text


def _gff3_column(text: str) -> str:
    """A GFF3 attribute column as :func:`_gff3_values` searches it."""
    return ";" + text.strip().strip(";")


def _pieces_with(col: str, key: str) -> Iterator[str]:
    """The ";"-separated pieces of ``col`` that contain ``key``, in order."""
    i = col.find(key)
    while i >= 0:
        start, end = col.rfind(";", 0, i) + 1, col.find(";", i)
        end = len(col) if end < 0 else end
        yield col[start:end]
        i = col.find(key, end)


def _gtf_values(col: str, key: str) -> list[str]:
    """The values of ``key`` in a GTF attribute column (from :func:`_gtf_column`), in file order.

    :data:`_GTF_ATTR` never reads across a ";", so only the ";"-separated pieces that contain
    ``key`` matter. When every occurrence of ``key`` is the key of a plain ``key "value"`` piece
    (the usual case) those are the values; else the pieces with ``key`` are read as always.
    """
    found = _GTF_PLAIN[key].findall(col)
    if col.count(key) == len(found):
        return found
    return [v for piece in _pieces_with(col, key) for k, v in _GTF_ATTR.findall(piece) if k == key]


def _gff3_values(col: str, key: str) -> list[str]:
    """The values of ``key`` in a GFF3 attribute column (from :func:`_gff3_column`), in file order.

    As :func:`_gtf_values`: the plain ``;key=value`` items when every occurrence of ``key`` is one,
    else each ";"-separated item that contains ``key``, split at its first "=" (key stripped).
    """
    items = _GFF3_PLAIN[key].findall(col)
    if col.count(key) != len(items):
        split = (piece.partition("=") for piece in _pieces_with(col, key))
        items = [v for k, eq, v in split if eq and k.strip() == key]
    out: list[str] = []
    for v in items:
        out.extend([unquote(x) for x in v.split(",")] if "%" in v else v.split(","))
    return out


@dataclass
class _Tx:
    chrom: str
    strand: str
    gene_id: str = ""
    gene_name: str = ""
    tags: set[str] = field(default_factory=set)
    span: tuple[int, int] | None = None
    # exons in file order, as two lists of ints (no tuple per exon to allocate and track)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)


@dataclass
class _GtfState:
    txs: dict[str, _Tx] = field(default_factory=dict)
    gene_names: dict[str, str] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)  # contig -> rank of its first appearance
    gff3: bool | None = None


class _BadLine(Exception):
    """A feature line that does not fit its format; the reader names the file and line."""


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (if it runs) for the block.

    Reading a genome-wide annotation keeps about 10^6 containers (transcripts, their exon lists
    and tag sets) that form no cycles; the collector would walk them again and again, a fifth of
    the reading time. Reference counting still frees everything else as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _first(values: Callable[[str, str], list[str]], col: str, *keys: str) -> str:
    """The first value of the first of ``keys`` that has one, else ""."""
    for key in keys:
        found = values(col, key)
        if found:
            return found[0]
    return ""


def _read_features(p: Path) -> _GtfState:
    """Read the genes, transcripts and exons of a GTF/GFF3 (``#`` comments and blank lines skipped)."""
    st = _GtfState()
    for n, line in enumerate(_open_text(p), 1):
        if not line or line[0] == "#" or line.isspace():  # (a comment or a blank line)
            if line.startswith("##gff-version"):
                st.gff3 = True
            continue
        cols = line.split("\t")
        if len(cols) != 9:
            msg = f"{p}:{n}: expected 9 tab-separated GTF/GFF3 columns, got {len(cols)}"
            raise InputError(msg)
        if st.gff3 is None:
            st.gff3 = "=" in cols[8] and '"' not in cols[8]
        kind = cols[2].lower()
        if kind in _FEATURES:
            try:
                _add_feature(st, kind, cols)
            except _BadLine as exc:
                msg = f"{p}:{n}: {exc}"
                raise InputError(msg) from exc.__cause__
    return st


def _add_feature(st: _GtfState, kind: str, cols: list[str]) -> None:
    """Add a gene, transcript or exon line of ``kind`` (its 9 columns, the last with its line end)."""
    try:
        start, end = int(cols[3]) - 1, int(cols[4])
    except ValueError as exc:
        msg = "start and end (columns 4 and 5) must be integers"
        raise _BadLine(msg) from exc
    text = cols[8].rstrip("\r\n")
    if st.gff3:
        col, values = _gff3_column(text), _gff3_values
    else:
        col, values = _gtf_column(text), _gtf_values
    if kind == "gene":
        gid, gname = _first(values, col, "ID", "gene_id"), _first(values, col, "gene_name", "Name")
        if gid and gname:
            st.gene_names[gid] = gname
        return
    chrom, strand = cols[0], cols[6]
    if strand not in ("+", "-"):
        return
    if chrom not in st.order:
        st.order[chrom] = len(st.order)
    id_key = ("Parent" if kind == "exon" else "ID") if st.gff3 else "transcript_id"
    ids = values(col, id_key)
    if not ids and kind == "exon":
        msg = f"exon without a {id_key} attribute"
        raise _BadLine(msg)
    for tid in ids:
        tx = st.txs.get(tid)
        if tx is None:
            tx = st.txs[tid] = _Tx(chrom, strand)
        if kind == "exon":
            tx.starts.append(start)
            tx.ends.append(end)
            tx.gene_id = tx.gene_id or _first(values, col, "gene_id")
        else:
            tx.span = (start, end)
            tx.gene_id = _first(values, col, "gene_id", "Parent")
            tx.gene_name = _first(values, col, "gene_name", "Name")
        tx.gene_name = tx.gene_name or _first(values, col, "gene_name")
        tx.tags.update(values(col, "tag"))


def _read_gtf(p: Path, choice: TranscriptChoice) -> list[Transcript]:
    st = _read_features(p)
    chosen = _choose([(tid, tx) for tid, tx in st.txs.items() if tx.starts], choice)
    exons = [sorted(zip(tx.starts, tx.ends, strict=True)) for _, tx in chosen]
    # all exons in one pair of arrays; each transcript gets its slices (one array call, not 10^5)
    flat = np.array([e for ex in exons for e in ex], dtype=np.int64).reshape(-1, 2).T.copy()
    stops = np.cumsum([len(ex) for ex in exons]).tolist()  # where each transcript's exons end
    out: list[Transcript] = []
    for (tid, tx), ex, lo_k, hi_k in zip(chosen, exons, [0, *stops], stops, strict=False):
        lo, hi = tx.span or (ex[0][0], ex[-1][1])
        name = tx.gene_name or st.gene_names.get(tx.gene_id, "") or tx.gene_id or tid
        out.append(
            Transcript(
                name,
                tx.chrom,
                tx.strand,
                min(lo, ex[0][0]),
                max(hi, ex[-1][1]),
                flat[0, lo_k:hi_k],
                flat[1, lo_k:hi_k],
                transcript_id=tid,
                gene_id=tx.gene_id,
            )
        )
    rank = st.order
    out.sort(key=lambda t: (rank[t.chrom], t.start, t.name, t.transcript_id))
    return out


def _choose(units: list[tuple[str, _Tx]], choice: TranscriptChoice) -> list[tuple[str, _Tx]]:
    if choice == "all":
        return units
    if choice == "mane":
        return [(tid, tx) for tid, tx in units if "MANE_Select" in tx.tags]
    by_gene: dict[str, list[tuple[str, _Tx]]] = {}
    for tid, tx in units:
        by_gene.setdefault(tx.gene_id or tx.gene_name or tid, []).append((tid, tx))

    def rank(item: tuple[str, _Tx]) -> tuple[int, int, int, str]:
        tid, tx = item
        tagged = next((k for k, tag in enumerate(_PREFERRED) if any(t.startswith(tag) for t in tx.tags)), 9)
        exonic = sum(tx.ends) - sum(tx.starts)
        lo, hi = tx.span or (min(tx.starts), max(tx.ends))
        return (tagged, -exonic, -(hi - lo), tid)

    return [group[0] if len(group) == 1 else min(group, key=rank) for group in by_gene.values()]
