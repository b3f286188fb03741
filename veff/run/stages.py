"""The stages of a run, each with a typed input and output (their order is :mod:`veff.pipeline`'s).

:func:`plan_run` (options -> :class:`Plan`), :func:`open_sources` (-> :class:`Sources`: the FASTA, the
reader and the window chunks), :func:`open_sinks` (-> the outputs), :class:`Predictor` (windows ->
predictions, in batches of a fixed size across chunks), :class:`Scorer` (predictions ->
:class:`~veff.writers.sink.ScoredChunk`) and :class:`ChunkWriter` (scored chunks -> every sink, in a
background thread once the forward passes are slow).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np

from veff._version import __version__
from veff.engine.batching import (
    TUNE_ROUNDS,
    BatchStream,
    BatchTuning,
    Predictions,
    model_batch_size,
    model_threads,
    submit_pairs,
    take_pairs,
    tune_candidates,
)
from veff.engine.outputs import OutputSpec, select_columns
from veff.engine.progress import ProgressBar
from veff.engine.threads import BackgroundWorker, prefetch
from veff.errors import InputError
from veff.io.bed import BedIndex
from veff.io.contigs import check_same_build
from veff.io.fasta import Fasta
from veff.io.vcf import STDIN, VcfReader, count_alleles
from veff.io.vcf_regions import RegionSet
from veff.models import Model, WindowRequest, sanitize_name
from veff.run.hooks import ShardHook
from veff.run.options import RunOptions
from veff.run.record import run_record
from veff.run.summary import Summary, Tally
from veff.scoring.apply import score_predictions
from veff.scoring.calibration import run_options
from veff.scoring.extras import ScoreExtras
from veff.scoring.registry import ScoreJob, resolve_score_jobs
from veff.scoring.tracks import Aggregation
from veff.types import Status
from veff.variants.windows import WindowBuilder, WindowSet
from veff.writers.calibration import read_calibration
from veff.writers.predictions import PredictionCollector
from veff.writers.seqdump import SeqDumpWriter
from veff.writers.sink import PartFiles, ScoredChunk, Sink, abort_all
from veff.writers.summary import SummaryJson
from veff.writers.table import open_table, open_table_part
from veff.writers.targets import check_outputs, writing
from veff.writers.vcf import STDOUT, VcfWriter

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ChunkWriter",
    "check_run_outputs",
    "preflight",
    "run_result",
    "log_setup",
    "mark_nonfinite",
    "Plan",
    "Predictor",
    "Scorer",
    "Sources",
    "open_sinks",
    "open_sources",
    "plan_run",
]

log = logging.getLogger("veff")
summary_log = logging.getLogger("veff.summary")  # lines shown by default (hidden by --quiet)
# bytes of one-hot input per chunk (with rc): about 2,600 records for 101-bp windows, 260 for 1 kb
# ones, so that reading the next chunk overlaps this one's forward passes, and the last chunk's
# writing (which nothing overlaps) stays short; batches do not depend on it (BatchStream)
_MEMORY_BUDGET = 16 * 2**20
_BACKGROUND_AFTER_SECONDS = 1.0  # forward time after which the first chunk is written in the background


@dataclass(frozen=True)
class Plan:
    """What a run fixes before it reads a record.

    Attributes
    ----------
    model
        The loaded model.
    jobs
        The scores, in order.
    length
        Window length L.
    rc
        Whether reverse complements are scored.
    batch_size
        Sequences per forward call (with :attr:`tune`, the automatic choice the candidates
        surround).
    chunk
        Records per chunk.
    spec
        Structure of the model's outputs; None when no model runs (``dump_sequences``).
    labels
        Labels of every model output (T).
    columns
        Indices of the outputs the VCF and ``return_predictions`` keep (``model_outputs``); None: all.
    seconds
        Time taken to ``load_model`` and ``probe_outputs``.
    extras
        Columns derived from the scores: percentiles against ``calibration``, null-model
        statistics (:mod:`veff.scoring.extras`).
    run_options
        The options a calibration records and checks (:func:`veff.scoring.calibration.run_options`),
        when the run has a calibration or ``record_options``; else None.
    tune
        The batch sizes ``batch_size="tune"`` times on the run's first batches
        (:func:`veff.engine.batching.tune_candidates`); empty when the run is too small to time
        them (it uses :attr:`batch_size`); None without ``tune``.
    features
        Whether the rows carry a feature (:class:`~veff.types.RowKey`): a per-feature score (per
        gene or transcript) gives an ALT one row per feature, and the sinks open with a feature
        column. No built-in score does yet; such a score sets it here and gives its rows in
        :meth:`Scorer.__call__` (:class:`~veff.writers.sink.ScoredChunk` ``slots`` and ``features``).
    threads
        CPU threads of the model's framework during the run: the ``threads`` option, else 1 for a
        cheap model (:func:`veff.engine.batching.model_threads`), else None (as they are).
    """

    model: Model
    jobs: list[ScoreJob]
    length: int
    rc: bool
    batch_size: int
    chunk: int
    spec: OutputSpec | None
    labels: list[str]
    columns: list[int] | None
    seconds: dict[str, float]
    extras: ScoreExtras
    run_options: dict[str, object] | None = None
    features: bool = False
    tune: tuple[int, ...] | None = None
    threads: int | None = None

    @property
    def scores(self) -> list[str]:
        """Score names, in order: the run's scores, then the derived ones (:attr:`extras`)."""
        return [j.name for j in self.jobs] + self.extras.names()

    @property
    def per_alt(self) -> list[str]:
        """Derived columns with one value per ALT (:meth:`ScoreExtras.per_alt_names`)."""
        return self.extras.per_alt_names()

    @property
    def kept_labels(self) -> list[str]:
        """Labels of the outputs in :attr:`columns`."""
        return self.labels if self.columns is None else [self.labels[k] for k in self.columns]


