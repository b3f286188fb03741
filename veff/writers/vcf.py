"""Annotated VCF output (cyvcf2), in veff or kipoi-veff style.

veff style: one INFO tag per score, ``<PREFIX>_<SCORE>``, ``Number=A``, one entry per ALT,
entries separated by ``,``, each ``ALLELE|v1|...|vT`` (as VEP's CSQ and SpliceAI do). The header
Description ends with ``Format: ALLELE|<label1>|...|<labelT>``. ``<PREFIX>_STATUS`` holds
``ALLELE|status`` per ALT. An ALT without a score has ``.`` for every value. Numbers are the
shortest text that reads back to the same float32. Numeric tags beside each (veff style), for
``bcftools view -i``: ``<PREFIX>_<SCORE>_VALUE`` (``Number=A,Type=Float``: the value of a one-output
model, else the value with the largest magnitude across the outputs) and, for several outputs,
``<PREFIX>_<SCORE>_LABEL`` (``Number=A,Type=String``: that output's label); ``.`` when not scored.
With a calibration, ``<PREFIX>_<SCORE>_VALUE_PCTL`` (``Number=A,Type=Float``): the percentile of
``|<PREFIX>_<SCORE>_VALUE|`` among the background's largest magnitudes over the same outputs
(the run's ``<score>_value_pctl``, :mod:`veff.scoring.extras`).

With ``aggregate="max_abs"`` (``--info-aggregate max_abs``, veff style only) each entry is
``ALLELE|value|label``: the output with the largest magnitude (first one on ties, NaN ignored) and
its label, ``ALLELE|.|.`` when not scored, ``ALLELE|nan|.`` when every output is NaN; the header
Description ends with ``Format: ALLELE|max_abs|label``.

kipoi style (``--info-style kipoi``): tags ``KV_<model>_<SCORE>`` (kipoi-veff wrote ``KV:...``,
not a valid INFO key), values ``%.8f`` joined by ``|``, one ``,``-separated group per ALT, as
kipoi-veff wrote them.

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
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veff.errors import InputError, OutputError, VeffWarning
from veff.writers._atomic import AtomicPath
from veff.writers._floats import format_float_rows, format_floats
from veff.writers._text import BLOCK_BYTES, TextSink
from veff.writers.sink import ScoredChunk

__all__ = [
    "STDOUT",
    "InfoAggregate",
    "InfoStyle",
    "OutputType",
    "VcfOutput",
    "VcfWriter",
    "add_info",
    "format_floats",
    "info_tag",
    "vcf_labels",
]

InfoStyle = Literal["veff", "kipoi"]
InfoAggregate = Literal["max_abs"]
MISSING = "."


def format_fixed(values: np.ndarray) -> list[str]:
    """Format values as kipoi-veff did (``%.8f``)."""
    return [f"{v:.8f}" for v in np.asarray(values, dtype=np.float64).ravel().tolist()]


def info_tag(prefix: str, score: str, style: InfoStyle = "veff") -> str:
    """Return the INFO key of ``score``: ``<prefix>_<SCORE>`` in both styles (valid VCF keys)."""
    return f"{prefix}_{score.upper()}"


OutputType = Literal["v", "z", "b", "u"]
STDOUT = "-"  # the output path that means standard output (written as the stream /dev/stdout)
_MODES = {"v": "w", "z": "wz", "b": "wb", "u": "wbu"}


def _mode(path: Path, output_type: OutputType | None = None) -> str:
    if output_type is not None:
        if output_type not in _MODES:
            msg = f"output type must be v, z, b or u (as bcftools -O), got {output_type!r}"
            raise InputError(msg)
        return _MODES[output_type]
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
    output_type
        ``v`` (VCF), ``z`` (bgzipped VCF), ``b`` (BCF) or ``u`` (uncompressed BCF), as bcftools'
        ``-O``; None: from the suffix. ``path`` ``-`` is standard output (``/dev/stdout``, a
        stream: VCF text is written as it comes, BCF when complete, nothing is indexed).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        header: str | None,
        *,
        part: bool = False,
        tag: str | None = None,
        output_type: OutputType | None = None,
    ) -> None:
        self.to_stdout = str(path) in (STDOUT, "/dev/stdout")
        self.path = Path("/dev/stdout") if str(path) == STDOUT else Path(path)
        self._atomic = AtomicPath(self.path, tag=tag)
        self._mode = "w" if part else _mode(self.path, output_type)
        stream = self._atomic.stream
        # BCF: the text goes to a side file first and is converted when complete
        self._text = self._atomic.tmp
        if self._mode in ("wb", "wbu"):
            self._text = _scratch(".vcf") if stream else Path(f"{self._atomic.tmp}.vcf")
        self._sink = TextSink(
            self._text,
            "bgzf" if self._mode == "wz" else "none",
            append=stream and self._mode not in ("wb", "wbu"),
        )
        self._finished = self._committed = False
        self._stale_index: Path | None = None
        if header is not None:
            self._sink.write_text(header)

    def write_text(self, text: str) -> None:
        """Append record lines."""
        self._sink.write_text(text)

    def write(self, data: bytes) -> None:
        """Append record lines, as bytes."""
        self._sink.write(data)

    def append_file(self, path: str | os.PathLike[str]) -> None:
        """Append the record text of a part file."""
        self._sink.append_file(path)

    def finish(self) -> None:
        """Compress, convert and index as the suffix asks, under the temporary name."""
        if self._finished:
            return
        self._finished = True
        self._sink.close()
        if self._mode in ("wb", "wbu"):
            self._to_bcf()
        if self._mode in ("wz", "wb") and self._atomic.stream:
            if self.to_stdout:  # asked for a stream: no index expected
                return
            warnings.warn(
                f"{self._atomic.final}: written as a stream (not a regular file), so without an index",
                VeffWarning,
                stacklevel=2,
            )
        elif self._mode in ("wz", "wb"):
            self._index()

    def _index(self) -> None:
        import pysam

        csi = self._mode == "wb"
        suffix = ".csi" if csi else ".tbi"
        tmp = self._atomic.tmp
        try:
            pysam.tabix_index(str(tmp), preset="vcf", force=True, csi=csi, keep_original=True)
            self._atomic.side_suffixes.append(suffix)
            return
        except OSError as exc:
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
            if _records_sorted(tmp):  # then htslib could not write the index: an error
                msg = f"cannot write {self._atomic.final}{suffix} (the index of {self._atomic.final}): {exc}"
                raise OutputError(msg) from exc
        # records out of order: keep the scored output, without an index
        self._stale_index = Path(f"{self._atomic.final}{suffix}")
        warnings.warn(
            f"{self._atomic.final}: written without an index because the input's records are not "
            "sorted by position (sort with `bcftools sort` and index with `bcftools index`)",
            VeffWarning,
            stacklevel=3,
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
            if not self._atomic.stream:
                for stray in (Path(f"{self._atomic.tmp}.tbi"), Path(f"{self._atomic.tmp}.csi")):
                    stray.unlink(missing_ok=True)
            if self._text != self._atomic.tmp:  # the text of a BCF, never the stream itself
                self._text.unlink(missing_ok=True)

    def _to_bcf(self) -> None:
        from cyvcf2 import VCF, Writer

        reader = VCF(str(self._text), lazy=True)
        try:
            writer = Writer(str(self._atomic.tmp), reader, mode=self._mode)
            for rec in reader:
                writer.write_record(rec)
            writer.close()
        finally:
            reader.close()
        self._text.unlink()


def _scratch(suffix: str) -> Path:
    """A new empty file in the system's temporary folder (the text of a BCF written to a stream)."""
    fd, name = tempfile.mkstemp(prefix="veff-", suffix=suffix)
    os.close(fd)
    return Path(name)


