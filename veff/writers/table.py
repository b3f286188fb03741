"""Score tables: one row per (VCF record, ALT allele), streamed to TSV, Parquet or HDF5.

The file name picks the format: ``.tsv``, ``.tsv.gz``, ``.parquet`` (needs pyarrow) or
``.h5``/``.hdf5``. Every ALT of every record gets a row, scored or not (a record without ALT gives
one row with ``alt`` ``.``), in input order. Rows are written chunk by chunk as the run streams and
the file appears under its name only when the run succeeds.

Columns (TSV and Parquet)
-------------------------
``chrom``, ``pos``, ``id``, ``ref``, ``alt``
    The record as in the input VCF (``pos`` 1-based, ``ref`` upper case, ``alt`` as written).
``feature``
    Only in a table whose rows carry features (a per-feature score, :class:`veff.types.RowKey`):
    the row's feature (``""`` for an ALT with none); an ALT then has one row per feature.
``norm_pos``, ``norm_ref``, ``norm_alt``
    The allele after normalisation (trimmed, left-aligned), only where that changed it; else empty
    (TSV) or null (Parquet).
``status``
    Why the ALT was or was not scored (:class:`veff.Status`).
``<score>/<label>``
    float32, one column per (score, model output), scores in the order asked, outputs in model
    order, e.g. ``diff/task1``. NaN (an empty field in TSV) where the ALT was not scored.
``<score>_value_pctl``
    float32, one column per score, after all ``<score>/<label>`` columns, only in runs with a
    calibration (see :mod:`veff.scoring.extras`): one value per ALT, NaN where not scored.

TSV files have one header line and no comments; floats are the shortest text that reads back to
the same float32; ``.tsv.gz`` is BGZF (gzip that tabix can index, without time stamps). Parquet files
hold row groups of a fixed number of rows (set by the number of columns, the last one shorter);
the schema metadata key ``veff`` is JSON ``{"format": "veff-scores", "format_version": "1",
"scores": [...], "labels": [...], "veff_version": ...}``.

The layout of every file depends only on its rows, never on how the run cut them into chunks:
Parquet and HDF5 writers collect rows into blocks of a fixed size before writing. So the parts of a
sharded run (:mod:`veff.distributed.driver`, written by :func:`open_table_part`) merge into the same bytes
as a run in one process.

HDF5 layout (``format="veff-scores"``, ``format_version="1"``)
-------------------------------------------------------------
::

    /                      attrs: format, format_version, veff_version, scores (names, in order)
    /labels                (T,)   str      model output labels
    /scores/<score>        (N, T) float32  NaN where the ALT was not scored
    /per_alt/<name>        (N,)   float32  one value per ALT (``<score>_value_pctl``), names in
                                           the attribute ``per_alt``; only when the run has them
    /variants/key          (N,)   str      chrom:pos:ref:alt (chrom:pos:ref:alt:feature with a feature)
    /variants/chrom, id, ref, alt, status, norm_ref, norm_alt
                           (N,)   str      norm_ref / norm_alt are "" where unchanged
    /variants/pos          (N,)   int64    1-based
    /variants/norm_pos     (N,)   int64    0 where normalisation did not change the allele
    /variants/feature      (N,)   str      only when rows carry features

All datasets are chunked, gzip-compressed and grow along axis 0 as chunks are appended.

This module holds what the formats share (:class:`TableChunk`, :class:`TableWriter`, the part files
of Parquet and HDF5 tables, the choice of format); the writer and reader of each format are in
``_table_tsv``, ``_table_parquet`` and ``_table_h5``, imported when a table of that format is
opened.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from veff.errors import InputError
from veff.writers._atomic import AtomicOutput, AtomicPath
from veff.writers.sink import ScoredChunk

if TYPE_CHECKING:
    from veff.variants.windows import WindowSet

__all__ = [
    "FORMAT_VERSION",
    "FEATURE",
    "META_COLUMNS",
    "TableChunk",
    "TableData",
    "TableFormat",
    "TableWriter",
    "meta_columns",
    "open_table",
    "open_table_part",
    "read_table",
    "table_format",
]

TableFormat = Literal["tsv", "tsv.gz", "parquet", "h5"]
FORMAT = "veff-scores"
FORMAT_VERSION = "1"
META_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "norm_pos", "norm_ref", "norm_alt", "status")
STR_COLUMNS = ("chrom", "id", "ref", "alt", "norm_ref", "norm_alt", "status")
FEATURE = "feature"  # the column of a table whose rows carry features (after ``alt``)
_SUFFIXES: dict[str, TableFormat] = {
    ".tsv": "tsv",
    ".tsv.gz": "tsv.gz",
    ".parquet": "parquet",
    ".h5": "h5",
    ".hdf5": "h5",
}


def meta_columns(features: bool) -> tuple[str, ...]:
    """The columns before the values: :data:`META_COLUMNS`, with ``feature`` after ``alt`` when ``features``.

    Examples
    --------
    >>> meta_columns(True)[:6]
    ('chrom', 'pos', 'id', 'ref', 'alt', 'feature')
    """
    if not features:
        return META_COLUMNS
    k = META_COLUMNS.index("alt") + 1
    return (*META_COLUMNS[:k], FEATURE, *META_COLUMNS[k:])


def table_format(path: str | os.PathLike[str]) -> TableFormat:
    """Return the table format named by the suffix of ``path``.

    Examples
    --------
    >>> table_format("out/scores.tsv.gz")
    'tsv.gz'
    """
    name = Path(path).name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    msg = f"{path}: unknown table format; use a name ending in {', '.join(_SUFFIXES)}"
    raise InputError(msg)


@dataclass
class TableChunk:
    """Rows of a score table for one chunk of records (see the module docstring).

    Attributes
    ----------
    chrom, id, ref, alt, status
        One str per row.
    pos
        int64, shape (n,): 1-based positions.
    norm_pos
        int64, shape (n,): normalised position, 0 where unchanged.
    norm_ref, norm_alt
        Normalised alleles, ``""`` where unchanged.
    values
        Per score, float32 of shape (n, T); NaN where not scored.
    feature
        The feature of each row (``""`` where none), or None when no row has one.
    per_alt
        Per one-value-per-ALT column, float32 of shape (n,); NaN where not scored.
    """

    chrom: list[str]
    pos: np.ndarray
    id: list[str]
    ref: list[str]
    alt: list[str]
    norm_pos: np.ndarray
    norm_ref: list[str]
    norm_alt: list[str]
    status: list[str]
    values: dict[str, np.ndarray]
    feature: list[str] | None = None
    per_alt: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.chrom)

    @property
    def features(self) -> list[str]:
        """The feature of each row (``""`` for every row when there are none)."""
        return self.feature if self.feature is not None else [""] * len(self.chrom)

    @property
    def key(self) -> list[str]:
        """Row keys ``chrom:pos:ref:alt`` (``chrom:pos:ref:alt:feature`` for a row with a feature)."""
        keys = [
            f"{c}:{p}:{r}:{a}"
            for c, p, r, a in zip(self.chrom, self.pos.tolist(), self.ref, self.alt, strict=True)
        ]
        if self.feature is None:
            return keys
        return [f"{k}:{f}" if f else k for k, f in zip(keys, self.feature, strict=True)]

    @classmethod
    def from_windows(
        cls,
        ws: WindowSet,
        values: dict[str, np.ndarray],
        n_labels: int,
        *,
        slots: np.ndarray | None = None,
        features: Sequence[str] | None = None,
        per_alt: dict[str, np.ndarray] | None = None,
    ) -> TableChunk:
        """Lay out the scores of a chunk as one row per (record, ALT), or per (record, ALT, feature).

        Parameters
        ----------
        ws
            The chunk's windows (records, statuses, scored ALTs, normalised alleles).
        values
            Per score, shape (n_alt, T) for the scored ALTs in ``ws.alt_slot`` order ((0, T) when
            nothing was scored: every row then gets NaN values and its status).
        n_labels
            T, the number of model outputs.
        slots, features
            The rows of ``values`` when they are not one per scored ALT (see
            :class:`~veff.writers.sink.ScoredChunk`): an ALT with several rows gets a table row for
            each, with its feature; an ALT without any gets one row, feature ``""``.
        per_alt
            One value per row of ``values`` for each one-value-per-ALT column, shape (n_alt,).
        """
        if slots is not None or features is not None:
            rows = cls._from_rows(ws, values, n_labels, ws.alt_slot if slots is None else slots, features)
            if per_alt:
                spread = cls._from_rows(
                    ws,
                    {k: v[:, None] for k, v in per_alt.items()},
                    1,
                    ws.alt_slot if slots is None else slots,
                    features,
                )
                rows.per_alt = {k: v[:, 0] for k, v in spread.values.items()}
            return rows
        chrom: list[str] = []
        ids: list[str] = []
        ref: list[str] = []
        alt: list[str] = []
        status: list[str] = []
        norm_ref: list[str] = []
        norm_alt: list[str] = []
        pos: list[int] = []
        norm_pos: list[int] = []
        offsets: list[int] = []
        for i, (v, sts) in enumerate(zip(ws.variants, ws.statuses, strict=True)):
            offsets.append(len(chrom))
            for a, st in enumerate(sts):
                chrom.append(v.chrom)
                pos.append(v.pos)
                ids.append(v.id)
                ref.append(v.ref)
                alt.append(v.alts[a] if a < len(v.alts) else ".")
                status.append(str(st))
                npos, nref, nalt = ws.normalized.get((i, a), (0, "", ""))
                norm_pos.append(npos)
                norm_ref.append(nref)
                norm_alt.append(nalt)
        rows = np.array(offsets, dtype=np.int64)[ws.alt_slot[:, 0]] + ws.alt_slot[:, 1]
        full = {}
        for name, arr in values.items():
            vals = np.asarray(arr, dtype=np.float32).reshape(len(rows), -1 if len(rows) else n_labels)
            if vals.shape[1] != n_labels:
                msg = f"score {name!r} gave {vals.shape[1]} values per ALT for {n_labels} model outputs"
                raise InputError(msg)
            out = np.full((len(chrom), n_labels), np.nan, dtype=np.float32)
            out[rows] = vals
            full[name] = out
        alt_cols = {}
        for name, arr in (per_alt or {}).items():
            col = np.full(len(chrom), np.nan, dtype=np.float32)
            col[rows] = np.asarray(arr, dtype=np.float32).reshape(len(rows))
            alt_cols[name] = col
        return cls(
            chrom,
            np.array(pos, dtype=np.int64),
            ids,
            ref,
            alt,
            np.array(norm_pos, dtype=np.int64),
            norm_ref,
            norm_alt,
            status,
            full,
            per_alt=alt_cols,
        )

    @classmethod
    def _from_rows(
        cls,
        ws: WindowSet,
        values: dict[str, np.ndarray],
        n_labels: int,
        slots: np.ndarray,
        features: Sequence[str] | None,
    ) -> TableChunk:
        by_alt: dict[tuple[int, int], list[int]] = {}
        for k, (i, a) in enumerate(slots.tolist()):
            by_alt.setdefault((i, a), []).append(k)
        base = cls.from_windows(ws, {}, n_labels)  # one row per (record, ALT), no values
        take: list[int] = []  # row of ``base`` of each output row
        src: list[int] = []  # row of ``values`` of each output row, -1: not scored
        offset = 0
        for i, (v, sts) in enumerate(zip(ws.variants, ws.statuses, strict=True)):
            for a in range(len(sts)):
                ks = by_alt.get((i, a), [-1]) if a < len(v.alts) else [-1]
                take.extend([offset + a] * len(ks))
                src.extend(ks)
            offset += len(sts)
        pick = np.array(take, dtype=np.int64)
        rows = base.rows(pick)
        scored = np.array(src, dtype=np.int64)
        have = scored >= 0
        full = {}
        for name, arr in values.items():
            vals = np.asarray(arr, dtype=np.float32).reshape(len(slots), -1 if len(slots) else n_labels)
            if vals.shape[1] != n_labels:
                msg = f"score {name!r} gave {vals.shape[1]} values per row for {n_labels} model outputs"
                raise InputError(msg)
            out = np.full((len(pick), n_labels), np.nan, dtype=np.float32)
            out[have] = vals[scored[have]]
            full[name] = out
        rows.values = full
        feats = list(features) if features is not None else [""] * len(slots)
        rows.feature = [feats[k] if k >= 0 else "" for k in src]
        return rows

    def rows(self, index: np.ndarray) -> TableChunk:
        """The rows at ``index`` (int array), in its order."""
        idx = index.tolist()

        def pick(col: list[str]) -> list[str]:
            return [col[k] for k in idx]

        return TableChunk(
            pick(self.chrom),
            self.pos[index],
            pick(self.id),
            pick(self.ref),
            pick(self.alt),
            self.norm_pos[index],
            pick(self.norm_ref),
            pick(self.norm_alt),
            pick(self.status),
            {s: v[index] for s, v in self.values.items()},
            None if self.feature is None else pick(self.feature),
            {s: v[index] for s, v in self.per_alt.items()},
        )

    def slice(self, lo: int, hi: int) -> TableChunk:
        """Rows ``lo:hi``."""
        return TableChunk(
            self.chrom[lo:hi],
            self.pos[lo:hi],
            self.id[lo:hi],
            self.ref[lo:hi],
            self.alt[lo:hi],
            self.norm_pos[lo:hi],
            self.norm_ref[lo:hi],
            self.norm_alt[lo:hi],
            self.status[lo:hi],
            {s: v[lo:hi] for s, v in self.values.items()},
            None if self.feature is None else self.feature[lo:hi],
            {s: v[lo:hi] for s, v in self.per_alt.items()},
        )

    @classmethod
    def concat(cls, chunks: Sequence[TableChunk]) -> TableChunk:
        """The rows of ``chunks``, in order (at least one chunk)."""
        if len(chunks) == 1:
            return chunks[0]

        def strings(name: str) -> list[str]:
            return [x for c in chunks for x in getattr(c, name)]

        return cls(
            strings("chrom"),
            np.concatenate([c.pos for c in chunks]),
            strings("id"),
            strings("ref"),
            strings("alt"),
            np.concatenate([c.norm_pos for c in chunks]),
            strings("norm_ref"),
            strings("norm_alt"),
            strings("status"),
            {s: np.concatenate([c.values[s] for c in chunks]) for s in chunks[0].values},
            None if all(c.feature is None for c in chunks) else [f for c in chunks for f in c.features],
            {s: np.concatenate([c.per_alt[s] for c in chunks]) for s in chunks[0].per_alt},
        )

    @classmethod
    def empty(cls, scores: Sequence[str], n_labels: int, per_alt: Sequence[str] = ()) -> TableChunk:
        """A chunk without rows (fixes dataset shapes before the first rows arrive)."""
        none = np.empty(0, dtype=np.int64)
        return cls(
            [],
            none,
            [],
            [],
            [],
            none,
            [],
            [],
            [],
            {s: np.empty((0, n_labels), np.float32) for s in scores},
            per_alt={s: np.empty(0, np.float32) for s in per_alt},
        )


class TableWriter(AtomicOutput):
    """Stream :class:`TableChunk` rows to a table file, atomically (use :func:`open_table`).

    Parameters
    ----------
    path
        Output file; it appears only on :meth:`close`.
    scores
        Score names, in column order.
    labels
        Model output labels (T of them).
    features
        Rows carry a feature (a per-feature score): the table gets a ``feature`` column after
        ``alt`` (:func:`meta_columns`); without, it has none and rows must not carry one.
    tag
        Temporary-name tag (see :class:`~veff.writers._atomic.AtomicPath`).
    per_alt
        Names of the one-value-per-ALT columns (after the ``<score>/<label>`` ones).
    """

    #: formats whose layout follows the write calls collect rows into blocks of this many rows
    block_rows: int | None = None
    #: the name of its part file in a sharded run (:class:`~veff.writers.sink.PartSink`)
    part_key = "table"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        scores: Sequence[str],
        labels: Sequence[str],
        features: bool = False,
        tag: str | None = None,
        per_alt: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            msg = f"{self.path}: output folder {self.path.parent} does not exist"
            raise InputError(msg)
        self.scores = list(scores)
        self.labels = [str(x) for x in labels]
        self.per_alt = list(per_alt)
        self.value_columns = [f"{s}/{lab}" for s in self.scores for lab in self.labels] + self.per_alt
        self.features = features
        self.meta_columns = meta_columns(features)
        self.rows_written = 0
        self._atomic = AtomicPath(self.path, tag=tag)
        self._held: list[TableChunk] = []
        self._held_rows = 0
        from veff._version import __version__

        self.meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "scores": self.scores,
            "labels": self.labels,
            **({"per_alt": self.per_alt} if self.per_alt else {}),
            "veff_version": __version__,
        }
        self._open()

    def write(self, chunk: TableChunk) -> None:
        """Append the rows of one chunk."""
        if chunk.feature is not None and not self.features and any(chunk.feature):
            msg = f"{self.path}: rows carry features, but the table was opened without a feature column"
            raise ValueError(msg)
        self.rows_written += len(chunk)
        rows = self.block_rows
        if rows is None:
            self._write(chunk)
            return
        if not len(chunk):
            return
        self._held.append(chunk)
        self._held_rows += len(chunk)
        if self._held_rows < rows:
            return
        block = TableChunk.concat(self._held)
        lo = 0
        while len(block) - lo >= rows:
            self._write(block.slice(lo, lo + rows))
            lo += rows
        self._held = [block.slice(lo, len(block))] if lo < len(block) else []
        self._held_rows = len(block) - lo

    def append_part(self, path: str | os.PathLike[str], rows: int = 0) -> None:
        """Append the rows of a part file written by :func:`open_table_part` for this format.

        ``rows`` (the part's row count) keeps :attr:`rows_written` right for formats whose parts
        are copied as they are (TSV).
        """
        with open(path, "rb") as fh:
            while True:
                try:
                    chunk = pickle.load(fh)
                except EOFError:
                    return
                self.write(chunk)

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Append the rows of one scored chunk, every ALT with its status (a :class:`Sink` call)."""
        per_alt = {s: chunk.per_alt[s] for s in self.per_alt}
        if chunk.slots is None and chunk.features is None:
            rows = TableChunk.from_windows(chunk.windows, chunk.values, len(self.labels), per_alt=per_alt)
        else:
            rows = TableChunk.from_windows(
                chunk.windows,
                chunk.values,
                len(self.labels),
                slots=chunk.slots,
                features=chunk.features,
                per_alt=per_alt,
            )
        self.write(rows)

    def finish(self) -> None:
        """Write the rows still held and finish the file under its temporary name."""
        if self._held and not self._finished:
            self._write(TableChunk.concat(self._held))
            self._held, self._held_rows = [], 0
        super().finish()

    def _open(self) -> None:
        """Create the temporary file (and write what precedes the rows)."""
        raise NotImplementedError

    def _write(self, chunk: TableChunk) -> None:
        """Write the rows of ``chunk`` (blocks of :attr:`block_rows` rows where that is set)."""
        raise NotImplementedError


class _ChunkPart(TableWriter):
    """The chunks of a Parquet or HDF5 table, pickled one after another (a part of a sharded run)."""

    def _open(self) -> None:
        self._fh = open(self._atomic.tmp, "wb")  # noqa: SIM115  (closed in _finish)

    def _write(self, chunk: TableChunk) -> None:
        if len(chunk):
            pickle.dump(chunk, self._fh, protocol=pickle.HIGHEST_PROTOCOL)

    def _finish(self) -> None:
        self._fh.close()


def _implementation(fmt: TableFormat) -> tuple[type[TableWriter], Callable[[Path], TableData]]:
    """The writer and the reader of format ``fmt`` (their module loads on first use)."""
    if fmt == "parquet":
        from veff.writers._table_parquet import ParquetWriter, read_parquet

        return ParquetWriter, read_parquet
    if fmt == "h5":
        from veff.writers._table_h5 import Hdf5Writer, read_h5

        return Hdf5Writer, read_h5
    from veff.writers._table_tsv import TsvWriter, read_tsv

    return TsvWriter, read_tsv


def open_table(
    path: str | os.PathLike[str],
    *,
    scores: Sequence[str],
    labels: Sequence[str],
    features: bool = False,
    per_alt: Sequence[str] = (),
) -> TableWriter:
    """Open a streaming table writer for ``path`` (format by suffix, see :func:`table_format`)."""
    writer, _ = _implementation(table_format(path))
    return writer(path, scores=scores, labels=labels, features=features, per_alt=per_alt)


def open_table_part(
    path: str | os.PathLike[str],
    fmt: TableFormat,
    *,
    scores: Sequence[str],
    labels: Sequence[str],
    features: bool = False,
    tag: str | None = None,
    per_alt: Sequence[str] = (),
) -> TableWriter:
    """Open a writer of one part of a table in format ``fmt`` (a shard of a sharded run).

    The part holds the rows as the final writer takes them back with
    :meth:`TableWriter.append_part`: TSV row text (no header, uncompressed) for ``tsv`` and
    ``tsv.gz``, pickled :class:`TableChunk` objects for ``parquet`` and ``h5``.
    """
    cls: type[TableWriter] = _ChunkPart
    if fmt in ("tsv", "tsv.gz"):
        from veff.writers._table_tsv import TsvPart

        cls = TsvPart
    return cls(path, scores=scores, labels=labels, features=features, tag=tag, per_alt=per_alt)


@dataclass
class TableData:
    """A score table read back whole.

    Attributes
    ----------
    columns
        The :data:`META_COLUMNS` (and ``feature`` in a table whose rows carry features): str
        columns as lists (None where missing), ``pos`` int64, ``norm_pos`` a list of int or None.
    labels
        Model output labels (T).
    values
        Per score, float32 of shape (N, T).
    per_alt
        Per one-value-per-ALT column, float32 of shape (N,).
    """

    columns: dict[str, Any]
    labels: list[str]
    values: dict[str, np.ndarray]
    per_alt: dict[str, np.ndarray] = field(default_factory=dict)


def read_table(path: str | os.PathLike[str]) -> TableData:
    """Read a table written by :func:`open_table` (any of its formats)."""
    fmt = table_format(path)
    if not Path(path).is_file():
        msg = f"{path}: table not found"
        raise InputError(msg)
    _, reader = _implementation(fmt)
    data = reader(Path(path))
    for name in ("norm_ref", "norm_alt"):
        data.columns[name] = [x if x else None for x in data.columns[name]]
    data.columns["norm_pos"] = [int(x) if x and x == x else None for x in data.columns["norm_pos"]]
    return data


def split_value_columns(path: Path, columns: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Return (scores, labels, per-ALT columns) of ``score/label`` columns laid out score-major.

    Parameters
    ----------
    path
        The table (for error messages).
    columns
        All column names of the table, :data:`META_COLUMNS` included; the one-value-per-ALT
        columns (names without ``/``) come after the ``score/label`` ones.
    """
    missing = [c for c in META_COLUMNS if c not in columns]
    if missing:
        msg = f"{path}: not a veff score table (no column {missing[0]!r})"
        raise InputError(msg)
    meta = meta_columns(FEATURE in columns)
    rest = [c for c in columns if c not in meta]
    grid = [c for c in rest if "/" in c]
    per_alt = [c for c in rest if "/" not in c]
    pairs = [c.split("/", 1) for c in grid]
    scores = list(dict.fromkeys(s for s, _ in pairs))
    labels = [lab for s, lab in pairs if s == scores[0]] if scores else []
    if [f"{s}/{lab}" for s in scores for lab in labels] + per_alt != rest:
        msg = f"{path}: score columns are not <score>/<label> for the same labels per score"
        raise InputError(msg)
    return scores, labels, per_alt
