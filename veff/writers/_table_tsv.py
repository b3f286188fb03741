"""TSV score tables (``.tsv``, ``.tsv.gz``): the writer, its part files and the reader.

See :mod:`veff.writers.table` for the columns; open files with :func:`veff.writers.table.open_table`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from veff.writers._floats import format_float_rows
from veff.writers._text import TextSink
from veff.writers.table import (
    FEATURE,
    STR_COLUMNS,
    TableChunk,
    TableData,
    TableWriter,
    meta_columns,
    split_value_columns,
)

__all__ = ["TsvPart", "TsvWriter", "read_tsv"]

_TSV_VALUES_PER_BLOCK = 2**16


def _float_rows(values: np.ndarray) -> list[str]:
    """Tab-join each row of (n, T) floats; NaN becomes an empty field."""
    return format_float_rows(values, sep="\t", nan="")


class TsvWriter(TableWriter):
    """A TSV table: a header line, then one line per row; BGZF when the name ends in ``.gz``."""

    part = False

    def _open(self) -> None:
        tmp = self._atomic.tmp
        gz = tmp.name.endswith(".gz") and not self.part
        self._fh = TextSink(tmp, "bgzf" if gz else "none", append=self._atomic.stream)
        if not self.part:
            # a label's tabs and line breaks would cut the header line: they become spaces here
            names = [" ".join(c.replace("\t", " ").splitlines()) for c in self.value_columns]
            self._fh.write_text("\t".join([*self.meta_columns, *names]) + "\n")

    def append_part(self, path: str | os.PathLike[str], rows: int = 0) -> None:
        """Append the row text of a part file (see :meth:`TableWriter.append_part`)."""
        self._fh.append_file(path)
        self.rows_written += rows

    def _write(self, c: TableChunk) -> None:
        if not len(c):
            return
        npos = ["" if p == 0 else str(p) for p in c.norm_pos.tolist()]
        meta = [
            c.chrom,
            list(map(str, c.pos.tolist())),
            c.id,
            c.ref,
            c.alt,
            *([c.features] if self.features else []),
            npos,
            c.norm_ref,
            c.norm_alt,
            c.status,
        ]
        # format a block of rows at a time: one Python str per value would not fit for wide models
        step = max(1, _TSV_VALUES_PER_BLOCK // max(1, len(self.value_columns)))
        for lo in range(0, len(c), step):
            cols = [m[lo : lo + step] for m in meta]
            cols += [_float_rows(c.values[s][lo : lo + step]) for s in self.scores]
            cols += [_float_rows(c.per_alt[s][lo : lo + step, None]) for s in self.per_alt]
            self._fh.write_text("".join("\t".join(row) + "\n" for row in zip(*cols, strict=True)))

    def _finish(self) -> None:
        self._fh.close()


class TsvPart(TsvWriter):
    """Rows of a TSV table as text, no header, uncompressed (a part of a sharded run)."""

    part = True


def read_tsv(path: Path) -> TableData:
    """Read a TSV table (plain or BGZF) whole."""
    import pandas as pd

    head = pd.read_csv(path, sep="\t", nrows=0).columns.tolist()
    scores, labels, per_alt = split_value_columns(path, head)
    meta = meta_columns(FEATURE in head)
    vcols = [c for c in head if c not in meta]
    dtype: dict[str, Any] = dict.fromkeys((*STR_COLUMNS, FEATURE), str) | {"pos": np.int64, "norm_pos": str}
    dtype |= dict.fromkeys(vcols, np.float32)
    df = pd.read_csv(
        path, sep="\t", dtype=dtype, keep_default_na=False, na_values={c: ["", "nan", "NaN"] for c in vcols}
    )
    cols: dict[str, Any] = {c: df[c].tolist() for c in meta if c != "pos"}
    cols["pos"] = df["pos"].to_numpy(np.int64)
    cols["norm_pos"] = [int(x) if x else None for x in cols["norm_pos"]]
    width = len(labels)
    block = df[vcols].to_numpy(np.float32)
    values = {s: np.ascontiguousarray(block[:, k * width : (k + 1) * width]) for k, s in enumerate(scores)}
    grid = len(scores) * width
    alt_cols = {s: np.ascontiguousarray(block[:, grid + k]) for k, s in enumerate(per_alt)}
    return TableData(cols, labels, values, alt_cols)