def _records_sorted(path: Path) -> bool:
    """Whether the records of a VCF are sorted as an index needs (each contig together, by POS)."""
    from veff.io.vcf import VcfReader

    done: set[str] = set()
    last: tuple[str, int] | None = None
    reader = VcfReader(path)
    try:
        for v, _ in reader:
            if last is None or v.chrom != last[0]:
                if v.chrom in done:
                    return False
                if last is not None:
                    done.add(last[0])
            elif v.pos < last[1]:
                return False
            last = (v.chrom, v.pos)
    finally:
        reader.close()
    return True


_NOT_IN_ENTRY = re.compile(r'[\s"|,;=\\]+')


def vcf_labels(labels: Sequence[str]) -> list[str]:
    """Output labels as they can stand in a VCF header Description and an INFO entry.

    Runs of ``"``, ``|``, ``,``, ``;``, ``=``, backslash and whitespace (newlines included) become
    ``_``; labels that then collide get ``_2``, ``_3``... so they stay distinct.

    Examples
    --------
    >>> vcf_labels(["DNase|K562", 'a "b"', "x,y", "x;y", "ok"])
    ['DNase_K562', 'a_b_', 'x_y', 'x_y_2', 'ok']
    """
    out: list[str] = []
    taken: set[str] = set()
    for label in labels:
        safe = _NOT_IN_ENTRY.sub("_", str(label)) or "_"
        base, k = safe, 1
        while safe in taken:
            k += 1
            safe = f"{base}_{k}"
        taken.add(safe)
        out.append(safe)
    return out


