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
or shard is padded, :class:`veff.predict.BatchStream`), and float kernels change the last bits of
a result with the batch shape, not with the batch's other rows.

The work folder (default: a hidden folder beside the output) must be visible to the workers under
the same path, as must the model, the FASTA and the VCF; it is removed at the end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import shutil
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from veff._progress import progress_bar
from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader
from veff.io.vcf_index import ContigIndex, VcfIndex, build_index, find_index, is_bgzf, read_index

__all__ = ["Shard", "plan_shards", "score_distributed"]

log = logging.getLogger("veff")

SHARDS_PER_THREAD = 4
MIN_SHARD_RECORDS = 16
MAX_SHARD_RECORDS = 250_000
SCAN_BYTES = 4 * 2**20  # contigs with less data (estimated, uncompressed) are cut at record positions
RETRIES = 2
_PROGRESS_SECONDS = 0.5
_MODELS_PER_WORKER = 2


# ---------------------------------------------------------------------------------------------
# Shards


@dataclass(frozen=True)
class Shard:
    """A piece of the VCF: regions read one after another (see :class:`veff.io.vcf.VcfReader`).

    Attributes
    ----------
    index
        Position of the shard in the file (parts are merged in this order).
    regions
        ``(chrom, start, end)``: records with ``start <= POS <= end`` (1-based; ``end`` None: to
        the contig's end).
    records
        Estimated number of records (exact for whole contigs of an index that counts them).
    """

    index: int
    regions: tuple[tuple[str, int, int | None], ...]
    records: int


def _linear(voffset: int) -> int:
    """A virtual file offset as an estimate of the uncompressed bytes before it."""
    return (voffset >> 16) * 4 + (voffset & 0xFFFF)


