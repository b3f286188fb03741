"""Annotated VCF output (cyvcf2), in veff or kipoi-veff style.

veff style: one INFO tag per score, ``<PREFIX>_<SCORE>``, ``Number=A``, one entry per ALT,
entries separated by ``,``, each ``ALLELE|v1|...|vT`` (as VEP's CSQ and SpliceAI do). The header
Description ends with ``Format: ALLELE|<label1>|...|<labelT>``. ``<PREFIX>_STATUS`` holds
``ALLELE|status`` per ALT. An ALT without a score has ``.`` for every value. Numbers are the
shortest text that reads back to the same float32.

With ``aggregate="max_abs"`` (``--info-aggregate max_abs``, veff style only) each entry is
``ALLELE|value|label``: the output with the largest magnitude (first one on ties, NaN ignored) and
its label, ``ALLELE|.|.`` when not scored, ``ALLELE|nan|.`` when every output is NaN; the header
Description ends with ``Format: ALLELE|max_abs|label``.

kipoi style (``--info-style kipoi``): tags ``KV:<model>:<SCORE>``, values ``%.8f`` joined by
``|``, one ``,``-separated group per ALT, as kipoi-veff wrote them.

The file is written under a temporary name and renamed into place when complete; ``.vcf.gz``
outputs are bgzipped and tabix-indexed, ``.bcf`` outputs are BCF with a CSI index.

Every output is made the same way (:class:`VcfOutput`): the header text, then the text of each
record, as one byte stream, compressed block by block (:mod:`veff.writers._text`); BCF is converted
from that text when the stream is complete. A sharded run (:mod:`veff.distributed.driver`) writes the
record text of each shard to a part file (``part=True``) and streams the parts through the same
:class:`VcfOutput`, so its file is byte for byte the file of a run in one process.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veff.errors import InputError, VeffWarning
from veff.writers._atomic import AtomicPath
from veff.writers._floats import format_float_rows, format_floats
from veff.writers._text import BLOCK_BYTES, TextSink
from veff.writers.sink import ScoredChunk

__all__ = ["InfoAggregate", "InfoStyle", "VcfOutput", "VcfWriter", "format_floats", "info_tag"]

InfoStyle = Literal["veff", "kipoi"]
InfoAggregate = Literal["max_abs"]
MISSING = "."


def format_fixed(values: np.ndarray) -> list[str]:
    """Format values as kipoi-veff did (``%.8f``)."""
    return [f"{v:.8f}" for v in np.asarray(values, dtype=np.float64).ravel().tolist()]


def info_tag(prefix: str, score: str, style: InfoStyle = "veff") -> str:
    """Return the INFO key of ``score``."""
    if style == "kipoi":
        return f"{prefix}:{score.upper()}"
    return f"{prefix}_{score.upper()}"


@dataclass(frozen=True)
class _Tag:
    key: str
    description: str


def _mode(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".bcf"):
        return "wb"
    if name.endswith((".vcf.gz", ".vcf.bgz", ".gz")):
        return "wz"
    return "w"


class VcfOutput:
    """Finish a VCF file from its text: ``.vcf``, ``.vcf.gz`` (BGZF + tabix) or ``.bcf`` (+ CSI).

    Parameters
    ----------
    path
        The output file; it appears under its name on :meth:`close` (with its index).
    header
        The header text (``##`` lines and the ``#CHROM`` line, each ending in a newline); None
        for a part file.
    part
        Write a part of a sharded run: plain record text, no header, no index (``path`` is the part
        file, written under a temporary name tagged ``tag``).
    tag
        See :class:`~veff.writers._atomic.AtomicPath`.
    """

    def __init__(
        self, path: str | os.PathLike[str], header: str | None, *, part: bool = False, tag: str | None = None
    ) -> None:
        self.path = Path(path)
        self._atomic = AtomicPath(self.path, tag=tag)
        self._mode = "w" if part else _mode(self.path)
        # BCF: the text goes to a side file first and is converted when complete
        self._text = Path(f"{self._atomic.tmp}.vcf") if self._mode == "wb" else self._atomic.tmp
        self._sink = TextSink(self._text, "bgzf" if self._mode == "wz" else "none")
        self._finished = self._committed = False
        self._stale_index: Path | None = None
        if header is not None:
            self._sink.write_text(header)

    def write_text(self, text: str) -> None:
        """Append record lines."""
        self._sink.write_text(text)

    def append_file(self, path: str | os.PathLike[str]) -> None:
        """Append the record text of a part file."""
        self._sink.append_file(path)

    def finish(self) -> None:
        """Compress, convert and index as the suffix asks, under the temporary name."""
        if self._finished:
            return
        self._finished = True
        self._sink.close()
        if self._mode == "wb":
            self._to_bcf()
        if self._mode in ("wz", "wb"):
            import pysam

            csi = self._mode == "wb"
            suffix = ".csi" if csi else ".tbi"
            try:
                tmp = str(self._atomic.tmp)
                pysam.tabix_index(tmp, preset="vcf", force=True, csi=csi, keep_original=True)
                self._atomic.side_suffixes.append(suffix)
            except OSError:  # records out of order: keep the scored output, without an index
                Path(f"{self._atomic.tmp}{suffix}").unlink(missing_ok=True)
                self._stale_index = Path(f"{self._atomic.final}{suffix}")
                warnings.warn(
                    f"{self._atomic.final}: written without an index because the input's records are not "
                    "sorted by position (sort with `bcftools sort` and index with `bcftools index`)",
                    VeffWarning,
                    stacklevel=2,
                )

    def commit(self) -> None:
        """Move the finished file (and its index) into place."""
        if self._stale_index is not None:  # an old index beside the new file would be wrong
            self._stale_index.unlink(missing_ok=True)
        self._atomic.commit()
        self._committed = True

    def close(self) -> None:
        """Finish the file and move it into place."""
        self.finish()
        self.commit()

    def abort(self) -> None:
        """Drop the partial output (a no-op after :meth:`commit`)."""
        if self._committed:
            return
        try:
            if not self._finished:
                self._finished = True
                self._sink.close()
        finally:
            self._atomic.discard()
            for stray in (self._text, Path(f"{self._atomic.tmp}.tbi"), Path(f"{self._atomic.tmp}.csi")):
                stray.unlink(missing_ok=True)

    def _to_bcf(self) -> None:
        from cyvcf2 import VCF, Writer

        reader = VCF(str(self._text), lazy=True)
        try:
            writer = Writer(str(self._atomic.tmp), reader, mode="wb")
            for rec in reader:
                writer.write_record(rec)
            writer.close()
        finally:
            reader.close()
        self._text.unlink()


class VcfWriter:
    """Write every input record with veff's INFO tags added.

    Parameters
    ----------
    template
        The cyvcf2 reader of the input (its header is copied).
    path
        Output ``.vcf``, ``.vcf.gz`` or ``.bcf``.
    scores
        Score names, in tag order.
    labels
        Output labels (T of them).
    prefix
        Tag prefix (``VEFF_<model>`` or ``KV:<model>`` in kipoi style).
    style
        ``veff`` or ``kipoi``.
    header_lines
        Extra ``##key=value`` lines (veff version, command).
    descriptions
        Optional one-line description per score.
    aggregate
        ``max_abs``: write per ALT only the output with the largest magnitude and its label.
    columns
        Indices of the model outputs (of the values a chunk carries) that the VCF shows, in
        order, matching ``labels``; None: all of them.
    part
        Write only the annotated record text, uncompressed, to ``path`` (a part file of a sharded
        run; see :class:`VcfOutput`). The template's header gets the same tags either way.
    tag
        Temporary-name tag of a part file (see :class:`~veff.writers._atomic.AtomicPath`).
    """

    def __init__(
        self,
        template: Any,
        path: str | os.PathLike[str],
        *,
        scores: Sequence[str],
        labels: Sequence[str],
        prefix: str,
        style: InfoStyle = "veff",
        header_lines: Sequence[str] = (),
        descriptions: dict[str, str] | None = None,
        aggregate: InfoAggregate | None = None,
        columns: Sequence[int] | None = None,
        part: bool = False,
        tag: str | None = None,
    ) -> None:
        if aggregate not in (None, "max_abs"):
            msg = f"info aggregate must be 'max_abs' or None, got {aggregate!r}"
            raise InputError(msg)
        if aggregate is not None and style == "kipoi":
            msg = "--info-aggregate is not available with --info-style kipoi"
            raise InputError(msg)

        self.path = Path(path)
        if not self.path.parent.is_dir():
            msg = f"{self.path}: output folder {self.path.parent} does not exist"
            raise InputError(msg)
        self.style = style
        self.scores = list(scores)
        self.n_labels = len(labels)
        self.labels = list(labels)
        self.aggregate = aggregate
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.tags = {s: info_tag(prefix, s, style) for s in self.scores}
        self.status_tag = info_tag(prefix, "status", style)
        fmt = "|".join(labels)
        for line in header_lines:
            template.add_to_header(line)
        for s in self.scores:
            what = (descriptions or {}).get(s, s)
            if style == "kipoi":
                desc = f"{s.upper()} SNV effect prediction. Prediction from model outputs: {fmt}"
                template.add_info_to_header(
                    {"ID": self.tags[s], "Number": ".", "Type": "String", "Description": desc}
                )
            elif aggregate == "max_abs":
                desc = (
                    f"veff score {s} ({what}), the output with the largest magnitude, "
                    "one entry per ALT. Format: ALLELE|max_abs|label"
                )
                template.add_info_to_header(
                    {"ID": self.tags[s], "Number": "A", "Type": "String", "Description": desc}
                )
            else:
                desc = f"veff score {s} ({what}), one entry per ALT. Format: ALLELE|{fmt}"
                template.add_info_to_header(
                    {"ID": self.tags[s], "Number": "A", "Type": "String", "Description": desc}
                )
        template.add_info_to_header(
            {
                "ID": self.status_tag,
                "Number": ".",
                "Type": "String",
                "Description": "veff scoring status, one entry per ALT. Format: ALLELE|status",
            }
        )
        self.header: str = template.raw_header
        self._out = VcfOutput(self.path, None if part else self.header, part=part, tag=tag)
        self._lines: list[str] = []
        self._pending = 0
        self._missing_row = "|".join([MISSING] * (2 if aggregate else self.n_labels))
        self.records_written = 0

    def format_rows(self, values: np.ndarray) -> list[str]:
        """Join each row of a (n, T) array into ``v1|...|vT`` (``value|label`` when aggregated)."""
        n = values.shape[0]
        if n == 0:
            return []
        if self.aggregate == "max_abs":  # never with the kipoi style (refused in __init__)
            return self._max_abs_rows(values.reshape(n, -1))
        if self.style != "kipoi":
            return format_float_rows(values)
        flat = format_fixed(values.reshape(n, -1))
        width = len(flat) // n
        return ["|".join(flat[k * width : (k + 1) * width]) for k in range(n)]

    def _max_abs_rows(self, values: np.ndarray) -> list[str]:
        mag = np.where(np.isnan(values), -np.inf, np.abs(values))
        idx = mag.argmax(axis=1)
        best = values[np.arange(len(values)), idx]
        text = format_floats(best)
        return [
            f"{t}|{self.labels[k] if not np.isnan(b) else MISSING}"
            for t, k, b in zip(text, idx.tolist(), best.tolist(), strict=True)
        ]

    def write(
        self,
        record: Any,
        alts: Sequence[str],
        statuses: Sequence[str],
        rows: dict[str, list[str | None]],
    ) -> None:
        """Annotate and write one record.

        Parameters
        ----------
        record
            The cyvcf2 record.
        alts
            The record's ALT alleles.
        statuses
            One status per ALT.
        rows
            Per score, one formatted ``v1|...|vT`` (or None when not scored) per ALT.
        """
        info = record.INFO
        if self.style == "kipoi":
            for s in self.scores:
                vals = [v for v in rows[s] if v is not None]
                if vals:
                    info[self.tags[s]] = ",".join(vals)
        elif alts:
            for s in self.scores:
                info[self.tags[s]] = ",".join(
                    f"{a}|{v if v is not None else self._missing_row}"
                    for a, v in zip(alts, rows[s], strict=True)
                )
        if statuses:
            info[self.status_tag] = ",".join(
                f"{a}|{st}" for a, st in zip(alts or ["."], statuses, strict=True)
            )
        line = str(record)
        self._lines.append(line)
        self._pending += len(line)
        if self._pending >= BLOCK_BYTES:
            self._flush()
        self.records_written += 1

    def append_part(self, path: str | os.PathLike[str], records: int = 0) -> None:
        """Append the records of a part file written by a ``part=True`` writer (``records`` of them)."""
        self._flush()
        self._out.append_file(path)
        self.records_written += records

    def _flush(self) -> None:
        if self._lines:
            self._out.write_text("".join(self._lines))
            self._lines.clear()
            self._pending = 0

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Annotate and write the records of one scored chunk (:class:`~veff.writers.sink.Sink`)."""
        ws = chunk.windows
        n_rows = chunk.n_rows
        formatted: dict[str, list[str]] = {}
        if n_rows:
            for s in self.scores:
                values = chunk.values[s].reshape(n_rows, -1)
                formatted[s] = self.format_rows(values if self.columns is None else values[:, self.columns])
        slot_of = {(int(i), int(a)): k for k, (i, a) in enumerate(ws.alt_slot)}
        for i, (v, rec) in enumerate(zip(ws.variants, ws.records, strict=True)):
            rows: dict[str, list[str | None]] = {s: [] for s in self.scores}
            for a in range(len(v.alts)):
                k = slot_of.get((i, a))
                for s in self.scores:
                    rows[s].append(None if k is None else formatted[s][k])
            self.write(rec, v.alts, [str(s) for s in ws.statuses[i]], rows)

    def finish(self) -> None:
        """Finish the file and index it when compressed, under its temporary name."""
        self._flush()
        self._out.finish()

    def commit(self) -> None:
        """Move the finished file (and its index) into place."""
        self._out.commit()

    def close(self) -> None:
        """Finish the file, index it when compressed, and move it into place."""
        self.finish()
        self.commit()

    def abort(self) -> None:
        """Drop the partial output."""
        self._lines.clear()
        self._out.abort()