class VcfWriter:
    """Write every input record with veff's INFO entries added, every other byte as the input's.

    A record given as its line (``bytes``, text input) is written as those bytes with veff's
    entries appended to its INFO column (``;<PREFIX>_<SCORE>=...``, or in place of ``.`` when INFO
    was empty), as VEP does: QUAL, FILTER, the other INFO entries, FORMAT and the samples keep
    the input's spelling (``50.00``, ``AF=0.100``, missing sub-fields). A cyvcf2 record (BCF
    input, which holds no text) is formatted by htslib first.

    Re-annotating a veff output replaces the INFO entries and header lines that an earlier run
    wrote under the same prefix (score tags declared as veff's, the status tag, and any tag of the
    same name as a new one), with one warning.

    Parameters
    ----------
    template
        The cyvcf2 reader of the input (its header is copied; it is not changed).
    path
        Output ``.vcf``, ``.vcf.gz`` or ``.bcf``.
    scores
        Score names, in tag order.
    labels
        Output labels (T of them).
    prefix
        Tag prefix (``VEFF_<model>`` or ``KV_<model>`` in kipoi style).
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
    features
        Rows carry a feature (a per-feature score, :class:`veff.types.RowKey`): each score tag
        then has ``Number=.`` and one entry per row, ``ALLELE|feature|v1|...|vT`` (an ALT without
        a row: ``ALLELE||.|...``), and the Description says ``Format: ALLELE|feature|...``. Not
        with the kipoi style.
    part
        Write only the annotated record text, uncompressed, to ``path`` (a part file of a sharded
        run; see :class:`VcfOutput`).
    tag
        Temporary-name tag of a part file (see :class:`~veff.writers._atomic.AtomicPath`).
    output_type
        ``v``, ``z``, ``b`` or ``u`` as bcftools' ``-O`` (see :class:`VcfOutput`; ``path`` ``-``:
        standard output).
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
        features: bool = False,
        part: bool = False,
        tag: str | None = None,
        output_type: OutputType | None = None,
        per_alt: Sequence[str] = (),
    ) -> None:
        if features and style == "kipoi":
            msg = "per-feature scores cannot be written in --info-style kipoi"
            raise InputError(msg)
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
        self.labels = vcf_labels(labels)
        changed = [(a, b) for a, b in zip(labels, self.labels, strict=True) if a != b]
        if changed and not part:
            shown = ", ".join(f"{a!r} as {b!r}" for a, b in changed[:3])
            more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
            warnings.warn(
                f"{self.path}: {len(changed)} output labels hold characters a VCF INFO entry cannot "
                f'(" | , ; = \\ whitespace); written to the VCF as {shown}{more}; tables keep the labels',
                VeffWarning,
                stacklevel=2,
            )
        self.aggregate = aggregate
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.features = features
        self.tags = {s: info_tag(prefix, s, style) for s in self.scores}
        self.status_tag = info_tag(prefix, "status", style)
        # numeric tags (veff style): the value per ALT, and which output it is when there are several
        self.numeric = style == "veff" and not features  # feature rows: several entries per ALT
        self.value_tags = {s: f"{self.tags[s]}_VALUE" for s in self.scores} if self.numeric else {}
        self.label_tags = (
            {s: f"{self.tags[s]}_LABEL" for s in self.scores} if self.numeric and len(labels) > 1 else {}
        )
        # the percentile of |_VALUE| among the background's (a calibration's ``<score>_value_pctl``)
        self.pctl_tags = {
            s: f"{self.value_tags[s]}_PCTL" for s in self.value_tags if f"{s}_value_pctl" in per_alt
        }
        declared = [h.info() for h in template.header_iter() if h.type == "INFO"]
        new_tags = {
            *self.tags.values(),
            *self.value_tags.values(),
            *self.label_tags.values(),
            *self.pctl_tags.values(),
            self.status_tag,
        }
        self._stale = _earlier_tags(declared, prefix, new_tags)
        if self._stale and not part:
            where = getattr(template, "fname", None) or "the input VCF"
            warnings.warn(
                f"{where}: already annotated under the prefix {prefix}; its INFO tags "
                f"{', '.join(sorted(self._stale))} are replaced",
                VeffWarning,
                stacklevel=2,
            )
        self._stale_bytes = frozenset(k.encode() for k in self._stale)
        self.header: str = _header_text(
            template.raw_header, header_lines, self._info_lines(self.labels, descriptions or {}), self._stale
        )
        self._out = VcfOutput(
            self.path, None if part else self.header, part=part, tag=tag, output_type=output_type
        )
        self._lines: list[bytes] = []
        self._pending = 0
        self._missing_row = "|".join([MISSING] * (2 if aggregate else self.n_labels))
        self.records_written = 0

    def _info_lines(self, labels: Sequence[str], descriptions: dict[str, str]) -> list[str]:
        fmt = "|".join(labels)
        entries, allele = (
            ("per ALT and feature", "ALLELE|feature") if self.features else ("per ALT", "ALLELE")
        )
        out = []
        for s in self.scores:
            what = descriptions.get(s, s)
            if self.style == "kipoi":
                number = "."
                desc = f"{s.upper()} SNV effect prediction. Prediction from model outputs: {fmt}"
            elif self.aggregate == "max_abs":
                number = "." if self.features else "A"
                desc = (
                    f"veff score {s} ({what}), the output with the largest magnitude, "
                    f"one entry {entries}. Format: {allele}|max_abs|label"
                )
            else:
                number = "." if self.features else "A"
                desc = f"veff score {s} ({what}), one entry {entries}. Format: {allele}|{fmt}"
            desc = " ".join(desc.replace('"', "'").replace("\\", "/").split())  # one quoted header value
            out.append(f'##INFO=<ID={self.tags[s]},Number={number},Type=String,Description="{desc}">')
            if s in self.value_tags:
                out += self._numeric_lines(s, what, labels)
            if s in self.pctl_tags:
                among = descriptions.get(f"{s}_value_pctl", "among the background's")
                pdesc = (
                    f"Percentile 0-100 of |{self.value_tags[s]}| (the largest |{s}| across the model "
                    f"outputs in this VCF) {among}, per ALT"
                )
                pdesc = " ".join(pdesc.replace('"', "'").replace("\\", "/").split())
                out.append(f'##INFO=<ID={self.pctl_tags[s]},Number=A,Type=Float,Description="{pdesc}">')
        desc = "veff scoring status, one entry per ALT. Format: ALLELE|status"
        out.append(f'##INFO=<ID={self.status_tag},Number=.,Type=String,Description="{desc}">')
        return out

    def _numeric_lines(self, s: str, what: str, labels: Sequence[str]) -> list[str]:
        if s not in self.label_tags:
            desc = f"Value of veff score {s} ({what}) for output {self.labels[0] if self.labels else '?'}"
            return [f'##INFO=<ID={self.value_tags[s]},Number=A,Type=Float,Description="{desc}, per ALT">']
        desc = (
            f"Value of veff score {s} ({what}) with the largest magnitude across the model outputs, "
            f"per ALT; its output is in {self.label_tags[s]}"
        )
        ldesc = f"Model output whose value of veff score {s} is in {self.value_tags[s]}, per ALT"
        return [
            f'##INFO=<ID={self.value_tags[s]},Number=A,Type=Float,Description="{desc}">',
            f'##INFO=<ID={self.label_tags[s]},Number=A,Type=String,Description="{ldesc}">',
        ]

    def numeric_values(self, values: np.ndarray) -> tuple[list[str], list[str]]:
        """Per row of a (n, T) array: the value with the largest magnitude, and its output's label.

        NaN is ignored (the first output wins ties); a row of NaN gives ``nan`` and label ``.``.
        """
        n = values.shape[0]
        if n == 0:
            return [], []
        values = values.reshape(n, -1)
        mag = np.where(np.isnan(values), -np.inf, np.abs(values))
        idx = mag.argmax(axis=1)
        best = values[np.arange(n), idx]
        labels = [
            self.labels[k] if not np.isnan(b) else MISSING
            for k, b in zip(idx.tolist(), best.tolist(), strict=True)
        ]
        return format_floats(best), labels

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
        text, labels = self.numeric_values(values)
        return [f"{t}|{label}" for t, label in zip(text, labels, strict=True)]

    def write(
        self,
        record: Any,
        alts: Sequence[str],
        statuses: Sequence[str],
        rows: dict[str, list[str | None]],
        numbers: dict[str, list[tuple[str, str] | None]] | None = None,
        percentiles: dict[str, list[str | None]] | None = None,
    ) -> None:
        """Annotate and write one record.

        Parameters
        ----------
        record
            The record's line (``bytes`` ending in a line end, from :class:`veff.io.vcf.VcfReader`
            for text input) or its cyvcf2 record.
        alts
            The record's ALT alleles.
        statuses
            One status per ALT.
        rows
            Per score, one formatted ``v1|...|vT`` (or None when not scored) per ALT.
        numbers
            Per score, one ``(value, label)`` (or None when not scored) per ALT, for the numeric tags
            (veff style; see :meth:`numeric_values`).
        percentiles
            Per score of :attr:`pctl_tags`, one formatted percentile (or None when not scored) per
            ALT, for ``<TAG>_VALUE_PCTL``.
        """
        entries = []
        if self.style == "kipoi":
            for s in self.scores:
                vals = [v for v in rows[s] if v is not None]
                if vals:
                    entries.append(f"{self.tags[s]}={','.join(vals)}")
        elif alts:
            missing = self._missing_row
            for s in self.scores:
                entries.append(
                    self.tags[s]
                    + "="
                    + ",".join(
                        f"{a}|{v if v is not None else missing}" for a, v in zip(alts, rows[s], strict=True)
                    )
                )
                if numbers is not None and s in self.value_tags:
                    pairs = numbers[s]
                    entries.append(
                        f"{self.value_tags[s]}=" + ",".join(MISSING if p is None else p[0] for p in pairs)
                    )
                    if s in self.label_tags:
                        entries.append(
                            f"{self.label_tags[s]}=" + ",".join(MISSING if p is None else p[1] for p in pairs)
                        )
                if percentiles is not None and s in self.pctl_tags:
                    entries.append(
                        f"{self.pctl_tags[s]}="
                        + ",".join(MISSING if p is None else p for p in percentiles[s])
                    )
        if statuses:
            entries.append(
                self.status_tag
                + "="
                + ",".join(f"{a}|{st}" for a, st in zip(alts or ["."], statuses, strict=True))
            )
        line = record if isinstance(record, bytes) else str(record).encode("utf-8", "surrogateescape")
        line = add_info(line, ";".join(entries).encode("utf-8", "surrogateescape"), self._stale_bytes)
        self._lines.append(line)
        self._pending += len(line)
        if self._pending >= BLOCK_BYTES:
            self._flush()
        self.records_written += 1

    part_key = "vcf"

    @property
    def rows_written(self) -> int:
        """Records written so far (a :class:`~veff.writers.sink.PartSink` member)."""
        return self.records_written

    def append_part(self, path: str | os.PathLike[str], records: int = 0) -> None:
        """Append the records of a part file written by a ``part=True`` writer (``records`` of them)."""
        self._flush()
        self._out.append_file(path)
        self.records_written += records

    def _flush(self) -> None:
        if self._lines:
            self._out.write(b"".join(self._lines))
            self._lines.clear()
            self._pending = 0

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Annotate and write the records of one scored chunk (:class:`~veff.writers.sink.Sink`)."""
        ws = chunk.windows
        n_rows = chunk.n_rows
        formatted: dict[str, list[str]] = {}
        numeric: dict[str, list[tuple[str, str]]] = {}
        if n_rows:
            for s in self.scores:
                values = chunk.values[s].reshape(n_rows, -1)
                shown = values if self.columns is None else values[:, self.columns]
                formatted[s] = self.format_rows(shown)
                if self.numeric:
                    numeric[s] = list(zip(*self.numeric_values(shown), strict=True))
        pctl_text = (
            {s: format_floats(chunk.per_alt[f"{s}_value_pctl"]) for s in self.pctl_tags} if n_rows else {}
        )
        if self.features:
            self._write_feature_rows(chunk, formatted)
            return
        if chunk.features is not None and any(chunk.features):
            msg = f"{self.path}: rows carry features, but the VCF was opened without them"
            raise ValueError(msg)
        slot_of = {(i, a): k for k, (i, a) in enumerate(chunk.row_slots.tolist())}
        scores, pctl_tags = self.scores, self.pctl_tags
        for i, (v, rec) in enumerate(zip(ws.variants, ws.records, strict=True)):
            ks = [slot_of.get((i, a)) for a in range(len(v.alts))]
            rows = {s: [None if k is None else formatted[s][k] for k in ks] for s in scores}
            numbers = (
                {s: [None if k is None else numeric[s][k] for k in ks] for s in scores}
                if self.numeric
                else None
            )
            pctl = {s: [None if k is None else pctl_text[s][k] for k in ks] for s in pctl_tags}
            statuses = [str(s) for s in ws.statuses[i]]
            self.write(rec, v.alts, statuses, rows, numbers, pctl)

    def _write_feature_rows(self, chunk: ScoredChunk, formatted: dict[str, list[str]]) -> None:
        """Records whose ALTs have one entry per row: ``ALLELE|feature|values``."""
        ws = chunk.windows
        features = chunk.features if chunk.features is not None else [""] * chunk.n_rows
        by_alt = chunk.rows_by_alt()
        for i, (v, rec) in enumerate(zip(ws.variants, ws.records, strict=True)):
            rows: dict[str, list[str | None]] = {s: [] for s in self.scores}
            for a, alt in enumerate(v.alts):
                ks = by_alt.get((i, a))
                for s in self.scores:
                    if ks is None:
                        rows[s].append(f"|{self._missing_row}")
                    else:  # the later rows of the ALT are further entries, each with the ALLELE
                        text = [f"{features[k]}|{formatted[s][k]}" for k in ks]
                        rows[s].append(f",{alt}|".join(text))
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


