"""Score one VCF on a Dask cluster: shards by genomic region, merged into the file of one process.

``veff.score_variants(..., client=...)`` (or ``workers=N`` for a local cluster, ``scheduler=ADDRESS``
for a running one; ``--workers`` / ``--scheduler`` on the command line) runs here:

1. The driver reads the index of the VCF (tabix ``.tbi`` or ``.csi``; a VCF without one is indexed
   in the work folder: BGZF files and BCF through a link, other files through a BGZF copy) and
   cuts the file into shards (:func:`plan_shards`): contigs in the order of their records in the
   file, large contigs cut into pieces of about ``shard_records`` records, small ones grouped. A
   shard is a list of regions; a record belongs to the region that contains its ``POS`` (a region
   query also returns records that start before the region, such as deletions across a cut: they
   are skipped there), so every record is scored exactly once.
2. Each shard is a Dask task (retried on failure; a task lost with its worker runs again
   elsewhere). The task loads the model once per worker (cached on the worker), scores its
   regions with the pipeline (:func:`veff.pipeline.execute`, shard strategy
   :class:`~veff.distributed.worker.WorkerHook`) and writes part files to the work folder: record
   text for the VCF, rows for the table, predictions when asked.
3. Meanwhile the driver opens the outputs exactly as a run in one process does (same header, same
   table columns): it runs the pipeline itself with the shard strategy :class:`DriverHook`, whose
   reader reads no record; it loads the model too. :meth:`DriverHook.merge` then streams the
   parts, in shard order, into the outputs as shards complete
   (:meth:`veff.writers.sink.PartSink.append_part`), through the same writers as a run in one
   process.

The files are therefore byte for byte those of a run in one process with the same arguments. The
numbers are too: every forward call has exactly ``batch_size`` sequences (the last batch of a run
or shard is padded, :class:`veff.engine.batching.BatchStream`), and float kernels change the last bits of
a result with the batch shape, not with the batch's other rows.

The work folder (default: a hidden folder beside the output) must be visible to the workers under
the same path, as must the model, the FASTA and the VCF; it is removed at the end.

The code is in three modules: shard planning (:func:`plan_shards`, :func:`indexed_input`) in
:mod:`veff.distributed.shards`, the worker side (the shard task ``_score_shard``, the per-worker model cache)
in :mod:`veff.distributed.worker`, and here the driver (:class:`DriverHook`, which merges the parts),
:func:`score_distributed` and :func:`local_cluster`; the names of the other two are importable
from here too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veff.distributed.shards import MAX_SHARD_RECORDS as MAX_SHARD_RECORDS
from veff.distributed.shards import MIN_SHARD_RECORDS as MIN_SHARD_RECORDS
from veff.distributed.shards import SCAN_BYTES as SCAN_BYTES
from veff.distributed.shards import SHARDS_PER_THREAD as SHARDS_PER_THREAD
from veff.distributed.shards import Shard, _contig_records, _target_records, indexed_input, plan_shards
from veff.distributed.shards import _bgzip_copy as _bgzip_copy
from veff.distributed.worker import WorkerHook as WorkerHook
from veff.distributed.worker import _Job, _score_shard, _ShardResult
from veff.engine.batching import probe_outputs
from veff.engine.outputs import OutputSpec
from veff.engine.progress import ProgressBar, progress_bar
from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader
from veff.models import Model
from veff.run.hooks import load_run_model, log_summary
from veff.run.options import RunOptions
from veff.run.summary import Summary, Tally
from veff.writers.sink import PartFiles, PartSink, Sink
from veff.writers.table import table_format
from veff.writers.targets import writing

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DriverHook", "Shard", "WorkerHook", "local_cluster", "plan_shards", "score_distributed"]

log = logging.getLogger("veff")

RETRIES = 2


# ---------------------------------------------------------------------------------------------
# Driver side


class _Progress:
    """Variants done across workers: per shard, the most any attempt reported."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.done: dict[int, int] = {}
        self.lock = threading.Lock()

    def report(self, shard: int, done: int) -> None:
        with self.lock:
            before = self.done.get(shard, 0)
            if done > before:
                self.done[shard] = done
                self.bar.update(done - before)

    def event(self, event: Any) -> None:
        with contextlib.suppress(Exception):
            msg = event[1]
            self.report(int(msg["shard"]), int(msg["done"]))


