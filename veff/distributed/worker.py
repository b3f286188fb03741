"""Worker side of a sharded run (:mod:`veff.distributed.driver`): the task that scores one shard.

:func:`_score_shard` is the Dask task: it scores the regions of one :class:`~veff.distributed.shards.Shard`
with :func:`veff.score_variants` (through the ``_shard`` hook :class:`_ShardHook`) and writes the
shard's part files (:func:`_part_paths`), which the driver merges. Each worker keeps the models
of the last few runs and their output probes (:class:`_WorkerState`), and each worker thread its
FASTA (:class:`_KeptFasta`); progress goes to the driver as Dask events (:class:`_EventBar`).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import time
import uuid
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veff.distributed.shards import Shard
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader

_PROGRESS_SECONDS = 0.5
_MODELS_PER_WORKER = 2


@dataclass
class _Job:
    """What every shard task of a run shares (pickled into each task)."""

    token: str
    call: dict[str, Any]  # score_variants arguments; model, client... removed
    reader_path: str
    parts: str
    table_format: str | None
    topic: str


@dataclass
class _ShardResult:
    index: int
    records: int
    statuses: dict[str, int]
    table_rows: int
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


def _worker_model(token: str, call: dict[str, Any], model: Any) -> Any:
    """The run's model, loaded once per worker (the last few runs' models are kept)."""
    from veff.models import load_model

    state = _worker_state()
    with state.lock:
        mdl = state.models.get(token)
        if mdl is None:
            options = dict(call["model_kwargs"] or {})
            options.update(seq_length=call["seq_length"], output_labels=call["output_labels"])
            mdl = load_model(model, **options)
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

    def _send(self) -> None:
        with contextlib.suppress(Exception):  # progress is best effort
            from distributed import get_worker

            get_worker().log_event(self.topic, {"shard": self.shard, "done": self.done})


class _ShardHook:
    """Worker side of :func:`veff.score_variants`'s ``_shard`` hook: read a shard, write parts."""

    part = True

    def __init__(self, job: _Job, shard: Shard) -> None:
        self.job, self.shard = job, shard
        self.tag = uuid.uuid4().hex
        self.summary: Any = None
        self.vcf_options = {"part": True, "tag": self.tag}
        self.table: Any = None

    def reader(self, vcf: Any) -> VcfReader:
        return VcfReader(self.job.reader_path, regions=self.shard.regions)

    def fasta(self, path: Any) -> Fasta:
        return _worker_fasta(path)

    def probe(self, mdl: Any, length: int, **kwargs: Any) -> Any:
        """:func:`veff.engine.batching.probe_outputs`, once per run and worker."""
        from veff.engine.batching import probe_outputs

        state = _worker_state()
        key = (self.job.token, length, *sorted(kwargs.items()))
        with state.lock:
            spec = state.probes.get(key)
            if spec is None:
                spec = state.probes[key] = probe_outputs(mdl, length, **kwargs)
            return spec

    def open_table(self, path: Any, *, scores: Any, labels: Any) -> Any:
        from veff.writers.table import open_table_part

        fmt: Any = self.job.table_format
        self.table = open_table_part(path, fmt, scores=scores, labels=labels, tag=self.tag)
        return self.table

    def progress_bar(self, progress: bool) -> Any:
        return _EventBar(self.job.topic, self.shard.index)

    def merge(self, *args: Any) -> None:
        pass


def _part_paths(parts: str, index: int, table_format: str | None) -> dict[str, Path]:
    """Part files of a shard.

    The table part carries the table's suffix; it holds the part format of
    :func:`veff.writers.table.open_table_part`.
    """
    base = Path(parts) / f"shard-{index:06d}"
    return {
        "vcf": Path(f"{base}.vcf"),
        "table": Path(f"{base}.table.{table_format or 'tsv'}"),
        "pred": Path(f"{base}.pred"),
    }


def _score_shard(job: _Job, shard: Shard, model: Any) -> _ShardResult:
    """Dask task: score one shard into its part files."""
    from veff.pipeline import score_variants

    t0 = time.perf_counter()
    warnings.filterwarnings("ignore", message="no intervals found", category=UserWarning)
    paths = _part_paths(job.parts, shard.index, job.table_format)
    hook = _ShardHook(job, shard)
    call = dict(job.call)
    call.update(
        model=_worker_model(job.token, job.call, model),
        vcf=job.reader_path,
        output=paths["vcf"] if call["output"] is not None else None,
        table=paths["table"] if call["table"] is not None else None,
        progress=False,
        command=None,
        _shard=hook,
    )
    result = score_variants(**call)
    if call["return_predictions"]:
        frames = result if isinstance(result, dict) else {}
        tmp = paths["pred"].with_name(f".{paths['pred'].name}.{hook.tag}")
        with open(tmp, "wb") as fh:
            pickle.dump(
                {name: (list(df.index), df.to_numpy()) for name, df in frames.items()},
                fh,
                protocol=pickle.HIGHEST_PROTOCOL,
            )
        os.replace(tmp, paths["pred"])
    summary = hook.summary
    rows = hook.table.rows_written if hook.table is not None else 0
    return _ShardResult(shard.index, summary.records, dict(summary.statuses), rows, time.perf_counter() - t0)