def add_info(line: bytes, entries: bytes, stale: frozenset[bytes] = frozenset()) -> bytes:
    r"""Append ``entries`` (``KEY=value;...``) to the INFO column of a record's line.

    Every other byte of the line is kept. INFO ``.`` (or empty) becomes ``entries``; entries whose
    key is in ``stale`` are dropped first (``.`` if none is left).

    Examples
    --------
    >>> add_info(b"1\t5\t.\tA\tC\t50.00\tPASS\tAF=0.100\tGT\t0/1\n", b"X=1")
    b'1\t5\t.\tA\tC\t50.00\tPASS\tAF=0.100;X=1\tGT\t0/1\n'
    >>> add_info(b"1\t5\t.\tA\tC\t.\t.\tV_D=3;DP=4\n", b"V_D=1", frozenset({b"V_D"}))
    b'1\t5\t.\tA\tC\t.\t.\tDP=4;V_D=1\n'
    """
    cols = line.split(b"\t", 8)
    if len(cols) < 8:
        msg = f"not a VCF record line (fewer than 8 columns): {line[:80]!r}"
        raise InputError(msg)
    info = cols[7]
    end = b""
    if len(cols) == 8:  # INFO is the last column: keep the line end after it
        body = info.rstrip(b"\r\n")
        info, end = body, info[len(body) :]
    if stale:
        kept = [e for e in info.split(b";") if e.split(b"=", 1)[0] not in stale]
        info = b";".join(kept) if kept else b"."
    if entries:
        info = entries if info in (b".", b"") else info + b";" + entries
    cols[7] = info + end
    return b"\t".join(cols)


