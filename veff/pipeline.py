"""``score_variants``: the one place that knows the order of the stages.

VCF records are read in chunks; for each chunk the windows are planned (reading the FASTA and
checking alleles), predicted in shared batches, scored, and written in input order. Reading and
planning the next chunk runs in a background thread while the model works on the current one,
so memory stays bounded by a few chunks whatever the size of the VCF.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import pandas as pd

from veff._version import __version__
from veff.engine.batching import (
    BatchStream,
    Predictions,
    auto_batch_size,
    probe_outputs,
    submit_pairs,
    take_pairs,
)
from veff.engine.outputs import select_columns
from veff.engine.progress import DEFAULT_INTERVAL, progress_bar
from veff.engine.threads import BackgroundWorker, prefetch
from veff.errors import InputError
from veff.io.bed import BedIndex
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader, count_alleles
from veff.io.vcf_regions import RegionSet
from veff.models import Model, WindowRequest, cpu_threads, load_model, sanitize_name
from veff.scoring.apply import score_predictions
from veff.scoring.registry import ScoreJob, resolve_score_jobs
from veff.scoring.tracks import Aggregation
from veff.types import SCORED_STATUSES, Status, Variant
from veff.variants.regions import Centering
from veff.variants.windows import DEFAULT_MAX_INDEL_LENGTH, WindowBuilder, WindowSet
from veff.writers.predictions import PredictionCollector
from veff.writers.seqdump import SeqDumpWriter
from veff.writers.sink import ScoredChunk, Sink, abort_all, commit_all
from veff.writers.summary import SummaryJson
from veff.writers.table import open_table, table_format
from veff.writers.vcf import InfoAggregate, InfoStyle, VcfWriter

__all__ = ["Summary", "score_variants"]

log = logging.getLogger("veff")
summary_log = logging.getLogger("veff.summary")  # the run's one-line summary (shown by default)
# bytes of one-hot input per chunk (with rc): about 2,600 records for 101-bp windows, 260 for 1 kb
# ones, so that reading the next chunk overlaps this one's forward passes, and the last chunk's
# writing (which nothing overlaps) stays short; batches do not depend on it (BatchStream)
_MEMORY_BUDGET = 16 * 2**20
_BACKGROUND_AFTER_SECONDS = 1.0  # forward time after which the first chunk is written in the background


@dataclass
class Summary:
    """What a run did.

    Attributes
    ----------
    records
        VCF records read (and written).
    alleles
        ALT alleles seen.
    scored
        ALT alleles scored.
    statuses
        Count of ALT alleles per status.
    seconds
        Wall time.
    output
        Output path, if any.
    timings
        Seconds per stage: ``load_model``, ``probe_outputs``, ``forward`` (the model's calls),
        ``write`` (scoring and writing in the main thread), ``finish_outputs`` (compressing the
        tail, indexing, renaming), ``total``.
    distributed
        For a sharded run (:mod:`veff.distributed.driver`): shards, worker threads, and the seconds spent
        planning the shards and merging their parts.
    """

    records: int = 0
    alleles: int = 0
    scored: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str | None = None
    distributed: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """One-line human summary."""
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        rate = self.records / self.seconds if self.seconds else 0.0
        return (
            f"veff: {self.records} records, {self.alleles} ALT alleles, {self.scored} scored "
            f"({parts}) in {self.seconds:.1f} s ({rate:.0f} records/s)"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "records": self.records,
            "alleles": self.alleles,
            "scored": self.scored,
            "statuses": dict(sorted(self.statuses.items())),
            "seconds": round(self.seconds, 3),
            "output": self.output,
            "veff_version": __version__,
        } | ({"distributed": self.distributed} if self.distributed is not None else {})


def _chunks(reader: VcfReader, size: int) -> Iterator[tuple[list[Variant], list[Any]]]:
    it = iter(reader)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield [v for v, _ in block], [r for _, r in block]


def _read_chunks(reader: VcfReader, builder: WindowBuilder, chunk: int) -> Iterator[WindowSet]:
    for variants, records in _chunks(reader, chunk):
        yield builder.build(variants, records)


def _run_sequences(vcf: str | os.PathLike[str], rc: bool, select: RegionSet | None) -> int | None:
    """Sequences a small VCF's whole run predicts (None when it is not small); the same in every shard."""
    alleles = count_alleles(vcf, 4096, select)
    return None if alleles is None else alleles * (2 if rc else 1)


def score_variants(
    model: Any,
    vcf: str | os.PathLike[str],
    fasta: str | os.PathLike[str],
    output: str | os.PathLike[str] | None = None,
    *,
    scores: Sequence[str | Callable[..., Any]] | None = None,
    score_kwargs: Sequence[dict[str, Any]] | None = None,
    rc: bool | None = None,
    seq_length: int | None = None,
    restriction_bed: str | os.PathLike[str] | None = None,
    regions: str | Sequence[str] | None = None,
    regions_file: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    model_outputs: Sequence[str | int] | None = None,
    output_labels: Sequence[str] | None = None,
    aggregate: str | Sequence[str] | Aggregation | None = None,
    output_offset: int | None = None,
    rc_swap_tasks: str | Sequence[Sequence[str | int]] | None = None,
    centering: Centering | None = None,
    ref_mismatch: str = "skip",
    max_indel_length: int = DEFAULT_MAX_INDEL_LENGTH,
    info_prefix: str | None = None,
    info_style: InfoStyle = "veff",
    info_aggregate: InfoAggregate | None = None,
    table: str | os.PathLike[str] | None = None,
    dump_sequences: str | os.PathLike[str] | None = None,
    return_predictions: bool = False,
    progress: bool = False,
    progress_interval: float = DEFAULT_INTERVAL,
    command: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    dataloader_args: str | os.PathLike[str] | dict[str, Any] | Sequence[str] | None = None,
    client: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    shard_records: int | None = None,
    summary_json: str | os.PathLike[str] | None = None,
    _shard: Any = None,
) -> Summary | dict[str, pd.DataFrame]:
    """Score the variants of a VCF with a sequence model.

    Parameters
    ----------
    model
        A path or model object (see :func:`veff.load_model`).
    vcf
        Input VCF, VCF.gz or BCF (streamed).
    fasta
        Reference FASTA (plain or BGZF).
    output
        Annotated VCF to write (``.vcf``, ``.vcf.gz`` with tabix index, ``.bcf``), or None.
    scores
        Score names from :data:`veff.SCORES` (or a Kipoi model's own score labels) or callables;
        None: the model's default scores (Kipoi model directories), else ``diff``.
    score_kwargs
        One dict per score (e.g. ``{"rc_merging": "max"}``), or one for all.
    rc
        Also score reverse complements; None means "as the model declares".
    seq_length
        Window length L (default: the model's input length).
    restriction_bed
        BED of intervals that windows must lie inside.
    regions
        Score only the records that overlap these regions, ``"chr:start-end[,...]"`` (1-based,
        inclusive) or a list of such texts, as ``bcftools view -r``; the others are not written
        (:mod:`veff.io.vcf_regions`). Read through the VCF's index when it has one.
    regions_file
        The same from a file: BED (``.bed``/``.bed.gz``) or ``CHROM POS``/``CHROM START END``
        1-based, as ``bcftools view -R``.
    batch_size
        Sequences per forward call (reference, alternative and rc copies included); None picks
        one from the window length (:func:`veff.engine.batching.auto_batch_size`). Every call has exactly
        this many: the last batch is padded, so results do not depend on how the VCF is cut.
    threads
        CPU threads of the model's framework during the run (:func:`veff.models.cpu_threads`;
        default: as it is). Also the threads of each worker of a local cluster (``workers``).
    model_outputs
        Output labels or indices to keep.
    output_labels
        Names of the model outputs, when the model does not name them (one per task).
    aggregate
        How position-resolved outputs are reduced to one value per task, e.g. ``"max_abs"``
        (default), ``"window:50 max_abs"``, ``"at_variant"`` (:class:`veff.engine.outputs.Aggregation`).
    output_offset
        Input index seen by output position 0 of position-resolved outputs (default: centred).
    rc_swap_tasks
        Strand-specific tasks that trade places on the reverse complement, ``"plus:minus"`` or
        ``[("plus", "minus")]`` (labels or 0-based indices); default: the model's
        ``rc_swap_tasks`` attribute (:meth:`veff.engine.outputs.OutputSpec.with_rc_swap`).
    centering
        ``exact`` (variant at index ``(L-1)//2``) or ``kipoi`` (``L//2-1``); None: ``kipoi`` for
        Kipoi model directories, else ``exact``.
    ref_mismatch
        ``skip`` or ``score`` ALTs of records whose REF disagrees with the FASTA.
    max_indel_length
        Longest indel scored.
    info_prefix
        INFO tag prefix (default ``VEFF_<model name>``, or ``KV:<model name>`` in kipoi style).
    info_style
        ``veff`` or ``kipoi``.
    info_aggregate
        ``max_abs``: the VCF gets, per score and ALT, only the output with the largest magnitude
        and its label (``ALLELE|value|label``); the table still has every output.
    table
        Table of every (record, ALT) and every model output (``model_outputs`` applies to the
        VCF and ``return_predictions`` only): ``.tsv``, ``.tsv.gz``, ``.parquet`` or ``.h5``,
        written as the run streams (see :mod:`veff.writers.table`).
    dump_sequences
        HDF5 file for the model inputs (ref, alt and rc windows in the model's layout) of every
        scored ALT; the model is not run, so give no ``output``, ``table`` or
        ``return_predictions`` with it (see :mod:`veff.writers.seqdump`).
    return_predictions
        Return ``{score: DataFrame}`` (rows ``chrom:pos:ref:alt`` of scored ALTs, columns the
        output labels) instead of the summary.
    progress
        Show progress on stderr: a bar with a total and an ETA on a terminal (the total from the
        VCF's index, else estimated from the bytes read), else a plain line every
        ``progress_interval`` seconds (:mod:`veff.engine.progress`).
    progress_interval
        Seconds between plain progress lines when stderr is not a terminal.
    command
        Command line recorded in the output header.
    model_kwargs
        Extra arguments for :func:`veff.load_model` (``device``, ``precision``, ``weights``...).
    dataloader_args
        Arguments of a Kipoi model directory's own dataloader (a dict, a JSON object, a JSON/YAML
        file or ``key=value`` tokens); such models are scored in the regions their dataloader
        returns (see :mod:`veff.models.kipoi.windows`).
    client
        A ``dask.distributed.Client``: shard the VCF by region and score the shards on its
        cluster; the outputs are the same bytes as without (see :mod:`veff.distributed.driver`). Needs
        an indexable (sorted) VCF; paths must be visible to the workers.
    workers
        Start a local Dask cluster of this many worker processes (loopback only) and score on it.
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``) to score on.
    work_dir
        Folder for the shards' part files (and an index of an unindexed VCF), shared with the
        workers; default: beside the output. A temporary folder inside it is removed at the end.
    shard_records
        Records per shard (default: enough shards to give every worker thread several).
    summary_json
        Also write the run summary (:meth:`Summary.to_dict`) to this JSON file; it is committed
        with the other outputs.
    _shard
        Internal: one shard of a sharded run, or its merge (:mod:`veff.distributed.driver`).

    Returns
    -------
    Summary or dict of pandas.DataFrame
    """
    call = dict(locals())
    t0 = time.perf_counter()
    if dump_sequences is not None and (output is not None or table is not None or return_predictions):
        msg = "dump_sequences runs no model: give it without an output VCF, a table or return_predictions"
        raise InputError(msg)
    if output is None and table is None and dump_sequences is None and not return_predictions:
        msg = "nothing to do: give an output VCF, a table, dump_sequences or return_predictions=True"
        raise InputError(msg)
    if table is not None:
        table_format(table)
    if ref_mismatch not in ("skip", "score"):
        msg = f"ref_mismatch must be 'skip' or 'score', got {ref_mismatch!r}"
        raise InputError(msg)
    if threads is not None and threads < 1:
        msg = f"threads must be at least 1, got {threads}"
        raise InputError(msg)
    if batch_size is not None and batch_size < 1:
        msg = f"batch_size must be at least 1, got {batch_size}"
        raise InputError(msg)
    if (
        info_prefix is not None
        and info_style == "veff"
        and not re.fullmatch(r"[A-Za-z_][0-9A-Za-z_.]*", info_prefix)
    ):
        msg = (
            f"info prefix {info_prefix!r} is not a valid VCF INFO key start; use letters, digits, '_' and '.'"
        )
        raise InputError(msg)
    select = RegionSet.from_options(regions, regions_file)
    if _shard is None and (client is not None or workers is not None or scheduler is not None):
        from veff.distributed.driver import score_distributed

        return score_distributed(call)
    stages: dict[str, float] = {}
    t_stage = time.perf_counter()
    mdl = load_model(model, seq_length=seq_length, output_labels=output_labels, **(model_kwargs or {}))
    stages["load_model"] = time.perf_counter() - t_stage
    jobs = resolve_score_jobs(mdl.resolve_scores(scores), score_kwargs)
    length = seq_length or mdl.seq_length
    if not length:
        msg = f"model {mdl.name!r} does not fix its input length; give seq_length (--seq-length)"
        raise InputError(msg)
    use_rc = mdl.default_rc if rc is None else rc
    batch = batch_size or auto_batch_size(
        length, _run_sequences(vcf, use_rc, select), mdl.accelerator, mdl.activation_floats(length)
    )
    ref = Fasta(fasta) if _shard is None else _shard.fasta(fasta)
    restriction = BedIndex.from_bed(restriction_bed) if restriction_bed else None
    reader = VcfReader(vcf, select=select) if _shard is None else _shard.reader(vcf)
    reader.select = select
    agg = Aggregation.parse(aggregate)
    probe = probe_outputs if _shard is None else _shard.probe  # a worker probes a model once
    t_stage = time.perf_counter()
    spec = None if dump_sequences is not None else probe(mdl, length, offset=output_offset)
    stages["probe_outputs"] = time.perf_counter() - t_stage
    all_labels = [] if spec is None else spec.labels(mdl.output_labels)
    if spec is not None:
        spec = spec.with_rc_swap(rc_swap_tasks or mdl.declared("rc_swap_tasks"), all_labels)
    columns = select_columns(all_labels, model_outputs) if spec is not None else None
    labels = all_labels if columns is None else [all_labels[k] for k in columns]
    builder = WindowBuilder(
        ref,
        length,
        centering=centering or mdl.default_centering,
        restriction=restriction,
        ref_mismatch=ref_mismatch,  # type: ignore[arg-type]
        max_indel_length=max_indel_length,
    )
    writer = None
    if output is not None:
        default_prefix = ("KV:" if info_style == "kipoi" else "VEFF_") + sanitize_name(mdl.name)
        writer = VcfWriter(
            reader.vcf,
            output,
            scores=[j.name for j in jobs],
            labels=labels,
            prefix=info_prefix or default_prefix,
            style=info_style,
            header_lines=[
                f"##veff_version={__version__}",
                f"##veff_command={command or _api_command(mdl, jobs, use_rc, length)}",
            ],
            descriptions={j.name: j.score.description for j in jobs},
            aggregate=info_aggregate,
            columns=None if columns is None else columns.tolist(),
            **(_shard.vcf_options if _shard is not None else {}),
        )
    try:
        table_writer = (
            None
            if table is None
            else (open_table if _shard is None else _shard.open_table)(
                table, scores=[j.name for j in jobs], labels=all_labels
            )
        )
        dumper = (
            None
            if dump_sequences is None
            else SeqDumpWriter(dump_sequences, model=mdl, seq_length=length, rc=use_rc)
        )
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    # finished in this order; the VCF first, as indexing it is what most often fails at the end
    sinks: list[Sink] = [w for w in (writer, table_writer, dumper) if w is not None]
    summary = Summary(output=str(output) if output else None)
    counts: Counter[str] = Counter()
    collector = (
        PredictionCollector([j.name for j in jobs], labels, None if columns is None else columns.tolist())
        if return_predictions
        else None
    )
    if collector is not None:
        sinks.append(collector)
    if summary_json is not None:
        sinks.append(SummaryJson(summary_json, lambda: _final(summary, counts, t0, _shard, stages).to_dict()))
    chunk = max(16, min(4096, _MEMORY_BUDGET // (length * 16 * (4 if use_rc else 2))))
    if _shard is None:
        bar = progress_bar(
            bool(progress),
            unit="variants",
            total=reader.indexed_records() if select is None else None,
            size=reader.size,
            position=reader.bytes_read,
            interval=progress_interval,
        )
    else:
        bar = _shard.progress_bar(progress)
    if _shard is None or not _shard.part:
        _log_setup(mdl, reader, length, batch, chunk, use_rc, threads)
    limited = cpu_threads(threads)
    limited.__enter__()
    background: BackgroundWorker[tuple[WindowSet, Predictions | None]] | None = None
    names = [j.name for j in jobs]
    chunks: Iterator[WindowSet] = iter(())
    try:
        from_dataloader = mdl.window_source(
            WindowRequest(vcf, reader, builder, chunk, fasta, dataloader_args, ref_mismatch)
        )
        if from_dataloader is not None and _shard is not None:
            msg = f"model {mdl.name!r} runs its own dataloader, which is not sharded; run it in one process"
            raise InputError(msg)
        stream = None if spec is None else BatchStream(mdl, batch, rc=use_rc)
        pending: deque[WindowSet] = deque()  # chunks queued on the stream, in VCF order

        def emit(item: tuple[WindowSet, Predictions | None]) -> None:  # in the writer thread
            ws, p = item
            scored = ScoredChunk.unscored(ws, names, len(all_labels))
            if p is not None and spec is not None and len(ws.alt_ref):
                p = p.paired(ws.alt_ref)
                values = score_predictions(jobs, spec, agg, p.ref, p.alt, p.ref_rc, p.alt_rc, ws.alt_geometry)
                scored = ScoredChunk(ws, values)
            for sink in sinks:
                sink.write_scored(scored)
            for sts in ws.statuses:
                counts.update(map(str, sts))
            summary.records += len(ws)
            bar.update(len(ws))

        emit_seconds = 0.0

        def finish(ws: WindowSet) -> None:
            # Writing moves to a background thread once the forward passes take longer than it
            # (or, before any writing was timed, over a second): big models then write while they
            # compute; for cheap models the thread's GIL hand-offs would cost more than they hide.
            nonlocal background, emit_seconds
            item = (ws, None if stream is None else take_pairs(stream))
            if (
                background is None
                and stream is not None
                and (stream.forward_seconds > (emit_seconds or _BACKGROUND_AFTER_SECONDS))
            ):
                background = BackgroundWorker(emit)
            if background is not None:
                background.put(item)
                return
            t = time.perf_counter()
            emit(item)
            emit_seconds += time.perf_counter() - t

        chunks = from_dataloader or prefetch(_read_chunks(reader, builder, chunk))
        for ws in chunks:
            if stream is not None:
                submit_pairs(stream, ws.ref_codes, ws.alt_codes, ws.extra_inputs, ws.alt_ref)
            pending.append(ws)
            while pending and (stream is None or stream.ready()):
                finish(pending.popleft())
        if stream is not None:
            stream.flush()
        while pending:
            finish(pending.popleft())
        if background is not None:
            background.close()
        if _shard is not None:  # a sharded run: the driver appends the shards' parts here
            _shard.merge(writer, table_writer, summary, counts, collector)
        stages["forward"] = stream.forward_seconds if stream is not None else 0.0
        stages["write"] = emit_seconds  # in this thread; with a background writer, overlapped
        t_stage = time.perf_counter()
        commit_all(sinks)
        stages["finish_outputs"] = time.perf_counter() - t_stage
    except BaseException:
        if background is not None:
            background.stop()  # before the sinks go: it may be writing to them
        abort_all(sinks)
        raise
    finally:
        if isinstance(chunks, Generator):
            chunks.close()  # the reader thread stops before the reader closes
        limited.__exit__(None, None, None)
        bar.close()
        reader.close()
        ref.close()
    _final(summary, counts, t0, _shard, stages)
    if _shard is not None:
        _shard.summary = summary
    if _shard is None or not _shard.part:
        log.info("timings (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in summary.timings.items()))
        summary_log.info(summary.line())
    if collector is not None:
        return collector.frames()
    return summary


def _final(
    summary: Summary, counts: Counter[str], t0: float, shard: Any, stages: dict[str, float]
) -> Summary:
    """Fill in the totals and the times of a run (when it ends, or for its summary file)."""
    summary.statuses = dict(counts)
    summary.alleles = sum(counts.values()) - counts.get(str(Status.NO_ALT), 0)
    summary.scored = sum(v for k, v in counts.items() if Status(k) in SCORED_STATUSES)
    summary.seconds = time.perf_counter() - t0
    summary.timings = {k: round(v, 3) for k, v in stages.items()} | {"total": round(summary.seconds, 3)}
    if shard is not None and getattr(shard, "timings", None) is not None:
        summary.distributed = shard.timings
    return summary


def _log_setup(
    mdl: Model, reader: VcfReader, length: int, batch: int, chunk: int, rc: bool, threads: int | None
) -> None:
    """Log what the run uses (info level)."""
    torch = sys.modules.get("torch")
    running = threads or (torch.get_num_threads() if torch is not None else os.cpu_count())
    log.info("model: %s (%s), window length %d, reverse complement %s", mdl.name, mdl.framework, length, rc)
    log.info(
        "batch size %d sequences, chunk %d records, device %s, threads %s",
        batch,
        chunk,
        getattr(mdl, "device", "cpu"),
        running,
    )
    log.info("input: %s", reader.path)


def _api_command(model: Model, jobs: list[ScoreJob], rc: bool, length: int) -> str:
    return json.dumps(
        {
            "api": "veff.score_variants",
            "model": model.name,
            "scores": [j.name for j in jobs],
            "rc": rc,
            "seq_length": length,
        }
    )