class DriverHook:
    """Driver side of a sharded run (a :class:`~veff.run.hooks.ShardHook`): run the shards, merge their parts.

    :meth:`start` submits the shards; the pipeline, given this strategy, loads the model, opens
    the outputs on the VCF's header (its reader reads no record) and calls :meth:`merge`, which
    appends the shards' parts to the outputs in shard order as the shards complete.
    """

    part = None
    own_windows = False

    def __init__(
        self, client: Any, opts: RunOptions, model_ref: Any, work: Path, shard_records: int | None
    ) -> None:
        self.client = client
        self.opts = opts
        self.model_ref = model_ref
        self.work = work
        self.shard_records = shard_records
        self.timings: dict[str, Any] = {}
        self.records = 0
        self.merged = 0
        self.futures: list[Any] = []
        self.bar: Any = None
        self.topic = f"veff-progress-{uuid.uuid4().hex}"
        self.table_format = None if opts.table is None else table_format(opts.table)

    def start(self) -> None:
        """Index the VCF, plan the shards and submit them (before the driver loads the model)."""
        opts, client = self.opts, self.client
        t0 = time.perf_counter()
        parts = self.work / "parts"
        parts.mkdir(exist_ok=True)
        reader_path, index = indexed_input(Path(opts.vcf), self.work)
        threads = sum(client.nthreads().values()) or 1
        total = index.records
        estimate = total if total is not None else sum(map(_contig_records, index.contigs))
        shards = plan_shards(index, _target_records(estimate, threads, self.shard_records), reader_path)
        plan_seconds = time.perf_counter() - t0
        log.info(
            "veff: %s records in %d shards on %d worker threads (planned in %.2f s)",
            total if total is not None else f"about {estimate}",
            len(shards),
            threads,
            plan_seconds,
        )
        self.index, self.shards = index, shards
        self.timings = {
            "shards": len(shards),
            "worker_threads": threads,
            "plan_seconds": round(plan_seconds, 3),
        }
        job = _Job(
            token=uuid.uuid4().hex,
            options=replace(
                opts,
                model=None,
                client=None,
                workers=None,
                scheduler=None,
                work_dir=None,
                shard_records=None,
                summary_json=None,
                progress=False,
                command=None,
            ),
            reader_path=str(reader_path),
            parts=str(parts),
            table_format=self.table_format,
            topic=self.topic,
        )
        bar_total = None if opts.select is not None else total
        self.bar = progress_bar(
            enabled=opts.progress, unit="variants", total=bar_total, interval=opts.progress_interval
        )
        self.tracker = _Progress(self.bar)
        client.subscribe_topic(self.topic, self.tracker.event)
        self.futures = [
            client.submit(
                _score_shard,
                job,
                s,
                self.model_ref,
                key=f"veff-shard-{job.token}-{s.index}",
                retries=RETRIES,
                pure=False,
            )
            for s in shards
        ]

    def stop(self, *, complete: bool = True) -> None:
        """Cancel what still runs (after an error) and close the progress bar.

        A run that did not complete leaves the bar where it got (not at 100 %).
        """
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        if self.bar is not None:
            self.bar.close() if complete else self.bar.stop()

    def load_model(self, opts: RunOptions) -> Model:
        """The run's model, loaded in the driver too (for the outputs' header and columns)."""
        return load_run_model(opts.model, opts)

    def reader(self, path: str | os.PathLike[str]) -> VcfReader:
        """The VCF's header only: the shards read the records."""
        return VcfReader(path, regions=[])  # the header only

    def fasta(self, path: str | os.PathLike[str]) -> Fasta:
        """The FASTA itself."""
        return Fasta(path)

    def probe(self, model: Model, length: int, offset: int | None) -> OutputSpec:
        """Probe the model with one all-N window."""
        return probe_outputs(model, length, offset=offset)

    def progress(self, opts: RunOptions, reader: VcfReader) -> ProgressBar:
        """No bar here: the shards' bar is opened by :meth:`start`."""
        return progress_bar(enabled=False, unit="variants")

    def merge(self, sinks: Sequence[Sink], tally: Tally) -> None:
        """Append the shards' parts to the outputs in shard order, as the shards complete."""
        from distributed import as_completed

        merge_seconds = 0.0
        done: dict[int, _ShardResult] = {}
        for fut in as_completed(self.futures, loop=self.client.loop):
            res: _ShardResult = fut.result()
            self.tracker.report(res.index, res.records)
            done[res.index] = res
            while self.merged in done:
                t1 = time.perf_counter()
                self._append(done.pop(self.merged), sinks, tally)
                merge_seconds += time.perf_counter() - t1
        total = self.index.records
        if total is not None and self.records != total and self.opts.select is None:  # regions: fewer
            msg = (
                f"{self.opts.vcf}: its index ({self.index.path}) lists {total} records but the shards "
                f"read {self.records}; is the index older than the file? Re-index it (tabix -f -p vcf, "
                "or bcftools index -f)"
            )
            raise InputError(msg)
        self.timings["merge_seconds"] = round(merge_seconds, 3)

    def _append(self, res: _ShardResult, sinks: Sequence[Sink], tally: Tally) -> None:
        part = PartFiles(self.work / "parts", res.index, table_format=self.table_format)
        for sink in sinks:
            if isinstance(sink, PartSink):
                path = part.path(sink.part_key)
                with writing(getattr(sink, "path", None)):
                    sink.append_part(path, res.rows.get(sink.part_key, 0))
                path.unlink()
        tally.add_part(res.records, res.statuses)
        self.records += res.records
        self.merged += 1

    def annotate(self, summary: Summary) -> None:
        """The shard count and the planning and merging times."""
        summary.distributed = self.timings

    def finished(self, summary: Summary) -> None:
        """Log the stage timings and the summary line."""
        log_summary(summary)


