"""``score_variants``: the one place that knows the order of the stages.

A run is data (:class:`~veff.run.options.RunOptions`). :func:`execute` carries it out in five
steps, each a named stage of :mod:`veff.run.stages`:

1. :func:`~veff.run.stages.plan_run`: load the model, resolve the scores, fix the window length,
   batch size and output structure (:class:`~veff.run.stages.Plan`);
2. :func:`~veff.run.stages.open_sources`: the FASTA, the VCF reader and the stream of window
   chunks (a model may make its own windows, :meth:`veff.models.Model.window_source`);
3. :func:`~veff.run.stages.open_sinks`: the outputs (:class:`~veff.writers.sink.Sink`);
4. the chunk loop (:func:`stream_chunks`): each chunk goes to the
   :class:`~veff.run.stages.Predictor` (batches of a fixed size across chunk boundaries), and as its
   predictions come back the :class:`~veff.run.stages.ChunkWriter` scores it and hands it to every
   sink, in input order;
5. :func:`~veff.writers.sink.commit_all`: every output is finished, then all are renamed into place.

Reading and planning the next chunk runs in a background thread while the model works on the
current one, and once the forward passes take longer than the writing, scoring and writing run
in a second background thread; memory stays bounded by a few chunks whatever the size of the VCF.
Where the records come from and where the outputs go is the run's shard strategy
(:class:`~veff.run.hooks.ShardHook`; :class:`~veff.run.hooks.LocalHook` in one process).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from veff.engine.progress import DEFAULT_INTERVAL, ProgressBar
from veff.io.contigs import no_shared_contig
from veff.models import cpu_threads
from veff.run.hooks import LocalHook, ShardHook
from veff.run.options import RunOptions
from veff.run.stages import (
    ChunkWriter,
    Predictor,
    Scorer,
    check_run_outputs,
    log_setup,
    open_sinks,
    open_sources,
    plan_run,
    preflight,
    run_result,
)
from veff.run.summary import Summary, Tally
from veff.scoring.tracks import Aggregation
from veff.variants.regions import Centering
from veff.variants.shuffle import DEFAULT_NULL_CORE
from veff.variants.windows import DEFAULT_MAX_INDEL_LENGTH, WindowSet
from veff.writers.sink import Sink, abort_all, commit_all
from veff.writers.vcf import InfoAggregate, InfoStyle, OutputType

if TYPE_CHECKING:  # pandas is imported where frames are made (not at start-up)
    import pandas as pd

__all__ = ["Summary", "check_run_outputs", "execute", "score_variants", "stream_chunks"]


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
    batch_size: int | Literal["tune"] | None = None,
    threads: int | None = None,
    model_outputs: Sequence[str | int] | None = None,
    output_labels: Sequence[str] | None = None,
    output_layout: str | None = None,
    aggregate: str | Sequence[str] | Aggregation | None = None,
    output_offset: int | None = None,
    rc_swap_tasks: str | Sequence[Sequence[str | int]] | None = None,
    centering: Centering | None = None,
    ref_mismatch: str = "skip",
    max_indel_length: int = DEFAULT_MAX_INDEL_LENGTH,
    info_prefix: str | None = None,
    info_style: InfoStyle = "veff",
    info_aggregate: InfoAggregate | None = None,
    output_type: OutputType | None = None,
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
    calibration: str | os.PathLike[str] | None = None,
    force_calibration: bool = False,
    null: str | None = None,
    null_seed: int = 0,
    null_core: int = DEFAULT_NULL_CORE,
) -> Summary | dict[str, pd.DataFrame]:
    """Score the variants of a VCF with a sequence model.

    The arguments become one :class:`~veff.options.RunOptions` (checked there, each bad one
    an :class:`~veff.errors.InputError`), which :func:`execute` carries out.

    Parameters
    ----------
    model
        A path or model object (see :func:`veff.load_model`), or a list of them: an ensemble whose
        outputs are averaged (:class:`veff.models.ensemble.EnsembleModel`).
    vcf
        Input VCF, VCF.gz or BCF (streamed); ``-``: standard input (see :class:`veff.io.vcf.VcfReader`).
    fasta
        Reference FASTA (plain or BGZF).
    output
        Annotated VCF to write (``.vcf``, ``.vcf.gz`` with tabix index, ``.bcf``; ``-``: standard
        output, uncompressed VCF unless ``output_type``), or None.
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
        ``"tune"`` times a few sizes around the automatic one on the run's first batches and
        uses the fastest (reported on stderr and in the summary's ``batch``); its outputs are then
        not byte-stable across runs, and it is refused for sharded runs (see docs/performance.md).
    threads
        CPU threads of the model's framework during the run (:func:`veff.models.cpu_threads`;
        default: as it is). Also the threads of each worker of a local cluster (``workers``).
    model_outputs
        Output labels or indices to keep.
    output_labels
        Names of the model outputs, when the model does not name them (one per task).
    output_layout
        Layout of position-resolved outputs: ``"positions_first"`` ((N, P, T)) or
        ``"tasks_first"`` ((N, T, P), as bpnet-lite and OpenSpliceAI write them); None: what the
        model declares (attribute ``output_layout``), else positions first, with a warning when a
        shape suggests tasks first (see docs/models.md, "Output layout").
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
        INFO tag prefix (default ``VEFF_<model name>``, or ``KV_<model name>`` in kipoi style).
    info_style
        ``veff`` or ``kipoi``.
    info_aggregate
        ``max_abs``: the VCF gets, per score and ALT, only the output with the largest magnitude
        and its label (``ALLELE|value|label``); the table still has every output.
    output_type
        ``v`` (VCF), ``z`` (bgzipped VCF), ``b`` (BCF) or ``u`` (uncompressed BCF), as bcftools'
        ``-O``: the output's type when its suffix does not say (or to override it); None: by suffix.
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
    calibration
        A calibration file (``veff calibrate``, :func:`veff.calibrate`): add, per score ``s``,
        ``s_pctl`` and ``s_spctl``, the percentiles of ``|s|`` and of ``s`` among its background
        (see docs/scores.md, "Calibrated scores"). Refused when made with other options or another
        model, unless ``force_calibration``.
    force_calibration
        Use a calibration made with other options (a warning lists the differences).
    null
        ``dinuc-shuffle:N``: also score every ALT in N dinucleotide-shuffled copies of its window
        and add ``s_null_z`` and ``s_null_p`` (z-score, empirical two-sided p-value) per score.
        The forward passes grow about N + 1 fold.
    null_seed
        Seed of the shuffles (each ALT's shuffles are seeded from it and the ALT's key).
    null_core
        Bases kept in place around the variant in the null windows (the REF allele with
        ``(K-1)//2`` bases before and ``K//2`` after it; see :mod:`veff.variants.shuffle`).

    Returns
    -------
    Summary or dict of pandas.DataFrame
    """
    opts = RunOptions(
        model=model,
        vcf=vcf,
        fasta=fasta,
        output=output,
        scores=scores,
        score_kwargs=score_kwargs,
        rc=rc,
        seq_length=seq_length,
        restriction_bed=restriction_bed,
        regions=regions,
        regions_file=regions_file,
        batch_size=batch_size,
        threads=threads,
        model_outputs=model_outputs,
        output_labels=output_labels,
        output_layout=output_layout,
        aggregate=aggregate,
        output_offset=output_offset,
        rc_swap_tasks=rc_swap_tasks,
        centering=centering,
        # a str in the signature (as it always was); RunOptions checks the value
        ref_mismatch=ref_mismatch,  # type: ignore[arg-type]
        max_indel_length=max_indel_length,
        info_prefix=info_prefix,
        info_style=info_style,
        info_aggregate=info_aggregate,
        output_type=output_type,
        table=table,
        dump_sequences=dump_sequences,
        return_predictions=return_predictions,
        summary_json=summary_json,
        progress=progress,
        progress_interval=progress_interval,
        command=command,
        model_kwargs=model_kwargs,
        dataloader_args=dataloader_args,
        client=client,
        workers=workers,
        scheduler=scheduler,
        work_dir=work_dir,
        shard_records=shard_records,
        calibration=calibration,
        force_calibration=force_calibration,
        null=null,
        null_seed=null_seed,
        null_core=null_core,
    )
    return execute(opts)


def stream_chunks(chunks: Iterable[WindowSet], predictor: Predictor, writer: ChunkWriter) -> None:
    """The chunk loop: predict each chunk, and write the chunks in order as their predictions arrive."""
    pending: deque[WindowSet] = deque()  # chunks queued on the predictor, in VCF order
    for ws in chunks:
        predictor.submit(ws)
        pending.append(ws)
        while pending and predictor.ready():
            writer.put(pending.popleft(), predictor.take())
    predictor.flush()
    while pending:
        writer.put(pending.popleft(), predictor.take())
    writer.close()


def execute(opts: RunOptions, hook: ShardHook | None = None) -> Summary | dict[str, pd.DataFrame]:
    """Carry out a run (see the module docstring); what :func:`score_variants` returns.

    ``hook`` is the shard strategy (default :class:`LocalHook`); a sharded run (``opts.sharded``)
    without one goes to :func:`veff.distributed.driver.score_distributed`.
    """
    if hook is None:  # a run of its own (not a shard, not the merge of a sharded run)
        preflight(opts)
        if opts.sharded:
            from veff.distributed.driver import score_distributed

            return score_distributed(opts)
    strategy: ShardHook = hook or LocalHook()
    t0 = time.perf_counter()
    tally = Tally()
    stages: dict[str, float] = {}
    predictor: Predictor | None = None

    def summarise() -> Summary:
        output = None if opts.output is None else str(opts.output)
        summary = tally.summary(time.perf_counter() - t0, output, stages)
        summary.batch = None if predictor is None else predictor.batch_report()
        strategy.annotate(summary)
        return summary

    plan = plan_run(opts, strategy)
    stages.update(plan.seconds)
    sources = open_sources(opts, plan, strategy)
    sinks: list[Sink] = []
    bar: ProgressBar | None = None
    writer = None
    complete = False
    try:
        bar = strategy.progress(opts, sources.reader)
        if strategy.part is None:
            log_setup(plan, sources.reader, plan.threads)
        sinks = open_sinks(opts, plan, sources.reader, strategy.part, summarise)
        with cpu_threads(plan.threads, None if opts.threads else plan.model.framework):
            predictor = Predictor(plan)
            writer = ChunkWriter(Scorer(plan, opts.aggregation), sinks, tally, bar, predictor)
            stream_chunks(sources.chunks, predictor, writer)
            strategy.merge(sinks, tally)
            if strategy.part is None and tally.no_contig_found():
                raise no_shared_contig(
                    opts.vcf, tally.unknown_contigs or sources.reader.contigs, sources.fasta
                )
            stages["forward"] = predictor.forward_seconds
            stages["write"] = writer.seconds  # in this thread; with a background writer, overlapped
            t_finish = time.perf_counter()
            commit_all(sinks)
            stages["finish_outputs"] = time.perf_counter() - t_finish
        complete = True
    except BaseException:
        if writer is not None:
            writer.stop()  # before the sinks go: it may be writing to them
        abort_all(sinks)
        raise
    finally:
        if bar is not None:  # a bar stopped part way does not claim 100 %
            bar.close() if complete else bar.stop()
        sources.close()
    summary = summarise()
    if strategy.part is None:
        tally.warn_unscored(opts.fasta)
    strategy.finished(summary)
    return run_result(opts, plan, sinks, summary)
