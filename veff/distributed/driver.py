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
   regions with :func:`veff.score_variants` and writes part files to the work folder: record text
   for the VCF, rows for the table, predictions when asked.
3. Meanwhile the driver opens the outputs exactly as a run in one process does (same header, same
   table columns): it runs :func:`veff.score_variants` itself, on no records, so it loads the
   model too. Its ``_shard`` hook (:class:`_DriverHook`) then streams the parts, in shard order,
   into the outputs as shards complete, through the same writers as a run in one process.

The files are therefore byte for byte those of a run in one process with the same arguments. The
numbers are too: every forward call has exactly ``batch_size`` sequences (the last batch of a run
or shard is padded, :class:`veff.engine.batching.BatchStream`), and float kernels change the last bits of
a result with the batch shape, not with the batch's other rows.

The work folder (default: a hidden folder beside the output) must be visible to the workers under
the same path, as must the model, the FASTA and the VCF; it is removed at the end.

The code is in three modules: shard planning (:func:`plan_shards`, :func:`indexed_input`) in
:mod:`veff.distributed.shards`, the worker side (the shard task ``_score_shard``, the per-worker model cache)
in :mod:`veff.distributed.worker`, and here the driver (:class:`_DriverHook`, which merges the parts),
:func:`score_distributed` and :func:`local_cluster`; the names of the other two are importable
from here too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from veff.distributed.shards import MAX_SHARD_RECORDS as MAX_SHARD_RECORDS
from veff.distributed.shards import MIN_SHARD_RECORDS as MIN_SHARD_RECORDS
from veff.distributed.shards import SCAN_BYTES as SCAN_BYTES
from veff.distributed.shards import SHARDS_PER_THREAD as SHARDS_PER_THREAD
from veff.distributed.shards import Shard, _contig_records, _target_records, indexed_input, plan_shards
from veff.distributed.shards import _bgzip_copy as _bgzip_copy
from veff.distributed.shards import _index_starts as _index_starts
from veff.distributed.shards import _linear as _linear
from veff.distributed.shards import _link as _link
from veff.distributed.shards import _read_magic as _read_magic
from veff.distributed.shards import _scan_starts as _scan_starts
from veff.distributed.worker import _FASTAS as _FASTAS
from veff.distributed.worker import _LOCAL_STATE as _LOCAL_STATE
from veff.distributed.worker import _MODELS_PER_WORKER as _MODELS_PER_WORKER
from veff.distributed.worker import _PROGRESS_SECONDS as _PROGRESS_SECONDS
from veff.distributed.worker import _STATES as _STATES
from veff.distributed.worker import _STATES_LOCK as _STATES_LOCK
from veff.distributed.worker import _EventBar as _EventBar
from veff.distributed.worker import _Job, _part_paths, _score_shard, _ShardResult
from veff.distributed.worker import _KeptFasta as _KeptFasta
from veff.distributed.worker import _ShardHook as _ShardHook
from veff.distributed.worker import _worker_fasta as _worker_fasta
from veff.distributed.worker import _worker_model as _worker_model
from veff.distributed.worker import _worker_state as _worker_state
from veff.distributed.worker import _WorkerState as _WorkerState
from veff.engine.progress import DEFAULT_INTERVAL, progress_bar
from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader
from veff.writers.predictions import PredictionCollector

__all__ = ["Shard", "local_cluster", "plan_shards", "score_distributed"]

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


