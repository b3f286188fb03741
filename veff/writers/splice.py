"""Outputs of gene-aware splice scoring: the annotated VCF (SpliceAI's or veff's style) and tables.

VCF, ``spliceai`` style (drop-in for SpliceAI 1.3.1's output): INFO key ``SpliceAI`` (or the
given key), SpliceAI's own header line, one entry per scored ALT x transcript, ALT-major,
``ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL`` with two decimals (Python's
``{:.2f}``, as SpliceAI formats them, ``-0.00`` included), ``.`` for every field of an MNV or
complex allele; no key at all on a record without entries (outside transcripts, skipped).
``VEFF_SPLICE_STATUS`` holds ``ALLELE|status`` per ALT so that no skip is silent.

VCF, ``veff`` style: INFO key ``<PREFIX>_SPLICE`` with the same ten fields, the scores as the
shortest text that reads back to the same float32, ``.`` where not scored;
``<PREFIX>_STATUS`` holds ``ALLELE|status`` per ALT.

Tables (``.tsv``, ``.tsv.gz`` BGZF, ``.parquet``): one row per record x ALT x transcript (one row
per ALT with an empty ``symbol`` where no transcript is scored), columns ``chrom pos id ref alt
symbol transcript status DS_AG DS_AL DS_DG DS_DL DP_AG DP_AL DP_DG DP_DL`` (scores float32,
positions integers; empty / null where not scored). Files appear under their name when complete.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import InputError, VeffWarning
from veff.scoring.splice import SPLICE_FIELDS
from veff.writers._atomic import AtomicOutput, AtomicPath
from veff.writers._floats import format_floats
from veff.writers._text import BLOCK_BYTES, TextSink
from veff.writers.vcf import VcfOutput, _header_text, add_info

__all__ = ["SPLICEAI_HEADER", "SpliceTable", "SpliceVcfWriter", "format_entry"]

SPLICEAI_DESCRIPTION = (
    "SpliceAIv1.3.1 variant annotation. These include delta scores (DS) and delta positions (DP) for "
    "acceptor gain (AG), acceptor loss (AL), donor gain (DG), and donor loss (DL). "
    "Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL"
)
VEFF_DESCRIPTION = (
    "veff splice delta scores, one entry per ALT and transcript. "
    "Format: ALLELE|SYMBOL|DS_AG|DS_AL|DS_DG|DS_DL|DP_AG|DP_AL|DP_DG|DP_DL"
)
SPLICEAI_HEADER = f'##INFO=<ID=SpliceAI,Number=.,Type=String,Description="{SPLICEAI_DESCRIPTION}">'
TABLE_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "symbol", "transcript", "status", *SPLICE_FIELDS)


def format_entry(
    alt: str, symbol: str, ds: np.ndarray | None, dp: np.ndarray | None, style: str = "spliceai"
) -> str:
    """One ``ALLELE|SYMBOL|DS x4|DP x4`` entry (``.`` fields when ``ds`` is None)."""
    if ds is None or dp is None:
        return "|".join([alt, symbol, *["."] * 8])
    if style == "spliceai":
        values = [f"{float(x):.2f}" for x in ds]
    else:
        values = format_floats(np.asarray(ds, dtype=np.float32))
    return "|".join([alt, symbol, *values, *map(str, dp.tolist())])


class SpliceVcfWriter:
    """Write every input record with the splice INFO key (and the status key) added.

    Parameters
    ----------
    template
        The cyvcf2 reader of the input (its header is copied).
    path
        Output ``.vcf``, ``.vcf.gz`` or ``.bcf``.
    style
        ``spliceai`` or ``veff``.
    key
        INFO key of the entries (``SpliceAI`` or ``<PREFIX>_SPLICE``).
    status_key
        INFO key of the statuses.
    header_lines
        Extra ``##key=value`` lines (veff version, command).
    """

    def __init__(
        self,
        template: Any,
        path: str | os.PathLike[str],
        *,
        style: str,
        key: str,
        status_key: str,
        header_lines: Sequence[str] = (),
    ) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            msg = f"{self.path}: output folder {self.path.parent} does not exist"
            raise InputError(msg)
        self.style, self.key, self.status_key = style, key, status_key
        desc = SPLICEAI_DESCRIPTION if style == "spliceai" else VEFF_DESCRIPTION
        status = "veff scoring status, one entry per ALT. Format: ALLELE|status"
        info = [
            f'##INFO=<ID={key},Number=.,Type=String,Description="{desc}">',
            f'##INFO=<ID={status_key},Number=.,Type=String,Description="{status}">',
        ]
        declared = {h.info().get("ID") for h in template.header_iter() if h.type == "INFO"}
        stale = {k for k in (key, status_key) if k in declared}
        if stale:
            where = getattr(template, "fname", None) or "the input VCF"
            warnings.warn(
                f"{where}: already has INFO {', '.join(sorted(stale))}; those entries are replaced",
                VeffWarning,
                stacklevel=2,
            )
        self._stale = frozenset(k.encode() for k in stale)
        self._out = VcfOutput(self.path, _header_text(template.raw_header, header_lines, info, stale))
        self._lines: list[bytes] = []
        self._pending = 0

    def write(self, record: Any, alts: Sequence[str], entries: list[str], statuses: Sequence[str]) -> None:
        """Annotate and write one record (its line, or its cyvcf2 record for BCF input)."""
        items = []
        if entries:
            items.append(f"{self.key}={','.join(entries)}")
        if statuses:
            items.append(
                self.status_key
                + "="
                + ",".join(f"{a}|{st}" for a, st in zip(alts or ["."], statuses, strict=True))
            )
        line = record if isinstance(record, bytes) else str(record).encode("utf-8", "surrogateescape")
        line = add_info(line, ";".join(items).encode("utf-8", "surrogateescape"), self._stale)
        self._lines.append(line)
        self._pending += len(line)
        if self._pending >= BLOCK_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            self._out.write(b"".join(self._lines))
            self._lines.clear()
            self._pending = 0

    def finish(self) -> None:
        """Complete (compress, index) the file under its temporary name."""
        self._flush()
        self._out.finish()

    def commit(self) -> None:
        """Move the finished file into place."""
        self._out.commit()

    def abort(self) -> None:
        """Drop the partial output."""
        self._lines.clear()
        self._out.abort()


class SpliceTable(AtomicOutput):
    """Stream splice rows to ``.tsv``, ``.tsv.gz`` or ``.parquet``.

    Parameters
    ----------
    path
        The table file; the suffix picks the format.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        name = self.path.name.lower()
        if name.endswith(".parquet"):
            self.format = "parquet"
        elif name.endswith((".tsv", ".tsv.gz", ".tsv.bgz")):
            self.format = "tsv"
        else:
            msg = f"{self.path}: splice tables are .tsv, .tsv.gz or .parquet"
            raise InputError(msg)
        if not self.path.parent.is_dir():
            msg = f"{self.path}: output folder {self.path.parent} does not exist"
            raise InputError(msg)
        self._atomic = AtomicPath(self.path)
        self._sink: TextSink | None = None
        self._parquet: Any = None
        if self.format == "tsv":
            gz = name.endswith((".gz", ".bgz"))
            self._sink = TextSink(self._atomic.tmp, "bgzf" if gz else "none")
            self._sink.write_text("\t".join(TABLE_COLUMNS) + "\n")

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        """Append rows of :data:`TABLE_COLUMNS` values (None where empty)."""
        if not rows:
            return
        if self._sink is not None:
            text = []
            for row in rows:
                cells = []
                for k, x in enumerate(row):
                    if x is None:
                        cells.append("")
                    elif 8 <= k < 12:
                        cells.append(format_floats(np.array([x], np.float32))[0])
                    else:
                        cells.append(str(x))
                text.append("\t".join(cells))
            self._sink.write_text("\n".join(text) + "\n")
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _schema()
        cols = list(zip(*rows, strict=True))
        arrays = [pa.array(list(c), type=f.type) for c, f in zip(cols, schema, strict=True)]
        batch = pa.table(arrays, schema=schema)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(str(self._atomic.tmp), schema)
        self._parquet.write_table(batch)

    def _finish(self) -> None:
        if self._sink is not None:
            self._sink.close()
        elif self._parquet is None:
            import pyarrow.parquet as pq

            pq.write_table(_schema().empty_table(), str(self._atomic.tmp))
        else:
            self._parquet.close()


def _schema() -> Any:
    import pyarrow as pa

    types = [pa.string(), pa.int64(), *[pa.string()] * 6, *[pa.float32()] * 4, *[pa.int64()] * 4]
    return pa.schema(list(zip(TABLE_COLUMNS, types, strict=True)))
