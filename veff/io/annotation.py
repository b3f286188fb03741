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

import gzip
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from veff.errors import InputError
from veff.io.fasta import contig_aliases

__all__ = ["GeneAnnotation", "Transcript", "TranscriptChoice", "read_annotation"]

TranscriptChoice = Literal["canonical", "mane", "all"]
# tags that make a transcript a gene's canonical one, best first (prefixes: appris_principal_1..5)
_PREFERRED = ("Ensembl_canonical", "MANE_Select", "appris_principal", "CCDS", "basic")
_TABLE_HEADER = ("#NAME", "CHROM", "STRAND", "TX_START", "TX_END", "EXON_START", "EXON_END")
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
    boundaries: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # SpliceAI's exon boundaries, 1-based: first base of every exon and last base of every exon
        bounds = np.union1d(self.exon_starts + 1, self.exon_ends).astype(np.int64)
        object.__setattr__(self, "boundaries", bounds)

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
    with path.open("rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        with gzip.open(path, "rt", encoding="utf-8") as gz:
            yield from gz
    else:
        with path.open(encoding="utf-8") as fh2:
            yield from fh2


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
    try:
        first = next((ln for ln in _open_text(p) if ln.strip() and not ln.startswith("##")), "")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        msg = f"{p}: cannot read the annotation ({exc})"
        raise InputError(msg) from exc
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


_GTF_ATTR = re.compile(r'\s*([^\s";]+)\s+"?([^";]*)"?\s*;?')


def _attributes(text: str, gff3: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if gff3:
        from urllib.parse import unquote

        for item in text.strip().strip(";").split(";"):
            if "=" in item:
                k, v = item.split("=", 1)
                out.setdefault(k.strip(), []).extend(unquote(x) for x in v.split(","))
        return out
    for m in _GTF_ATTR.finditer(text):
        out.setdefault(m.group(1), []).append(m.group(2))
    return out


@dataclass
class _Tx:
    chrom: str
    strand: str
    gene_id: str = ""
    gene_name: str = ""
    tags: set[str] = field(default_factory=set)
    span: tuple[int, int] | None = None
    exons: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class _GtfState:
    txs: dict[str, _Tx] = field(default_factory=dict)
    gene_names: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # contigs in order of first appearance
    gff3: bool | None = None


def _first(attrs: dict[str, list[str]], *keys: str) -> str:
    return next((attrs[k][0] for k in keys if attrs.get(k)), "")


def _gtf_line(st: _GtfState, cols: list[str], where: str) -> None:
    """Add one GTF/GFF3 feature line to ``st``."""
    if len(cols) != 9:
        msg = f"{where}: expected 9 tab-separated GTF/GFF3 columns, got {len(cols)}"
        raise InputError(msg)
    if st.gff3 is None:
        st.gff3 = "=" in cols[8] and '"' not in cols[8]
    chrom, kind, strand = cols[0], cols[2].lower(), cols[6]
    if kind not in _TX_TYPES and kind not in ("exon", "gene"):
        return
    try:
        start, end = int(cols[3]) - 1, int(cols[4])
    except ValueError as exc:
        msg = f"{where}: start and end (columns 4 and 5) must be integers"
        raise InputError(msg) from exc
    attrs = _attributes(cols[8], st.gff3)
    if kind == "gene":
        gid, gname = _first(attrs, "ID", "gene_id"), _first(attrs, "gene_name", "Name")
        if gid and gname:
            st.gene_names[gid] = gname
        return
    if strand not in ("+", "-"):
        return
    if chrom not in st.order:
        st.order.append(chrom)
    id_key = ("Parent" if kind == "exon" else "ID") if st.gff3 else "transcript_id"
    ids = attrs.get(id_key, [])
    if not ids and kind == "exon":
        msg = f"{where}: exon without a {id_key} attribute"
        raise InputError(msg)
    for tid in ids:
        tx = st.txs.setdefault(tid, _Tx(chrom, strand))
        if kind == "exon":
            tx.exons.append((start, end))
            tx.gene_id = tx.gene_id or _first(attrs, "gene_id")
        else:
            tx.span = (start, end)
            tx.gene_id = _first(attrs, "gene_id", "Parent")
            tx.gene_name = _first(attrs, "gene_name", "Name")
        tx.gene_name = tx.gene_name or _first(attrs, "gene_name")
        tx.tags.update(attrs.get("tag", []))


def _read_gtf(p: Path, choice: TranscriptChoice) -> list[Transcript]:
    st = _GtfState()
    for n, line in enumerate(_open_text(p), 1):
        if line.startswith("#") or not line.strip():
            if line.startswith("##gff-version"):
                st.gff3 = True
            continue
        _gtf_line(st, line.rstrip("\r\n").split("\t"), f"{p}:{n}")
    chosen = _choose([(tid, tx) for tid, tx in st.txs.items() if tx.exons], choice)
    out: list[Transcript] = []
    for tid, tx in chosen:
        exons = sorted(tx.exons)
        lo, hi = tx.span or (exons[0][0], exons[-1][1])
        name = tx.gene_name or st.gene_names.get(tx.gene_id, "") or tx.gene_id or tid
        out.append(
            Transcript(
                name,
                tx.chrom,
                tx.strand,
                min(lo, exons[0][0]),
                max(hi, exons[-1][1]),
                np.array([e[0] for e in exons], dtype=np.int64),
                np.array([e[1] for e in exons], dtype=np.int64),
                transcript_id=tid,
                gene_id=tx.gene_id,
            )
        )
    rank = {c: k for k, c in enumerate(st.order)}
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
        exonic = sum(e - s for s, e in tx.exons)
        lo, hi = tx.span or (min(s for s, _ in tx.exons), max(e for _, e in tx.exons))
        return (tagged, -exonic, -(hi - lo), tid)

    return [min(group, key=rank) for group in by_gene.values()]