# ---------------------------------------------------------------------------------------------
# Entry point


def score_distributed(opts: RunOptions) -> Summary | dict[str, pd.DataFrame]:
    """Carry out a sharded run on a Dask cluster (see the module docstring).

    Parameters
    ----------
    opts
        The run; one of ``client``, ``workers`` and ``scheduler`` is set (``work_dir`` and
        ``shard_records`` are used here).

    Returns
    -------
    What :func:`veff.score_variants` returns; a :class:`~veff.Summary` also says in
    ``distributed`` how many shards ran and how long planning and merging took.
    """
    from veff.pipeline import execute

    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        msg = "scoring on a Dask cluster needs Dask: pip install 'veff[distributed]'"
        raise InputError(msg) from exc
    opts = _absolute_paths(opts)
    root = Path(opts.work_dir) if opts.work_dir is not None else _default_work_root(opts)
    if not root.is_dir():
        msg = f"{root}: work folder does not exist"
        raise InputError(msg)
    for out in (opts.output, opts.table):
        if out is not None and not Path(out).resolve().parent.is_dir():
            msg = f"{out}: output folder {Path(out).parent} does not exist"
            raise InputError(msg)
    Fasta(opts.fasta).close()  # its index is built here, once, not by every worker at once
    work: Path | None = None
    try:
        with _connect(opts) as client:
            work = Path(tempfile.mkdtemp(prefix=".veff-work-", dir=root))
            model_ref = opts.model
            if not isinstance(model_ref, str):
                model_ref = client.scatter(model_ref, broadcast=True, hash=False)
            hook = DriverHook(client, opts, model_ref, work, opts.shard_records)
            complete = False
            try:
                hook.start()  # the shards run while the driver loads the model and opens the outputs
                summary = execute(opts, hook)
                complete = True
                return summary
            finally:
                hook.stop(complete=complete)
    finally:  # after the local cluster is closed: no worker writes there any more
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)


