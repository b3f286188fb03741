"""Worker side of a sharded run (:mod:`veff.distributed.driver`): the task that scores one shard.

:func:`_score_shard` is the Dask task: it scores the regions of one shard
(:class:`~veff.distributed.shards.Shard`) with the pipeline (:func:`veff.pipeline.execute`, shard
strategy :class:`WorkerHook`), whose outputs are the shard's part files
(:class:`veff.writers.sink.PartFiles`), which the driver merges. Each worker keeps the models
of the last few runs and their output probes (:class:`_WorkerState`), and each worker thread its
FASTA (:class:`_KeptFasta`); progress goes to the driver as Dask events (:class:`_EventBar`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veff.distributed.shards import Shard
from veff.engine.batching import probe_outputs
from veff.engine.outputs import OutputSpec
from veff.engine.progress import ProgressBar
from veff.errors import VeffWarning
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader
from veff.models import Model
from veff.run.hooks import load_run_model
from veff.run.options import RunOptions
from veff.run.summary import Summary, Tally
from veff.writers.sink import PartFiles, PartSink, Sink
from veff.writers.table import TableFormat

_PROGRESS_SECONDS = 0.5
_MODELS_PER_WORKER = 2


@dataclass
class _Job:
    """What every shard task of a run shares (pickled into each task)."""

    token: str
    options: RunOptions  # the run's options; model, client, summary file... removed
    reader_path: str
    parts: str
    table_format: TableFormat | None
    topic: str


@dataclass
class _ShardResult:
    index: int
    records: int
    statuses: dict[str, int]
    rows: dict[str, int]  # rows of each part file, by PartSink.part_key
    seconds: float


class _WorkerState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.models: OrderedDict[str, Any] = OrderedDict()
        self.probes: dict[tuple[Any, ...], Any] = {}


_STATES: weakref.WeakKeyDictionary[Any, _WorkerState] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()
_LOCAL_STATE = _WorkerState()


def _worker_state() -> _WorkerState:
    try:
        from distributed import get_worker

        worker: Any = get_worker()
    except (ImportError, ValueError):
        return _LOCAL_STATE
    with _STATES_LOCK:
        state = _STATES.get(worker)
        if state is None:
            state = _STATES[worker] = _WorkerState()
        return state


def _worker_model(token: str, opts: RunOptions, model: Any) -> Model:
    """The run's model, loaded once per worker (the last few runs' models are kept)."""
    state = _worker_state()
    with state.lock:
        mdl = state.models.get(token)
        if mdl is None:
            mdl = load_run_model(model, opts)
            state.models[token] = mdl
            while len(state.models) > _MODELS_PER_WORKER:
                old, _ = state.models.popitem(last=False)
                state.probes = {k: v for k, v in state.probes.items() if k[0] != old}
        else:
            state.models.move_to_end(token)
        return mdl


class _KeptFasta(Fasta):
    """A FASTA kept open (with its cached contigs) for the next shards of a worker thread."""

    def close(self) -> None:
        pass


_FASTAS = threading.local()


def _worker_fasta(path: Any) -> Fasta:
    """The FASTA of this worker thread (tasks of one run reuse the contigs already read)."""
    kept: dict[str, Fasta] | None = getattr(_FASTAS, "kept", None)
    if kept is None:
        kept = _FASTAS.kept = {}
    key = str(path)
    fasta = kept.get(key)
    if fasta is None:
        for old in kept.values():
            Fasta.close(old)
        kept.clear()
        fasta = kept[key] = _KeptFasta(path)
    return fasta


class _EventBar:
    """A progress bar stand-in that reports a shard's records to the driver (Dask events)."""

    def __init__(self, topic: str, shard: int) -> None:
        self.topic, self.shard = topic, shard
        self.done = 0
        self._sent = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._sent >= _PROGRESS_SECONDS:
            self._sent = now
            self._send()

    def close(self) -> None:
        self._send()

    stop = close  # a shard stopped part way reports how far it got, as at its end

    def _send(self) -> None:
        with contextlib.suppress(Exception):  # progress is best effort
            from distributed import get_worker

            get_worker().log_event(self.topic, {"shard": self.shard, "done": self.done})


class WorkerHook:
    """One shard of a sharded run (a :class:`~veff.run.hooks.ShardHook`): read its regions, write parts."""

    own_windows = False

    def __init__(self, job: _Job, shard: Shard, model: Any) -> None:
        self.job, self.shard, self.model = job, shard, model
        self.tag = uuid.uuid4().hex
        self.part = PartFiles(Path(job.parts), shard.index, self.tag, job.table_format)
        self.summary: Summary | None = None
        self.rows: dict[str, int] = {}

    def load_model(self, opts: RunOptions) -> Model:
        """The run's model, loaded once per worker."""
        return _worker_model(self.job.token, opts, self.model)

    def reader(self, path: str | os.PathLike[str]) -> VcfReader:
        """The records of the shard's regions."""
        return VcfReader(self.job.reader_path, regions=self.shard.regions)

    def fasta(self, path: str | os.PathLike[str]) -> Fasta:
        """The FASTA of this worker thread (kept open)."""
        return _worker_fasta(path)

    def probe(self, model: Model, length: int, offset: int | None) -> OutputSpec:
        """:func:`veff.engine.batching.probe_outputs`, once per run and worker.

        Its warnings (an output layout that looks tasks first) are dropped: the driver's probe of
        the same model gave them once, on the command's stderr.
        """
        state = _worker_state()
        key = (self.job.token, length, ("offset", offset))
        with state.lock:
            spec = state.probes.get(key)
            if spec is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", VeffWarning)
                    spec = state.probes[key] = probe_outputs(model, length, offset=offset)
            return spec

    def progress(self, opts: RunOptions, reader: VcfReader) -> ProgressBar:
        """Progress reported to the driver as Dask events."""
        return _EventBar(self.job.topic, self.shard.index)

    def merge(self, sinks: Sequence[Sink], tally: Tally) -> None:
        """Note the rows of each part file (the driver appends them)."""
        self.rows = {s.part_key: s.rows_written for s in sinks if isinstance(s, PartSink)}

    def annotate(self, summary: Summary) -> None:
        """Nothing to add."""

    def finished(self, summary: Summary) -> None:
        """Keep the summary for the task's result."""
        self.summary = summary


def _score_shard(job: _Job, shard: Shard, model: Any) -> _ShardResult:
    """Dask task: score one shard into its part files."""
    from veff.pipeline import execute

    t0 = time.perf_counter()
    warnings.filterwarnings("ignore", message="no intervals found", category=UserWarning)
    hook = WorkerHook(job, shard, model)
    execute(job.options, hook)
    summary = hook.summary
    if summary is None:  # execute() always finishes through the hook; a bug if not
        msg = f"shard {shard.index}: the run ended without a summary"
        raise RuntimeError(msg)
    return _ShardResult(
        shard.index, summary.records, dict(summary.statuses), hook.rows, time.perf_counter() - t0
    )