def _contig_records(c: ContigIndex) -> int:
    if c.records is not None:
        return c.records
    return max(1, (_linear(c.end) - _linear(c.begin)) // 100)


def _index_starts(c: ContigIndex, pieces: int) -> list[int]:
    """1-based starts of pieces 2..n of contig ``c``, at index windows, about equal in file bytes."""
    lo, hi = _linear(c.begin), _linear(c.end)
    total = max(1, hi - lo)
    starts: list[int] = []
    seen = lo
    j = 1
    for window, voff in c.windows:
        if j >= pieces:
            break
        seen = max(seen, _linear(voff))
        if window > 0 and (seen - lo) * pieces >= j * total and (not starts or window + 1 > starts[-1]):
            starts.append(window + 1)
            while j < pieces and (seen - lo) * pieces >= j * total:
                j += 1
    return starts


def _scan_starts(path: str | os.PathLike[str], chrom: str, pieces: int) -> list[int]:
    """1-based starts of pieces 2..n of ``chrom``, of equal record counts (reads the positions)."""
    reader = VcfReader(path, regions=[(chrom, 0, None)])
    try:
        positions = [v.pos for v, _ in reader]
    finally:
        reader.close()
    starts: list[int] = []
    for j in range(1, pieces):
        pos = positions[j * len(positions) // pieces]
        if pos > (starts[-1] if starts else positions[0]):
            starts.append(pos)
    return starts


def plan_shards(
    index: VcfIndex, target_records: int, path: str | os.PathLike[str] | None = None
) -> list[Shard]:
    """Cut the indexed file into shards of about ``target_records`` records, in file order.

    Contigs of fewer records are grouped into one shard; larger ones are cut, at the index's
    windows, or, for contigs of less than :data:`SCAN_BYTES` of data (where the index is too
    coarse: htslib merges bins that share a BGZF block), at record positions read from ``path``.
    """
    target = max(1, target_records)
    shards: list[Shard] = []
    group: list[tuple[str, int, int | None]] = []
    group_n = 0

    def close_group() -> None:
        nonlocal group, group_n
        if group:
            shards.append(Shard(len(shards), tuple(group), group_n))
            group, group_n = [], 0

    for c in index.contigs:
        n = _contig_records(c)
        if n <= target:
            group.append((c.name, 0, None))
            group_n += n
            if group_n >= target:
                close_group()
            continue
        close_group()
        pieces = math.ceil(n / target)
        small = _linear(c.end) - _linear(c.begin) <= SCAN_BYTES
        if small and path is not None:
            starts = _scan_starts(path, c.name, pieces)
        else:
            starts = _index_starts(c, pieces)
        bounds = [0, *starts]
        share = max(1, round(n / len(bounds)))
        for k, start in enumerate(bounds):
            end = bounds[k + 1] - 1 if k + 1 < len(bounds) else None
            shards.append(Shard(len(shards), ((c.name, start, end),), share))
    close_group()
    return shards


def _target_records(total: int, threads: int, shard_records: int | None) -> int:
    if shard_records is not None:
        if shard_records < 1:
            msg = f"shard_records must be at least 1, got {shard_records}"
            raise InputError(msg)
        return shard_records
    per = math.ceil(total / max(1, threads * SHARDS_PER_THREAD))
    return int(min(MAX_SHARD_RECORDS, max(MIN_SHARD_RECORDS, per)))


def _read_magic(path: Path) -> bytes:
    import gzip

    with open(path, "rb") as fh:
        head = fh.read(2)
    opener: Any = gzip.open if head == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as fh:
            return bytes(fh.read(5))
    except (OSError, EOFError):
        return b""


def _link(src: Path, dst: Path) -> None:
    try:
        dst.symlink_to(src)
    except OSError:
        shutil.copyfile(src, dst)


def indexed_input(vcf: Path, work: Path) -> tuple[Path, VcfIndex]:
    """The VCF to read shards from (``vcf`` or a copy/link in ``work``) and its parsed index.

    Raises
    ------
    InputError
        When the records are not sorted, or the index cannot be read.
    """
    bcf = _read_magic(vcf).startswith(b"BCF")
    bgzf = is_bgzf(vcf)
    if bcf and not bgzf:
        msg = f"{vcf}: uncompressed BCF cannot be indexed; convert it with `bcftools view -Ob`"
        raise InputError(msg)
    index = find_index(vcf) if bgzf else None
    path = vcf
    if index is not None and bcf and not vcf.name.endswith(".bcf"):
        # cyvcf2 reads regions of a BCF only when its name ends in .bcf
        path = work / "input.bcf"
        _link(vcf, path)
        _link(index, Path(f"{path}{index.suffix}"))
        index = Path(f"{path}{index.suffix}")
    elif index is None:
        t0 = time.perf_counter()
        path = work / ("input.bcf" if bcf else "input.vcf.gz")
        if bgzf:
            _link(vcf, path)
        else:
            log.info("veff: %s has no index; compressing a copy into %s (bgzip and tabix it to skip this)",
                     vcf, work)
            _bgzip_copy(vcf, path)
        index = build_index(path)
        log.info("veff: indexed %s in %.1f s", vcf, time.perf_counter() - t0)
    header_contigs: list[str] | None = None
    if bcf:
        import pysam

        with pysam.VariantFile(str(path)) as vf:
            header_contigs = [str(name) for name in vf.header.contigs]
    return path, read_index(index, header_contigs)


def _bgzip_copy(src: Path, dst: Path) -> None:
    import gzip

    from veff.writers._text import BLOCK_BYTES, TextSink

    with open(src, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    sink = TextSink(dst, "bgzf")
    try:
        with gzip.open(src, "rb") if gz else open(src, "rb") as fh:
            while data := fh.read(BLOCK_BYTES):
                sink.write(data)
    finally:
        sink.close()


# ---------------------------------------------------------------------------------------------
# Worker side


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
        """:func:`veff.predict.probe_outputs`, once per run and worker."""
        from veff.predict import probe_outputs

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
        for key in ("model", "client", "workers", "scheduler", "work_dir", "shard_records"):
            job_call[key] = None
        job = _Job(
            token=uuid.uuid4().hex,
            call=job_call,
            reader_path=str(reader_path),
            parts=str(parts),
            table_format=_table_format(call["table"]),
            topic=self.topic,
        )
        self.bar = progress_bar(enabled=bool(call["progress"]), unit="variants", total=total)
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
        from veff.predict import probe_outputs

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
        collected: dict[str, list[np.ndarray]],
        keys: list[str],
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
                self._append(done.pop(self.merged), writer, table_writer, counts, collected, keys)
                merge_seconds += time.perf_counter() - t1
        summary.records += self.records
        total = self.index.records
        if total is not None and self.records != total:
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
        collected: dict[str, list[np.ndarray]],
        keys: list[str],
    ) -> None:
        paths = _part_paths(str(self.work / "parts"), res.index, _table_format(self.call["table"]))
        if writer is not None:
            writer.append_part(paths["vcf"], res.records)
            paths["vcf"].unlink()
        if table_writer is not None:
            table_writer.append_part(paths["table"], res.table_rows)
            paths["table"].unlink()
        if self.call["return_predictions"]:
            with open(paths["pred"], "rb") as fh:
                frames = pickle.load(fh)
            for name, (names, values) in frames.items():
                if len(names):
                    collected[name].append(values)
            keys.extend(next(iter(frames.values()), ([], None))[0])
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