def _default_work_root(opts: RunOptions) -> Path:
    for out in (opts.output, opts.table):
        if out is not None:
            return Path(out).resolve().parent
    return Path.cwd()


def _absolute(path: Any) -> Any:
    return None if path is None else str(Path(path).expanduser().resolve())


def _absolute_paths(opts: RunOptions) -> RunOptions:
    """Paths as the workers must see them: absolute; a model name resolved to its path."""
    from veff.models import resolve_model

    model = opts.model
    if isinstance(model, (str, os.PathLike)):
        file, sep, cls = str(model).partition("::")
        if sep or Path(file).expanduser().exists():
            model = _absolute(file) + sep + cls
        else:
            found = resolve_model(file)
            model = _absolute(found) if isinstance(found, Path) else found
    kwargs = dict(opts.model_kwargs or {})
    if kwargs.get("weights") is not None:
        kwargs["weights"] = _absolute(kwargs["weights"])
    return replace(
        opts,
        model=model,
        vcf=_absolute(opts.vcf),
        fasta=_absolute(opts.fasta),
        restriction_bed=_absolute(opts.restriction_bed),
        regions_file=_absolute(opts.regions_file),
        calibration=_absolute(opts.calibration),
        model_kwargs=kwargs or opts.model_kwargs,
    )


@contextlib.contextmanager
def _connect(opts: RunOptions) -> Iterator[Any]:
    """The client to use; a local cluster or a connection made here is closed on exit."""
    from distributed import Client

    if opts.client is not None:
        yield opts.client
        return
    if opts.scheduler is not None:
        try:
            client = Client(opts.scheduler, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            msg = f"cannot connect to the Dask scheduler at {opts.scheduler}: {exc}"
            raise InputError(msg) from exc
        with client:
            yield client
        return
    cluster = local_cluster(int(opts.workers or 1), threads=opts.threads)
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    except BaseException:
        # stopped early (an error, Ctrl-C, SIGTERM): the workers may be busy, and are killed on
        # purpose; Dask's warnings about that ("still alive after 4.0 seconds, killing") are noise
        dask_log = logging.getLogger("distributed")
        level = dask_log.level
        dask_log.setLevel(logging.CRITICAL)
        try:
            cluster.close()
        finally:
            dask_log.setLevel(level)
        raise
    cluster.close()


def local_cluster(workers: int, *, threads: int | None = None, processes: bool = True) -> Any:
    """A Dask ``LocalCluster`` on the loopback interface, no dashboard.

    Each of ``workers`` worker processes runs one task at a time, with ``threads`` threads for
    the numerical libraries (default: the machine's cores shared out among the workers).
    """
    import dask
    from distributed import LocalCluster

    n = str(threads or max(1, (os.cpu_count() or 1) // workers))
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.update(OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, OPENBLAS_NUM_THREADS=n, TF_NUM_INTRAOP_THREADS=n)
    saved = {k: os.environ.get(k) for k in env}
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
            return LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                # worker processes talk over TCP on the loopback interface; threads in-process
                **({"host": "127.0.0.1", "protocol": "tcp://"} if processes else {}),
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # its HTTP server: loopback too
                # a worker's own errors reach the driver as the task's exception; what the worker
                # processes would print themselves (a heartbeat the scheduler missed while a run is
                # being stopped) is noise on the user's stderr
                silence_logs=logging.CRITICAL,
            )
    finally:
        # the nanny sets these in the driver's own environment too: undo that
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
