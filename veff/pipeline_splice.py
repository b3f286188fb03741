"""``score_splice``: the stage order of gene-aware splice scoring (SpliceAI-class models).

VCF records are read in chunks; for each chunk the entries (record x ALT x transcript) and their
windows are planned (:mod:`veff.variants.splice`), the reference and alt windows predicted in
shared batches (:class:`veff.engine.batching.BatchStream`; an ensemble's members all see each
batch), the tracks of minus-strand windows flipped back, the delta scores computed
(:mod:`veff.scoring.splice`) and the entries written in input order (:mod:`veff.writers.splice`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from veff._version import __version__
from veff.engine.batching import BatchStream
from veff.engine.progress import progress_bar
from veff.errors import InputError, check_int
from veff.io.annotation import TranscriptChoice, read_annotation
from veff.io.contigs import check_same_build, no_shared_contig
from veff.io.fasta import Fasta
from veff.io.vcf import STDIN, VcfReader
from veff.models import Model, cpu_threads, load_model, sanitize_name
from veff.models.ensemble import EnsembleModel
from veff.models.splice import SpliceModelInfo, splice_model_info
from veff.models.splicenet import SpliceNetEnsemble, is_splicenet_file
from veff.run.hooks import log_summary
from veff.run.summary import Summary
from veff.scoring.splice import SPLICE_FIELDS, MaskMode, align_alt, delta_scores
from veff.types import SCORED_STATUSES, Status
from veff.variants.splice import SpliceGeometry, SplicePlanner, SpliceSet, SpliceStyle
from veff.writers.sink import abort_all, commit_all
from veff.writers.splice import SpliceTable, SpliceVcfWriter, format_entry

if TYPE_CHECKING:  # pandas is imported where frames are made (not at start-up)
    import pandas as pd

__all__ = ["load_splice_model", "score_splice"]

log = logging.getLogger("veff")
_CHUNK = 256  # records per planned chunk


def load_splice_model(models: Any, *, incremental: bool = True, **model_kwargs: Any) -> Model:
    """One model from a path, a model object, or a list of them (an ensemble, outputs averaged).

    Keras files of SpliceAI's architecture run as a :class:`~veff.models.splicenet.SpliceNetEnsemble`
    (PyTorch, alt windows computed incrementally) unless ``incremental`` is False or
    ``model_kwargs`` ask for anything of the framework adapters.
    """
    paths = list(models) if isinstance(models, (list, tuple)) else [models]
    if (
        incremental
        and not model_kwargs
        and all(isinstance(p, (str, os.PathLike)) and is_splicenet_file(p) for p in paths)
    ):
        return SpliceNetEnsemble(paths)
    if isinstance(models, (list, tuple)):
        members = [load_model(m, **model_kwargs) for m in models]
        return members[0] if len(members) == 1 else EnsembleModel(members)
    return load_model(models, **model_kwargs)


def score_splice(
    model: Any,
    vcf: str | os.PathLike[str],
    fasta: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    annotation: str | os.PathLike[str],
    transcripts: TranscriptChoice = "canonical",
    distance: int = 50,
    mask: bool = False,
    info_style: SpliceStyle = "spliceai",
    info_prefix: str | None = None,
    table: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    max_indel_length: int = 50,
    return_scores: bool = False,
    progress: bool = False,
    command: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    incremental: bool = True,
) -> Summary | pd.DataFrame:
    """Score the variants of a VCF with a splice model against the transcripts that contain them.

    Parameters
    ----------
    model
        A model path or object, or a list of them: an ensemble whose outputs are averaged
        (SpliceAI's ``spliceai1.h5`` ... ``spliceai5.h5``).
    vcf, fasta, output
        Input VCF, reference FASTA, annotated VCF to write (or None).
    annotation
        SpliceAI's gene table, a GTF or a GFF3 (:func:`veff.io.annotation.read_annotation`).
    transcripts
        Which GTF/GFF3 transcripts are scored: ``canonical``, ``mane`` or ``all``.
    distance
        ``D`` (SpliceAI's ``-D``): positions scored on each side of the variant, 0..4999.
    mask
        SpliceAI's ``-M 1``: gains at annotated sites and losses elsewhere set to 0 (in veff style
        by site type, see :mod:`veff.scoring.splice`).
    info_style
        ``spliceai`` (SpliceAI's INFO key, rules and skips) or ``veff`` (see
        :mod:`veff.variants.splice`).
    info_prefix
        INFO key of the entries in spliceai style (default ``SpliceAI``); tag prefix in veff style
        (default ``VEFF_<model>``).
    table
        ``.tsv``, ``.tsv.gz`` or ``.parquet``: one row per record x ALT x transcript.
    batch_size
        Windows per forward call (default 32).
    threads
        CPU threads of the model's framework.
    max_indel_length
        veff style: longest length change scored (longer ones get ``indel_too_long``). spliceai
        style scores insertions of any length, as SpliceAI does (a chunk's windows grow to fit its
        longest insertion); this is then only the room every window has.
    return_scores
        Return the table's rows as a DataFrame instead of the summary.
    progress, command, model_kwargs
        Progress bar; command line for the header; arguments of :func:`veff.load_model`.
    incremental
        Run SpliceAI-architecture Keras files with :mod:`veff.models.splicenet` (same outputs,
        several times faster); False runs them with Keras.

    Returns
    -------
    Summary or pandas.DataFrame
    """
    t0 = time.perf_counter()
    check_int("distance", distance, 0, optional=False)
    if not 0 <= distance <= 4999:
        msg = f"splice distance must be between 0 and 4999, got {distance}"
        raise InputError(msg)
    if info_style not in ("spliceai", "veff"):
        msg = f"splice scoring writes info style spliceai or veff, got {info_style!r}"
        raise InputError(msg)
    if output is None and table is None and not return_scores:
        msg = "nothing to do: give an output VCF, a table or return_scores=True"
        raise InputError(msg)
    if batch_size == "tune":
        msg = "batch_size 'tune' (--batch-size tune) is not available with a gene annotation; give a number"
        raise InputError(msg)
    check_int("batch_size", batch_size, 1)
    check_int("threads", threads, 1)
    genes = read_annotation(annotation, transcripts=transcripts)
    mdl = load_splice_model(model, incremental=incremental, **(model_kwargs or {}))
    with cpu_threads(threads):
        info = splice_model_info(mdl)
    geo = SpliceGeometry(info.flank, distance, max(0, max_indel_length))
    ref = Fasta(fasta)
    if str(vcf) != STDIN:  # another build's FASTA: one clear error before any work
        try:
            check_same_build(vcf, ref)
        except BaseException:
            ref.close()
            raise
    reader = VcfReader(vcf)
    planner = SplicePlanner(
        ref,
        genes,
        geo,
        style=info_style,
        max_indel_length=max_indel_length,
        span=mdl.reference_span if isinstance(mdl, SpliceNetEnsemble) else 0,
    )
    mask_mode: MaskMode = ("spliceai" if info_style == "spliceai" else "veff") if mask else "none"
    prefix = info_prefix or ("SpliceAI" if info_style == "spliceai" else "VEFF_" + sanitize_name(mdl.name))
    sinks: list[Any] = []
    try:
        if output is not None:
            spliceai = info_style == "spliceai"
            sinks.append(
                SpliceVcfWriter(
                    reader.vcf,
                    output,
                    style=info_style,
                    key=prefix if spliceai else f"{prefix}_SPLICE",
                    status_key="VEFF_SPLICE_STATUS" if spliceai else f"{prefix}_STATUS",
                    header_lines=[
                        f"##veff_version={__version__}",
                        f"##veff_command={command or _api_command(mdl, distance, mask, info_style)}",
                    ],
                )
            )
        if table is not None:
            sinks.append(SpliceTable(table))
    except BaseException:
        abort_all(sinks)
        reader.close()
        ref.close()
        raise
    vcf_writer = next((s for s in sinks if isinstance(s, SpliceVcfWriter)), None)
    table_writer = next((s for s in sinks if isinstance(s, SpliceTable)), None)
    summary = Summary(output=str(output) if output else None)
    counts: Counter[str] = Counter()
    contigs: dict[str, None] = {}
    collected: list[tuple[Any, ...]] = []
    stream = BatchStream(mdl, batch_size or 32, rc=False, pad=False, layout=info.layout)
    bar = progress_bar(progress, unit="variants")
    limited = cpu_threads(threads)
    limited.__enter__()
    complete = False
    try:
        for variants, records in _chunks(reader, _CHUNK):
            ss = planner.build(variants, records)
            ref_tracks, alt_tracks = _predict(mdl, stream, ss, info)
            ds, dp = _score_chunk(ss, ref_tracks, alt_tracks, mask_mode, info_style)
            rows = _rows(ss, ds, dp)
            if vcf_writer is not None:
                _write_vcf(vcf_writer, ss, ds, dp, info_style)
            if table_writer is not None:
                table_writer.write(rows)
            if return_scores:
                collected.extend(rows)
            for sts in ss.statuses:
                counts.update(map(str, sts))
            summary.records += len(ss)
            bar.update(len(ss))
            for v in variants[: 8 - len(contigs)]:
                contigs.setdefault(v.chrom)
        # a stream the check before could not read: records in genes, none on a FASTA contig
        unplaced = {str(Status.UNKNOWN_CONTIG), str(Status.OUTSIDE_GENES), str(Status.NO_ALT)}
        if counts.get(str(Status.UNKNOWN_CONTIG)) and set(counts) <= unplaced:
            raise no_shared_contig(vcf, contigs, ref)
        commit_all(sinks)
        complete = True
    except BaseException:
        abort_all(sinks)
        raise
    finally:
        limited.__exit__(None, None, None)
        bar.close() if complete else bar.stop()
        reader.close()
        ref.close()
    summary.statuses = dict(counts)
    summary.alleles = sum(counts.values()) - counts.get(str(Status.NO_ALT), 0)
    summary.scored = sum(v for k, v in counts.items() if Status(k) in SCORED_STATUSES)
    summary.seconds = time.perf_counter() - t0
    summary.timings = {"total": round(summary.seconds, 3)}
    log_summary(summary)
    if return_scores:
        import pandas as pd

        frame = pd.DataFrame(collected, columns=list(_TABLE_NAMES))
        for name in SPLICE_FIELDS[4:]:
            frame[name] = frame[name].astype("Int64")
        return frame
    return summary


def _chunks(reader: VcfReader, size: int) -> Iterator[tuple[list[Any], list[Any]]]:
    it = iter(reader)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield [v for v, _ in block], [r for _, r in block]


_TABLE_NAMES = ("chrom", "pos", "id", "ref", "alt", "symbol", "transcript", "status", *SPLICE_FIELDS)


def _edits(ss: SpliceSet) -> np.ndarray:
    """Per alt window: ref row, changed span, shifts and needed outputs (SpliceNet.predict_edits)."""
    geo = ss.geometry
    n = len(ss.alt_codes)
    length, q, at = geo.length, geo.outputs, geo.flank + geo.distance
    r, a = ss.alt_alleles[:, 0], ss.alt_alleles[:, 1]
    off, minus = ss.alt_offset, ss.alt_minus
    n_out = geo.cov + (a - r)
    # a reversed (minus-strand) reference window longer than the alt's starts further upstream
    ref_len = np.array([len(c) for c in ss.ref_codes], np.int64)
    grow = np.where(minus, ref_len[ss.alt_ref] - length, 0) if n else np.zeros(0, np.int64)
    out = np.empty((n, 7), np.int64)
    out[:, 0] = ss.alt_ref
    out[:, 1] = np.where(minus, length - at - a, at)
    out[:, 2] = np.where(minus, length - at, at + a)
    out[:, 3] = np.where(minus, -off - (r - a), off) + grow
    out[:, 4] = np.where(minus, -off, off + r - a) + grow
    out[:, 5] = np.where(minus, geo.flank + q - n_out, geo.flank)
    out[:, 6] = np.where(minus, geo.flank + q, geo.flank + n_out)
    return out


def _predict(
    mdl: Model, stream: BatchStream, ss: SpliceSet, info: SpliceModelInfo
) -> tuple[list[np.ndarray], np.ndarray]:
    """Reference tracks (one (P_i, 3) each) and alt tracks (n, P, 3) of a chunk, forward orientation."""
    geo = ss.geometry
    ref_tracks: list[np.ndarray]
    if isinstance(mdl, SpliceNetEnsemble):
        ref_tracks, alt_tracks = mdl.predict_splice(ss.ref_codes, ss.alt_codes, _edits(ss))
    else:  # the planner cut every window to the geometry's length (no span)
        ref_codes = np.stack(ss.ref_codes) if ss.ref_codes else np.empty((0, geo.length), np.uint8)
        stream.submit([ref_codes, ss.alt_codes])
        stream.flush()
        ref_flat, alt_flat = stream.take()
        ref_tracks = list(info.tracks(ref_flat, geo.outputs)) if len(ref_flat) else []
        alt_tracks = info.tracks(alt_flat, geo.outputs) if len(alt_flat) else alt_flat
    # minus-strand windows were reverse-complemented: flip their tracks back to forward order
    ref_tracks = [t[::-1] if m else t for t, m in zip(ref_tracks, ss.ref_minus.tolist(), strict=True)]
    if len(ss.alt_codes):
        alt_tracks = np.where(ss.alt_minus[:, None, None], alt_tracks[:, ::-1], alt_tracks)
    return ref_tracks, alt_tracks


def _score_chunk(
    ss: SpliceSet,
    ref_tracks: list[np.ndarray],
    alt_tracks: np.ndarray,
    mask: MaskMode,
    style: SpliceStyle,
) -> tuple[np.ndarray, np.ndarray]:
    """DS (n_alt, 4) float64 and DP (n_alt, 4) int64 of every alt window of a chunk."""
    geo = ss.geometry
    n_alt = len(ss.alt_codes)
    ds = np.zeros((n_alt, 4), np.float64)
    dp = np.zeros((n_alt, 4), np.int64)
    for k in range(n_alt):
        off = int(ss.alt_offset[k])
        y_ref = ref_tracks[int(ss.alt_ref[k])][off : off + geo.cov]
        r, a = (int(x) for x in ss.alt_alleles[k])
        y_alt = align_alt(alt_tracks[k], geo.distance, r, a)
        if style == "veff" and y_alt.dtype != np.float32:
            y_alt = y_alt.astype(np.float32)
        ds[k], dp[k] = delta_scores(
            y_ref,
            y_alt,
            geo.distance,
            mask=mask,
            boundary=int(ss.alt_boundary[k]),
            sites=ss.alt_sites[k],
        )
    return ds, dp


def _rows(ss: SpliceSet, ds: np.ndarray, dp: np.ndarray) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for row in ss.rows:
        v = ss.variants[row.record]
        alt = v.alts[row.alt] if v.alts else "."
        t = row.transcript
        scored = row.row >= 0
        values: list[Any] = (
            [*ds[row.row].astype(np.float32).tolist(), *dp[row.row].tolist()] if scored else [None] * 8
        )
        out.append(
            (
                v.chrom,
                v.pos,
                v.id,
                v.ref,
                alt,
                "" if t is None else t.name,
                "" if t is None else t.transcript_id,
                str(row.status),
                *values,
            )
        )
    return out


def _write_vcf(writer: SpliceVcfWriter, ss: SpliceSet, ds: np.ndarray, dp: np.ndarray, style: str) -> None:
    per_record: list[list[str]] = [[] for _ in ss.variants]
    for row in ss.rows:
        if row.transcript is None:
            continue
        v = ss.variants[row.record]
        alt = v.alts[row.alt]
        scored = row.row >= 0
        if style == "spliceai" and not scored and row.status != Status.COMPLEX_NOT_SCORED:
            continue
        per_record[row.record].append(
            format_entry(
                alt,
                row.transcript.name,
                ds[row.row] if scored else None,
                dp[row.row] if scored else None,
                style,
            )
        )
    for i, (v, rec) in enumerate(zip(ss.variants, ss.records, strict=True)):
        writer.write(rec, v.alts, per_record[i], [str(s) for s in ss.statuses[i]])


def _api_command(model: Model, distance: int, mask: bool, style: str) -> str:
    return json.dumps(
        {"api": "veff.score_splice", "model": model.name, "distance": distance, "mask": mask, "style": style}
    )