def plan_run(opts: RunOptions, hook: ShardHook) -> Plan:
    """Load the model and fix what the run needs before reading records."""
    t0 = time.perf_counter()
    mdl = hook.load_model(opts)
    seconds = {"load_model": time.perf_counter() - t0}
    jobs = resolve_score_jobs(mdl.resolve_scores(opts.scores), opts.score_kwargs)
    length = opts.seq_length or mdl.seq_length
    if not length:
        msg = f"model {mdl.name!r} does not fix its input length; give seq_length (--seq-length)"
        raise InputError(msg)
    use_rc = mdl.default_rc if opts.rc is None else opts.rc
    run_seqs = _run_sequences(opts.vcf, use_rc, opts.select)
    auto = model_batch_size(
        mdl,
        length,
        None if run_seqs is None else run_seqs * (1 + opts.n_null),  # a null adds a ref and an alt
    )
    batch = auto if opts.batch_size in (None, "tune") else int(opts.batch_size)
    tune: tuple[int, ...] | None = None
    if opts.batch_size == "tune":
        tune = () if run_seqs is not None else tune_candidates(auto)
        per_allele = (2 if use_rc else 1) * (1 + opts.n_null)  # sequences per REF or ALT allele
        need = -(-TUNE_ROUNDS * sum(tune) // per_allele)  # alleles for two full batches of each size
        if tune and count_alleles(opts.vcf, need, opts.select) is not None:
            tune = ()  # the run would end before every size is timed
        if not tune:
            summary_log.info(
                "veff: --batch-size tune: too few sequences to time; using the automatic %d", auto
            )
    t0 = time.perf_counter()
    spec = None if opts.dump_sequences is not None else hook.probe(mdl, length, opts.output_offset)
    seconds["probe_outputs"] = time.perf_counter() - t0
    labels = [] if spec is None else spec.labels(mdl.output_labels)
    columns = None
    if spec is not None:
        spec = spec.with_rc_swap(opts.rc_swap_tasks or mdl.declared("rc_swap_tasks"), labels)
        selected = select_columns(labels, opts.model_outputs)
        columns = None if selected is None else selected.tolist()
    chunk = max(16, min(4096, _MEMORY_BUDGET // (length * 16 * (4 if use_rc else 2) * (1 + opts.n_null))))
    options, calibration = None, None
    if spec is not None and (opts.calibration is not None or opts.record_options):
        centring = opts.centering or mdl.default_centering
        weights = (opts.model_kwargs or {}).get("weights")
        options = run_options(opts.model, mdl, jobs, spec, use_rc, opts.aggregation, centring, weights)
        if opts.calibration is not None:
            calibration = read_calibration(opts.calibration)
            for diff in calibration.check(
                options, [j.name for j in jobs], labels, force=opts.force_calibration
            ):
                log.warning("%s: used with other options (%s)", opts.calibration, diff)
    extras = ScoreExtras(
        jobs,
        labels,
        calibration,
        opts.n_null,
        opts.null_seed,
        opts.null_core,
        spec,
        opts.aggregation,
        columns,
    )
    if calibration is not None and not extras.value_percentiles:
        log.warning(
            "%s: its largest-magnitude distribution is over the outputs %s, the VCF carries %s: no "
            "percentile of the numeric tags (_VALUE_PCTL); calibrate with --model-outputs %s for it",
            opts.calibration,
            ",".join(calibration.max_abs_labels),
            ",".join(extras.kept_labels),
            ",".join(extras.kept_labels),
        )
    return Plan(
        mdl,
        jobs,
        length,
        use_rc,
        batch,
        chunk,
        spec,
        labels,
        columns,
        seconds,
        extras,
        options,
        tune=tune,
        threads=opts.threads or model_threads(mdl, length),
    )


def log_setup(plan: Plan, reader: VcfReader, threads: int | None) -> None:
    """Log what the run uses (info level)."""
    mdl = plan.model
    torch = sys.modules.get("torch")
    running = threads or (torch.get_num_threads() if torch is not None else os.cpu_count())
    log.info(
        "model: %s (%s), window length %d, reverse complement %s",
        mdl.name,
        mdl.framework,
        plan.length,
        plan.rc,
    )
    log.info(
        "batch size %d sequences, chunk %d records, device %s, threads %s",
        plan.batch_size,
        plan.chunk,
        getattr(mdl, "device", "cpu"),
        running,
    )
    if getattr(mdl, "wide_convs", False):
        log.info("wide convolutions (kernel >= 20 over >= 16 channels): veff's faster CPU kernels")
    log.info("input: %s", reader.path)


def _run_sequences(vcf: str | os.PathLike[str], rc: bool, select: RegionSet | None) -> int | None:
    """Sequences a small VCF's whole run predicts (None when it is not small); the same in every shard."""
    alleles = count_alleles(vcf, 4096, select)
    return None if alleles is None else alleles * (2 if rc else 1)


@dataclass
class Sources:
    """The open inputs of a run and its stream of window chunks, in VCF order."""

    fasta: Fasta
    reader: VcfReader
    chunks: Iterator[WindowSet]

    def close(self) -> None:
        """Stop the reading thread, then close the reader and the reference."""
        try:
            if isinstance(self.chunks, Generator):
                self.chunks.close()
        finally:
            self.reader.close()
            self.fasta.close()


def open_sources(opts: RunOptions, plan: Plan, hook: ShardHook) -> Sources:
    """Open the reference and the records, and plan how their windows are made."""
    ref = hook.fasta(opts.fasta)
    try:
        restriction = BedIndex.from_bed(opts.restriction_bed) if opts.restriction_bed else None
        reader = hook.reader(opts.vcf)
    except BaseException:
        ref.close()
        raise
    reader.select = opts.select
    sources = Sources(ref, reader, iter(()))
    try:
        builder = WindowBuilder(
            ref,
            plan.length,
            centering=opts.centering or plan.model.default_centering,
            restriction=restriction,
            ref_mismatch=opts.ref_mismatch,
            max_indel_length=opts.max_indel_length,
        )
        request = WindowRequest(
            opts.vcf, reader, builder, plan.chunk, opts.fasta, opts.dataloader_args, opts.ref_mismatch
        )
        own = plan.model.window_source(request)
        if own is not None and not hook.own_windows:
            msg = (
                f"model {plan.model.name!r} runs its own dataloader, which is not sharded; "
                "run it in one process"
            )
            raise InputError(msg)
        sources.chunks = own if own is not None else prefetch(_read_chunks(reader, builder, plan.chunk))
    except BaseException:
        sources.close()
        raise
    return sources


def _read_chunks(reader: VcfReader, builder: WindowBuilder, size: int) -> Iterator[WindowSet]:
    it = iter(reader)
    while True:
        block = list(islice(it, size))
        if not block:
            return
        yield builder.build([v for v, _ in block], [r for _, r in block])


def open_sinks(
    opts: RunOptions, plan: Plan, template: VcfReader, part: PartFiles | None, summary: Callable[[], Summary]
) -> list[Sink]:
    """Open the run's outputs, in the order they are finished (the VCF first: its index fails most).

    With ``part``, the outputs that a shard writes are opened as part files of that shard (see
    :class:`~veff.writers.sink.PartFiles`); ``summary`` gives the summary file its content.
    """
    sinks: list[Sink] = []
    try:
        if opts.output is not None:
            with writing(opts.output):
                sinks.append(_vcf_sink(opts, opts.output, plan, template, part))
        if opts.table is not None:
            with writing(opts.table):
                if part is None:
                    sinks.append(
                        open_table(
                            opts.table,
                            scores=plan.scores,
                            labels=plan.labels,
                            features=plan.features,
                            per_alt=plan.per_alt,
                        )
                    )
                else:
                    fmt = part.table_format or "tsv"
                    path = part.path("table")
                    sinks.append(
                        open_table_part(
                            path,
                            fmt,
                            scores=plan.scores,
                            labels=plan.labels,
                            features=plan.features,
                            tag=part.tag,
                            per_alt=plan.per_alt,
                        )
                    )
        if opts.dump_sequences is not None:
            with writing(opts.dump_sequences):
                sinks.append(
                    SeqDumpWriter(opts.dump_sequences, model=plan.model, seq_length=plan.length, rc=plan.rc)
                )
        if opts.return_predictions:
            sinks.append(
                PredictionCollector(
                    plan.scores,
                    plan.kept_labels,
                    plan.columns,
                    part=None if part is None else part.path("pred"),
                    tag=None if part is None else part.tag,
                )
            )
        if opts.summary_json is not None:
            sinks.append(
                SummaryJson(
                    opts.summary_json, lambda: summary().to_dict() | {"run": run_record(opts, plan.model)}
                )
            )
    except BaseException:
        abort_all(sinks)
        raise
    return sinks


def _vcf_sink(
    opts: RunOptions, output: str | os.PathLike[str], plan: Plan, template: VcfReader, part: PartFiles | None
) -> VcfWriter:
    mdl = plan.model
    default_prefix = ("KV_" if opts.info_style == "kipoi" else "VEFF_") + sanitize_name(mdl.name)
    command = opts.command or _api_command(mdl, plan.jobs, plan.rc, plan.length)
    return VcfWriter(
        template.vcf,
        output if part is None else part.path("vcf"),
        scores=plan.scores,
        labels=plan.kept_labels,
        prefix=opts.info_prefix or default_prefix,
        style=opts.info_style,
        header_lines=[f"##veff_version={__version__}", f"##veff_command={command}"],
        descriptions={j.name: j.score.description for j in plan.jobs} | plan.extras.descriptions(),
        per_alt=plan.per_alt,
        aggregate=opts.info_aggregate,
        columns=plan.columns,
        features=plan.features,
        part=part is not None,
        tag=None if part is None else part.tag,
        output_type=opts.output_type,
    )


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


class Predictor:
    """The predict stage: queue each chunk's windows, and give back its predictions in chunk order.

    Without a model output structure (``dump_sequences``) nothing is predicted: every chunk is
    ready at once and its predictions are None.
    """

    def __init__(self, plan: Plan) -> None:
        self._stream = None
        if plan.spec is not None:
            self._stream = BatchStream(
                plan.model, plan.batch_size, rc=plan.rc, tune=plan.tune, on_tuned=_report_tuning
            )
        self._extras = plan.extras
        self._untuned = plan.batch_size if plan.tune == () else None  # tune asked, run too small

    def submit(self, ws: WindowSet) -> None:
        """Queue the reference and alt windows of a chunk, and its null windows (full batches run at once)."""
        if self._stream is not None:
            nulls = self._extras.null_windows(ws)
            submit_pairs(self._stream, ws.ref_codes, ws.alt_codes, ws.extra_inputs, ws.alt_ref, nulls)

    def ready(self) -> bool:
        """Whether the oldest queued chunk is predicted."""
        return self._stream is None or self._stream.ready()

    def flush(self) -> None:
        """Predict what waits (the last batch, padded)."""
        if self._stream is not None:
            self._stream.flush()

    def take(self) -> Predictions | None:
        """The predictions of the oldest queued chunk."""
        return None if self._stream is None else take_pairs(self._stream)

    @property
    def forward_seconds(self) -> float:
        """Time spent in the model's forward calls so far."""
        return 0.0 if self._stream is None else self._stream.forward_seconds

    def batch_report(self) -> dict[str, Any] | None:
        """What ``--batch-size tune`` measured and chose (:meth:`BatchTuning.report`), or None."""
        tuning = None if self._stream is None else self._stream.tuning
        if tuning is not None:
            return tuning.report()
        if self._untuned is not None:
            return BatchTuning(()).report() | {"size": self._untuned}
        return None


def _report_tuning(tuning: BatchTuning) -> None:
    """The line ``--batch-size tune`` writes on stderr when it has chosen."""
    rates = ", ".join(f"{s}: {r:,.0f}" for s, r in sorted(tuning.rates().items()))
    summary_log.info(
        "veff: --batch-size tune: chose %s (sequences/s by batch size: %s)", tuning.chosen, rates
    )


class Scorer:
    """The score stage: a chunk's predictions become per-score values of its scored rows."""

    def __init__(self, plan: Plan, aggregation: Aggregation) -> None:
        self.jobs, self.spec, self.aggregation = plan.jobs, plan.spec, aggregation
        self.scores, self.n_labels = plan.scores, len(plan.labels)
        self.per_alt = plan.per_alt
        self.extras = plan.extras

    def __call__(self, ws: WindowSet, preds: Predictions | None) -> ScoredChunk:
        """Score one chunk (a chunk with nothing scored gets (0, T) values for every score)."""
        if preds is None or self.spec is None or not len(ws.alt_ref):
            return ScoredChunk.unscored(ws, self.scores, self.n_labels, self.per_alt)
        p = preds.paired(ws.alt_ref)
        mark_nonfinite(ws, p)
        values = score_predictions(
            self.jobs, self.spec, self.aggregation, p.ref, p.alt, p.ref_rc, p.alt_rc, ws.alt_geometry
        )
        per_alt = {}
        if self.extras:
            values |= self.extras.compute(values, p, ws)
            per_alt = self.extras.compute_per_alt(values)
        return ScoredChunk(ws, values, per_alt=per_alt)


def mark_nonfinite(ws: WindowSet, p: Predictions) -> None:
    """Give ALTs whose predictions (ref, alt or rc, any output) hold NaN or inf the status ``nonfinite``.

    ``p`` is paired with the ALTs (:meth:`~veff.engine.batching.Predictions.paired`): row k belongs
    to ``ws.alt_slot[k]``.
    """
    n = len(p.alt)
    finite = np.ones(n, dtype=bool)
    for arr in (p.ref, p.alt, p.ref_rc, p.alt_rc):
        if arr is not None and arr.size:
            finite &= np.isfinite(arr.reshape(n, -1)).all(axis=1)
    for k in np.flatnonzero(~finite).tolist():
        i, a = ws.alt_slot[k]
        ws.statuses[int(i)][int(a)] = Status.NONFINITE


class ChunkWriter:
    """The write stage: score each predicted chunk and hand it to every sink, in order.

    The writing moves to a background thread once the forward passes have taken longer than it
    (or, before any writing was timed, over a second): big models then write while they compute;
    for cheap models the thread's GIL hand-offs would cost more than they hide.
    """

    def __init__(
        self, scorer: Scorer, sinks: Sequence[Sink], tally: Tally, bar: ProgressBar, predictor: Predictor
    ) -> None:
        self.scorer, self.sinks, self.tally, self.bar = scorer, sinks, tally, bar
        self._predictor = predictor
        self._background: BackgroundWorker[tuple[WindowSet, Predictions | None]] | None = None
        self.seconds = 0.0  # spent writing in the calling thread

    def put(self, ws: WindowSet, preds: Predictions | None) -> None:
        """Score and write one chunk (here, or queued for the background thread)."""
        if self._background is None and self._predictor.forward_seconds > (
            self.seconds or _BACKGROUND_AFTER_SECONDS
        ):
            self._background = BackgroundWorker(self._write)
        if self._background is not None:
            self._background.put((ws, preds))
            return
        t = time.perf_counter()
        self._write((ws, preds))
        self.seconds += time.perf_counter() - t

    def _write(self, item: tuple[WindowSet, Predictions | None]) -> None:
        ws, preds = item
        scored = self.scorer(ws, preds)
        for sink in self.sinks:
            with writing(getattr(sink, "path", None)):
                sink.write_scored(scored)
        self.tally.add(ws)
        self.bar.update(len(ws))

    def close(self) -> None:
        """Wait for the background thread's chunks; raises its first error."""
        if self._background is not None:
            self._background.close()

    def stop(self) -> None:
        """Drop the queued chunks and wait for the one in progress (before the sinks are aborted)."""
        if self._background is not None:
            self._background.stop()


def check_run_outputs(opts: RunOptions) -> None:
    """Refuse a run's outputs before any work (see :func:`veff.writers.targets.check_outputs`)."""
    check_outputs(
        {
            "the output VCF": "/dev/stdout" if str(opts.output) == STDOUT else opts.output,
            "the table": opts.table,
            "the sequence dump": opts.dump_sequences,
            "the summary JSON": opts.summary_json,
        },
        {
            "the input VCF": None if str(opts.vcf) == STDIN else opts.vcf,
            "the FASTA": opts.fasta,
            "the restriction BED": opts.restriction_bed,
            "the regions file": opts.regions_file,
        },
        files_only=("the sequence dump",),
    )


def preflight(opts: RunOptions) -> None:
    """What a run of its own checks before any work: its outputs, and that the VCF fits the FASTA's build."""
    check_run_outputs(opts)
    if str(opts.vcf) == STDIN:  # read once, by the run (which checks the contigs at its end)
        return
    build = Fasta(opts.fasta)
    try:
        check_same_build(opts.vcf, build)
    finally:
        build.close()


def run_result(
    opts: RunOptions, plan: Plan, sinks: Sequence[Sink], summary: Summary
) -> Summary | dict[str, pd.DataFrame]:
    """What a run returns: its summary, or the frames of ``return_predictions``."""
    collector = next((s for s in sinks if isinstance(s, PredictionCollector)), None)
    if collector is None:
        return summary
    frames = collector.frames()
    if opts.record_options and plan.run_options is not None:  # veff.calibrate reads them
        for df in frames.values():
            df.attrs["veff_run_options"] = plan.run_options
    return frames
