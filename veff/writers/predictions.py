"""The in-memory output of ``score_variants(..., return_predictions=True)``: one DataFrame per score."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from veff.writers.sink import ScoredChunk

__all__ = ["PredictionCollector"]


class PredictionCollector:
    """Collect the scored rows of a run in memory (a :class:`~veff.writers.sink.Sink` with no file).

    Parameters
    ----------
    scores
        Score names, in order.
    labels
        Labels of the columns kept (T' of them).
    columns
        Indices of the kept columns among the values a chunk carries; None: all.
    """

    def __init__(self, scores: Sequence[str], labels: Sequence[str], columns: Sequence[int] | None) -> None:
        self.labels = list(labels)
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.values: dict[str, list[np.ndarray]] = {s: [] for s in scores}
        self.keys: list[str] = []

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Keep the values and keys (``chrom:pos:ref:alt``) of the chunk's scored rows."""
        n_rows = chunk.n_rows
        if not n_rows:
            return
        for name, kept in self.values.items():
            values = chunk.values[name].reshape(n_rows, -1)
            kept.append(values if self.columns is None else values[:, self.columns])
        ws = chunk.windows
        self.keys.extend(ws.variants[i].key(ws.variants[i].alts[a]) for i, a in ws.alt_slot)

    def append(self, keys: Sequence[str], values: dict[str, np.ndarray]) -> None:
        """Add rows collected elsewhere (the part of a shard): keys and per score (n, T') values."""
        for name, arr in values.items():
            if len(arr):
                self.values[name].append(arr)
        self.keys.extend(keys)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Per score, a DataFrame of shape (n_rows, T'), index ``variant``, columns the labels."""
        return {
            name: pd.DataFrame(
                np.concatenate(arrs) if arrs else np.empty((0, len(self.labels)), np.float32),
                index=pd.Index(self.keys, name="variant"),
                columns=self.labels,
            )
            for name, arrs in self.values.items()
        }

    def finish(self) -> None:
        """Nothing to complete."""

    def commit(self) -> None:
        """Nothing to move."""

    def abort(self) -> None:
        """Drop what was collected."""
        self.values = {name: [] for name in self.values}
        self.keys = []
