"""HDF5 score tables (``.h5``, ``.hdf5``): the writer and the reader.

See :mod:`veff.writers.table` for the layout; open files with :func:`veff.writers.table.open_table`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from veff.writers._h5 import H5Appender, check_format, read_strings, table_chunk_rows
from veff.writers.table import (
    FEATURE,
    FORMAT,
    FORMAT_VERSION,
    STR_COLUMNS,
    TableChunk,
    TableData,
    TableWriter,
)

__all__ = ["Hdf5Writer", "read_h5"]


class Hdf5Writer(TableWriter):
    """An HDF5 table: resizable datasets appended in blocks of a fixed number of rows."""

    def _open(self) -> None:
        import h5py

        self._h5 = h5py.File(self._atomic.tmp, "w")
        for k in ("format", "format_version", "veff_version"):
            self._h5.attrs[k] = self.meta[k]
        self._h5.attrs["scores"] = np.array(self.scores, dtype=h5py.string_dtype())
        if self.per_alt:
            self._h5.attrs["per_alt"] = np.array(self.per_alt, dtype=h5py.string_dtype())
        self._h5.create_dataset("labels", data=np.array(self.labels, dtype=object), dtype=h5py.string_dtype())
        self._app = H5Appender(self._h5)
        self._write(TableChunk.empty(self.scores, len(self.labels), self.per_alt))
        self.block_rows = table_chunk_rows(len(self.labels))

    def _write(self, c: TableChunk) -> None:
        app = self._app
        app.append("variants/key", c.key)
        for name in self.meta_columns:
            app.append(f"variants/{name}", c.features if name == FEATURE else getattr(c, name))
        for s in self.scores:
            app.append(f"scores/{s}", np.asarray(c.values[s], dtype=np.float32))
        for s in self.per_alt:
            app.append(f"per_alt/{s}", np.asarray(c.per_alt[s], dtype=np.float32))

    def _finish(self) -> None:
        self._h5.close()


def read_h5(path: Path) -> TableData:
    """Read an HDF5 table whole, checking its ``format`` and ``format_version`` attributes."""
    import h5py

    with h5py.File(path, "r") as h5:
        check_format(h5.attrs, path, FORMAT, FORMAT_VERSION, "veff score table")
        scores = [s.decode() if isinstance(s, bytes) else str(s) for s in h5.attrs["scores"]]
        labels = [str(x) for x in read_strings(h5["labels"])]
        var = h5["variants"]
        strings = (*STR_COLUMNS, FEATURE) if FEATURE in var else STR_COLUMNS
        cols: dict[str, Any] = {c: read_strings(var[c]).tolist() for c in strings}
        cols["pos"] = var["pos"][()].astype(np.int64)
        cols["norm_pos"] = var["norm_pos"][()].tolist()
        values = {s: h5["scores"][s][()].astype(np.float32) for s in scores}
        per_alt = [s.decode() if isinstance(s, bytes) else str(s) for s in h5.attrs.get("per_alt", [])]
        alt_cols = {s: h5["per_alt"][s][()].astype(np.float32) for s in per_alt}
    return TableData(cols, labels, values, alt_cols)
