"""The in-memory output of ``score_variants(..., return_predictions=True)``: one DataFrame per score."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from veff.writers._atomic import AtomicPath
from veff.writers.sink import ScoredChunk

if TYPE_CHECKING:  # pandas is imported where frames are made (not at start-up)
    import pandas as pd

__all__ = ["PredictionCollector"]


class PredictionCollector:
    """Collect the scored rows of a run in memory (a :class:`~veff.writers.sink.PartSink` with no file).

    Parameters
    ----------
    scores
        Score names, in order.
    labels
        Labels of the columns kept (T' of them).
    columns
        Indices of the kept columns among the values a chunk carries; None: all.
    part
        A shard of a sharded run: also write what was collected to this part file (pickled keys
        and values, read back by :meth:`append_part`) when finished.
    tag
        Temporary-name tag of the part file.
    """

    part_key = "pred"

    def __init__(
        self,
        scores: Sequence[str],
        labels: Sequence[str],
        columns: Sequence[int] | None,
        *,
        part: str | os.PathLike[str] | None = None,
        tag: str | None = None,
    ) -> None:
        self.labels = list(labels)
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.values: dict[str, list[np.ndarray]] = {s: [] for s in scores}
        self.keys: list[str] = []
        self._part = None if part is None else AtomicPath(part, tag=tag)
        self._committed = False

    @property
    def rows_written(self) -> int:
        """Rows collected so far."""
        return len(self.keys)

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Keep the values and keys (``chrom:pos:ref:alt[:feature]``) of the chunk's scored rows."""
        n_rows = chunk.n_rows
        if not n_rows:
            return
        for name, kept in self.values.items():
            values = chunk.values[name].reshape(n_rows, -1)
            kept.append(values if self.columns is None else values[:, self.columns])
        variants = chunk.windows.variants
        self.keys.extend(
            variants[r.record].key(variants[r.record].alts[r.alt], r.feature) for r in chunk.row_keys()
        )

    def append_part(self, path: str | os.PathLike[str], rows: int = 0) -> None:
        """Add the rows of a shard's part file."""
        with open(path, "rb") as fh:
            keys, values = pickle.load(fh)
        for name, arr in values.items():
            if len(arr):
                self.values[name].append(arr)
        self.keys.extend(keys)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Per score, a DataFrame of shape (n_rows, T'), index ``variant``, columns the labels."""
        import pandas as pd

        return {
            name: pd.DataFrame(a, index=self._index(), columns=self.labels)
            for name, a in self._arrays().items()
        }

    def _index(self) -> pd.Index:
        import pandas as pd

        return pd.Index(self.keys, name="variant")

    def _arrays(self) -> dict[str, np.ndarray]:
        width = len(self.labels)
        return {
            name: np.concatenate(arrs) if arrs else np.empty((0, width), np.float32)
            for name, arrs in self.values.items()
        }

    def finish(self) -> None:
        """Write the part file of a shard (nothing to complete otherwise)."""
        if self._part is not None:
            with open(self._part.tmp, "wb") as fh:
                pickle.dump((self.keys, self._arrays()), fh, protocol=pickle.HIGHEST_PROTOCOL)

    def commit(self) -> None:
        """Move the part file of a shard into place."""
        if self._part is not None:
            self._part.commit()
        self._committed = True

    def abort(self) -> None:
        """Drop what was collected (and a shard's unfinished part file)."""
        self.values = {name: [] for name in self.values}
        self.keys = []
        if self._part is not None and not self._committed:
            Path(self._part.tmp).unlink(missing_ok=True)
