"""The :class:`Sink` protocol that every output of a run implements, and committing a run's sinks together.

A run hands each scored chunk to every sink (:meth:`Sink.write_scored`), in input order. When the
last chunk is written, :func:`commit_all` first finishes every sink (each completes its files
under temporary names: compression, indexes, trailing rows), and only when all of them are
complete renames them into place, so a failure anywhere (a table that cannot be written after the
VCF was complete, Ctrl-C while indexing) replaces none of the user's files. :func:`abort_all`
removes the temporary files of every sink after a failure, also when the abort of one sink itself
fails.

The renames are the commit point: each one is atomic, and they run one after the other, first to
last sink, once every file is complete; an error of the operating system between two renames in
the same folder is the only case that leaves a new file next to an old one.

A new output format is one module with a class that implements :class:`Sink` (see
docs/outputs.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from veff.types import RowKey
from veff.writers.targets import writing

if TYPE_CHECKING:
    from veff.variants.windows import WindowSet
    from veff.writers.table import TableFormat

__all__ = ["PartFiles", "PartSink", "ScoredChunk", "Sink", "abort_all", "commit_all"]

log = logging.getLogger("veff")


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk of records with the scores of its scored rows.

    A row is a :class:`~veff.types.RowKey` ``(record, ALT, feature)``. By default the rows are the
    chunk's scored ALTs, one each, with feature ``""`` (``windows.alt_slot``); a per-feature score
    (per gene, per transcript) gives ``slots`` and ``features``, several rows per ALT, which every
    sink writes as rows of their own (see docs/outputs.md, "Rows").

    Attributes
    ----------
    windows
        The chunk's records, statuses, normalised alleles and alt windows.
    values
        Per score (every score of the run, in order), float32 of shape (n_rows, T): one row per
        scored row and one column per model output (all of them; a sink that shows only some
        selects them itself). n_rows is 0 when the chunk has no scored row.
    slots
        int, shape (n_rows, 2): ``(record, ALT)`` of each row, grouped by record and ALT in input
        order; None: ``windows.alt_slot``.
    features
        The feature of each row (``""`` where none); None: ``""`` for every row.
    per_alt
        Columns with one value per row rather than per output (``<score>_value_pctl``, see
        :mod:`veff.scoring.extras`): float32 of shape (n_rows,) each.
    """

    windows: WindowSet
    values: dict[str, np.ndarray]
    slots: np.ndarray | None = None
    features: Sequence[str] | None = None
    per_alt: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def unscored(
        cls, windows: WindowSet, scores: Sequence[str], n_labels: int, per_alt: Sequence[str] = ()
    ) -> ScoredChunk:
        """A chunk of which nothing was scored (or no model ran): empty (0, T) values per score."""
        return cls(
            windows,
            {s: np.empty((0, n_labels), np.float32) for s in scores},
            np.empty((0, 2), np.int64),
            per_alt={s: np.empty(0, np.float32) for s in per_alt},
        )

    @property
    def row_slots(self) -> np.ndarray:
        """int, shape (n_rows, 2): ``(record, ALT)`` of each row."""
        return self.windows.alt_slot if self.slots is None else self.slots

    @property
    def n_rows(self) -> int:
        """Number of scored rows."""
        return len(self.row_slots)

    def row_keys(self) -> list[RowKey]:
        """The :class:`~veff.types.RowKey` of each row."""
        feats = self.features if self.features is not None else [""] * self.n_rows
        return [RowKey(i, a, f) for (i, a), f in zip(self.row_slots.tolist(), feats, strict=True)]

    def rows_by_alt(self) -> dict[tuple[int, int], list[int]]:
        """Row indices of each scored ``(record, ALT)``, in row order."""
        out: dict[tuple[int, int], list[int]] = {}
        for k, (i, a) in enumerate(self.row_slots.tolist()):
            out.setdefault((i, a), []).append(k)
        return out


@runtime_checkable
class Sink(Protocol):
    """An output of a run: written chunk by chunk, then finished and committed, or aborted.

    Methods are called in this order: :meth:`write_scored` for every chunk (possibly from a
    background thread, never from two threads at once), then :meth:`finish` and :meth:`commit`
    (both from the thread that runs the pipeline), or :meth:`abort` at any point after a failure.
    """

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Add the rows of one chunk."""
        ...

    def finish(self) -> None:
        """Complete every file of the output under temporary names; replace nothing yet."""
        ...

    def commit(self) -> None:
        """Move the finished files into place (called only after every sink of the run finished)."""
        ...

    def abort(self) -> None:
        """Remove the temporary files (a no-op after :meth:`commit`); may be called more than once."""
        ...


@runtime_checkable
class PartSink(Sink, Protocol):
    """A sink that a sharded run writes as one part file per shard and merges in shard order.

    A shard opens the sink on its part file (:class:`PartFiles`); the driver opens it on the
    output and appends each shard's part (:meth:`append_part`), so the output is byte for byte the
    output of a run in one process.

    Attributes
    ----------
    part_key
        The name of its part file (:meth:`PartFiles.path`): ``vcf``, ``table`` or ``pred``.
    rows_written
        Rows (VCF: records) written so far; a shard reports it for each of its parts.
    """

    part_key: str

    @property
    def rows_written(self) -> int:
        """Rows (records, for a VCF) written so far."""
        ...

    def append_part(self, path: str | os.PathLike[str], rows: int) -> None:
        """Append the part file of one shard (``rows`` rows) to this output."""
        ...


@dataclass(frozen=True)
class PartFiles:
    """Where one shard of a sharded run writes its parts (:mod:`veff.distributed`).

    Attributes
    ----------
    folder
        The run's folder of part files, shared by the driver and the workers.
    index
        The shard's index (parts are merged in index order).
    tag
        Temporary-name tag of this attempt (see :class:`~veff.writers._atomic.AtomicPath`).
    table_format
        The format of the run's table (its part file holds rows for that format), or None.
    """

    folder: Path
    index: int
    tag: str = ""
    table_format: TableFormat | None = None

    def path(self, key: str) -> Path:
        """The part file of the sink with :attr:`PartSink.part_key` ``key``."""
        base = self.folder / f"shard-{self.index:06d}"
        if key == "table":
            return Path(f"{base}.table.{self.table_format or 'tsv'}")
        return Path(f"{base}.{key}")


def commit_all(sinks: Sequence[Sink]) -> None:
    """Finish every sink, then move all their files into place; on failure abort every one.

    Sinks are finished in the order given (put the one that most often fails at the end first:
    the VCF, whose index needs sorted records).
    """
    try:
        for sink in sinks:
            with writing(getattr(sink, "path", None)):
                sink.finish()
        for sink in sinks:
            with writing(getattr(sink, "path", None)):
                sink.commit()
    except BaseException:
        abort_all(sinks)
        raise


def abort_all(sinks: Sequence[Sink]) -> None:
    """Abort every sink; a sink whose abort fails is logged and the others are still aborted."""
    for sink in sinks:
        try:
            sink.abort()
        except Exception as exc:  # the run's own error is the one to report
            log.debug("veff: aborting %s failed: %s", type(sink).__name__, exc)