def _earlier_tags(declared: list[dict[str, str]], prefix: str, new: set[str]) -> set[str]:
    """INFO keys of ``declared`` that an earlier veff run wrote under ``prefix``, or that ``new`` reuses."""
    from veff.writers.read import header_tags

    tags, status = header_tags(declared)
    old = {t.key for t in tags if t.prefix == prefix}
    numeric = {f"{k}_{kind}" for k in old for kind in ("VALUE", "LABEL", "VALUE_PCTL")}  # numeric twins
    old |= {h["ID"] for h in declared if h.get("ID") in numeric}
    if prefix in status:
        old.add(status[prefix])
    return old | {h["ID"] for h in declared if h.get("ID") in new}


def _header_text(raw: str, extra: Sequence[str], info: Sequence[str], stale: set[str]) -> str:
    """The output header: ``raw`` without the ``stale`` INFO lines, then ``extra`` and ``info`` lines."""
    lines = raw.splitlines(keepends=True)
    chrom = (
        lines.pop()
        if lines and lines[-1].startswith("#CHROM")
        else "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    kept = [
        line
        for line in lines
        if not (line.startswith("##INFO=<ID=") and line[11:].split(",", 1)[0].rstrip(">\n") in stale)
    ]
    present = {line.rstrip("\n") for line in kept}
    added = [" ".join(line.splitlines()) for line in (*extra, *info)]  # one line each, whatever they hold
    return "".join(kept) + "".join(f"{line}\n" for line in added if line not in present) + chrom
