"""Parquet score tables (``.parquet``, needs pyarrow): the writer and the reader.

See :mod:`veff.writers.table` for the columns, row groups and schema metadata; open files with
:func:`veff.writers.table.open_table`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from veff.writers.table import FEATURE, TableChunk, TableData, TableWriter, meta_columns, split_value_columns

__all__ = ["ParquetWriter", "read_parquet"]

_PARQUET_GROUP_BYTES = 16 * 2**20  # target size of a row group's values, uncompressed


class ParquetWriter(TableWriter):
    """A Parquet table: zstd-compressed row groups of a fixed number of rows (the last one shorter)."""

    def _open(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        fields = [
            pa.field(c, pa.int64() if c in ("pos", "norm_pos") else pa.string()) for c in self.meta_columns
        ]
        fields += [pa.field(c, pa.float32()) for c in self.value_columns]
        self._schema = pa.schema(fields, metadata={"veff": json.dumps(self.meta)})
        row_bytes = 4 * len(self.value_columns) + 64
        self.block_rows = int(max(1024, min(65536, _PARQUET_GROUP_BYTES // row_bytes)))
        self._pw: Any = pq.ParquetWriter(str(self._atomic.tmp), self._schema, compression="zstd")

    def _write(self, c: TableChunk) -> None:
        if not len(c):
            return
        pa = self._pa
        meta = {
            "chrom": c.chrom,
            "pos": c.pos,
            "id": c.id,
            "ref": c.ref,
            "alt": c.alt,
            "norm_pos": pa.array(c.norm_pos, pa.int64(), mask=c.norm_pos == 0),
            "norm_ref": [x or None for x in c.norm_ref],
            "norm_alt": [x or None for x in c.norm_alt],
            "status": c.status,
            FEATURE: c.features,
        }
        arrays = [meta[name] for name in self.meta_columns]
        for s in self.scores:
            arrays.extend(np.ascontiguousarray(c.values[s].T))
        arrays.extend(np.asarray(c.per_alt[s], np.float32) for s in self.per_alt)
        self._pw.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))

    def _finish(self) -> None:
        self._pw.close()


def read_parquet(path: Path) -> TableData:
    """Read a Parquet table whole."""
    import pyarrow.parquet as pq

    tab = pq.read_table(path)
    scores, labels, per_alt = split_value_columns(path, tab.column_names)
    cols: dict[str, Any] = {c: tab.column(c).to_pylist() for c in meta_columns(FEATURE in tab.column_names)}
    cols["pos"] = np.asarray(cols["pos"], dtype=np.int64)
    values = {
        s: np.stack([tab.column(f"{s}/{lab}").to_numpy().astype(np.float32) for lab in labels], axis=1)
        if labels
        else np.empty((tab.num_rows, 0), np.float32)
        for s in scores
    }
    alt_cols = {s: tab.column(s).to_numpy().astype(np.float32) for s in per_alt}
    return TableData(cols, labels, values, alt_cols)