class _DriverHook:
    """Driver side: run the shards, and merge their parts into the outputs.

    :meth:`start` submits the shards; :func:`veff.score_variants`, given this object as its
    ``_shard`` hook, opens the outputs and calls :meth:`merge`.
    """

    part = False

    def __init__(
        self, client: Any, call: dict[str, Any], model_ref: Any, work: Path, shard_records: int | None
    ) -> None:
        self.client = client
        self.call = call
        self.model_ref = model_ref
        self.work = work
        self.shard_records = shard_records
        self.vcf_options: dict[str, Any] = {}
        self.summary: Any = None
        self.timings: dict[str, Any] = {}
        self.records = 0
        self.merged = 0
        self.futures: list[Any] = []
        self.bar: Any = None
        self.topic = f"veff-progress-{uuid.uuid4().hex}"

    def start(self) -> None:
        """Index the VCF, plan the shards and submit them (before the driver loads the model)."""
        call, client = self.call, self.client
        t0 = time.perf_counter()
        parts = self.work / "parts"
        parts.mkdir(exist_ok=True)
        reader_path, index = indexed_input(Path(call["vcf"]), self.work)
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
        job_call = dict(call)
        for key in ("model", "client", "workers", "scheduler", "work_dir", "shard_records", "summary_json"):
            job_call[key] = None
        job = _Job(
            token=uuid.uuid4().hex,
            call=job_call,
            reader_path=str(reader_path),
            parts=str(parts),
            table_format=_table_format(call["table"]),
            topic=self.topic,
        )
        selected = call.get("regions") is not None or call.get("regions_file") is not None
        bar_total = None if selected else total
        self.bar = progress_bar(
            enabled=bool(call["progress"]),
            unit="variants",
            total=bar_total,
            interval=call.get("progress_interval") or DEFAULT_INTERVAL,
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

    def stop(self) -> None:
        """Cancel what still runs (after an error) and close the progress bar."""
        with contextlib.suppress(Exception):
            self.client.cancel(self.futures)
        with contextlib.suppress(Exception):
            self.client.unsubscribe_topic(self.topic)
        if self.bar is not None:
            self.bar.close()

    def reader(self, vcf: Any) -> VcfReader:
        return VcfReader(vcf, regions=[])  # the header only

    def fasta(self, path: Any) -> Fasta:
        return Fasta(path)

    def probe(self, mdl: Any, length: int, **kwargs: Any) -> Any:
        from veff.engine.batching import probe_outputs

        return probe_outputs(mdl, length, **kwargs)

    def open_table(self, path: Any, *, scores: Any, labels: Any) -> Any:
        from veff.writers.table import open_table

        return open_table(path, scores=scores, labels=labels)

    def progress_bar(self, progress: bool) -> Any:
        return progress_bar(enabled=False, unit="variants")  # the shards' bar is opened in start()

    def merge(
        self,
        writer: Any,
        table_writer: Any,
        summary: Any,
        counts: Counter[str],
        collector: PredictionCollector | None,
    ) -> None:
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
                self._append(done.pop(self.merged), writer, table_writer, counts, collector)
                merge_seconds += time.perf_counter() - t1
        summary.records += self.records
        total = self.index.records
        selected = self.call.get("regions") is not None or self.call.get("regions_file") is not None
        if total is not None and self.records != total and not selected:  # regions: fewer, on purpose
            msg = (
                f"{self.call['vcf']}: its index ({self.index.path}) lists {total} records but the shards "
                f"read {self.records}; is the index older than the file? Re-index it (tabix -f -p vcf, "
                "or bcftools index -f)"
            )
            raise InputError(msg)
        self.timings["merge_seconds"] = round(merge_seconds, 3)

    def _append(
        self,
        res: _ShardResult,
        writer: Any,
        table_writer: Any,
        counts: Counter[str],
        collector: PredictionCollector | None,
    ) -> None:
        paths = _part_paths(str(self.work / "parts"), res.index, _table_format(self.call["table"]))
        if writer is not None:
            writer.append_part(paths["vcf"], res.records)
            paths["vcf"].unlink()
        if table_writer is not None:
            table_writer.append_part(paths["table"], res.table_rows)
            paths["table"].unlink()
        if collector is not None:
            with open(paths["pred"], "rb") as fh:
                frames = pickle.load(fh)
            collector.append(
                next(iter(frames.values()), ([], None))[0], {name: v for name, (_, v) in frames.items()}
            )
            paths["pred"].unlink()
        counts.update(res.statuses)
        self.records += res.records
        self.merged += 1


def _table_format(table: Any) -> str | None:
    if table is None:
        return None
    from veff.writers.table import table_format

    return table_format(table)


# ---------------------------------------------------------------------------------------------
# Entry point


def score_distributed(call: dict[str, Any]) -> Any:
    """Run :func:`veff.score_variants` on a Dask cluster (see the module docstring).

    Parameters
    ----------
    call
        The arguments of :func:`veff.score_variants`, one of ``client``, ``workers`` and
        ``scheduler`` among them (``work_dir`` and ``shard_records`` are used here).

    Returns
    -------
    What :func:`veff.score_variants` returns; a :class:`~veff.Summary` also says in
    ``distributed`` how many shards ran and how long planning and merging took.
    """
    from veff.pipeline import score_variants

    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        msg = "scoring on a Dask cluster needs Dask: pip install 'veff[distributed]'"
        raise InputError(msg) from exc
    given = [k for k in ("client", "workers", "scheduler") if call.get(k) is not None]
    if len(given) > 1:
        msg = f"give one of client, workers and scheduler, not {' and '.join(given)}"
        raise InputError(msg)
    if call["workers"] is not None and int(call["workers"]) < 1:
        msg = f"workers must be at least 1, got {call['workers']}"
        raise InputError(msg)
    if call["dump_sequences"] is not None:
        msg = "dump_sequences is not sharded; run it without workers, scheduler or client"
        raise InputError(msg)
    call = _absolute_paths(call)
    root = Path(call["work_dir"]) if call["work_dir"] is not None else _default_work_root(call)
    if not root.is_dir():
        msg = f"{root}: work folder does not exist"
        raise InputError(msg)
    for key in ("output", "table"):
        if call[key] is not None and not Path(call[key]).resolve().parent.is_dir():
            msg = f"{call[key]}: output folder {Path(call[key]).parent} does not exist"
            raise InputError(msg)
    Fasta(call["fasta"]).close()  # its index is built here, once, not by every worker at once
    with _connect(call) as client:
        work = Path(tempfile.mkdtemp(prefix=".veff-work-", dir=root))
        try:
            model_ref = call["model"]
            if not isinstance(model_ref, str):
                model_ref = client.scatter(model_ref, broadcast=True, hash=False)
            hook = _DriverHook(client, call, model_ref, work, call["shard_records"])
            try:
                hook.start()  # the shards run while the driver loads the model and opens the outputs
                kwargs = dict(call)
                kwargs.update(client=None, workers=None, scheduler=None, progress=False, _shard=hook)
                result = score_variants(**kwargs)
            finally:
                hook.stop()
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if hook.summary is not None:
        hook.summary.distributed = hook.timings
    return result


def _default_work_root(call: dict[str, Any]) -> Path:
    for key in ("output", "table"):
        if call.get(key) is not None:
            return Path(call[key]).resolve().parent
    return Path.cwd()


def _absolute(path: Any) -> Any:
    return None if path is None else str(Path(path).expanduser().resolve())


def _absolute_paths(call: dict[str, Any]) -> dict[str, Any]:
    """Paths as the workers must see them: absolute; a model name resolved to its path."""
    from veff.models import resolve_model

    call = dict(call)
    for key in ("vcf", "fasta", "restriction_bed"):
        call[key] = _absolute(call.get(key))
    model = call["model"]
    if isinstance(model, (str, os.PathLike)):
        file, sep, cls = str(model).partition("::")
        if sep or Path(file).expanduser().exists():
            model = _absolute(file) + sep + cls
        else:
            found = resolve_model(file)
            model = _absolute(found) if isinstance(found, Path) else found
    call["model"] = model
    kwargs = dict(call.get("model_kwargs") or {})
    if kwargs.get("weights") is not None:
        kwargs["weights"] = _absolute(kwargs["weights"])
    call["model_kwargs"] = kwargs or call.get("model_kwargs")
    return call


@contextlib.contextmanager
def _connect(call: dict[str, Any]) -> Iterator[Any]:
    """The client to use; a local cluster or a connection made here is closed on exit."""
    from distributed import Client

    if call["client"] is not None:
        yield call["client"]
        return
    if call["scheduler"] is not None:
        try:
            client = Client(call["scheduler"], set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            msg = f"cannot connect to the Dask scheduler at {call['scheduler']}: {exc}"
            raise InputError(msg) from exc
        with client:
            yield client
        return
    cluster = local_cluster(int(call["workers"]), threads=call.get("threads"))
    try:
        with Client(cluster, set_as_default=False) as client:
            yield client
    finally:
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
                silence_logs=logging.ERROR,
            )
    finally:
        # the nanny sets these in the driver's own environment too: undo that
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
