"""The shard strategy of a run (:class:`ShardHook`): where its records come from and its outputs go.

:class:`LocalHook` is a run in one process. :mod:`veff.distributed` implements the two sides of a
sharded run: one shard (:class:`veff.distributed.worker.WorkerHook`: it reads the shard's
regions and writes part files) and the driver (:class:`veff.distributed.driver.DriverHook`: it
reads no record and appends the shards' parts to the outputs). The pipeline talks to the
strategy only through this protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Protocol

from veff.engine.batching import probe_outputs
from veff.engine.outputs import OutputSpec
from veff.engine.progress import ProgressBar, progress_bar
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader
from veff.models import Model, load_model
from veff.models.ensemble import EnsembleModel
from veff.run.options import RunOptions
from veff.run.summary import Summary, Tally
from veff.writers.sink import PartFiles, Sink

__all__ = ["LocalHook", "ShardHook", "load_run_model", "log_summary"]

log = logging.getLogger("veff")
summary_log = logging.getLogger("veff.summary")  # the run's one-line summary (shown by default)


def log_summary(summary: Summary) -> None:
    """Log the stage timings (info) and the run's one-line summary (``veff.summary``)."""
    log.info("timings (s): %s", ", ".join(f"{k} {v:.2f}" for k, v in summary.timings.items()))
    summary_log.info(summary.line())


def load_run_model(model: Any, opts: RunOptions) -> Model:
    """Load ``model`` (path, name or object, or a list of them: an ensemble) with the run's options."""
    kwargs = dict(opts.model_kwargs or {})
    if isinstance(model, (list, tuple)):  # an ensemble: outputs averaged (veff.models.ensemble)
        return EnsembleModel([load_run_model(m, opts) for m in model])
    kwargs["output_layout"] = opts.output_layout or kwargs.get("output_layout")
    return load_model(model, seq_length=opts.seq_length, output_labels=opts.output_labels, **kwargs)


class ShardHook(Protocol):
    """How a run reads its records, probes its model, shows progress and completes its outputs.

    :class:`LocalHook` runs in one process. :mod:`veff.distributed` implements the two sides of a
    sharded run: a shard (its reader reads the shard's regions, its outputs are part files,
    :attr:`part`) and the driver (its reader reads no record; :meth:`merge` appends the shards'
    parts to the outputs).
    """

    @property
    def part(self) -> PartFiles | None:
        """Where this run writes the part files of one shard, or None when it writes the outputs."""
        ...

    @property
    def own_windows(self) -> bool:
        """Whether a model may make its own windows (a Kipoi dataloader; not sharded)."""
        ...

    def load_model(self, opts: RunOptions) -> Model:
        """The run's model (:func:`load_run_model`; a worker keeps it for the run's next shards)."""
        ...

    def fasta(self, path: str | os.PathLike[str]) -> Fasta:
        """Open the reference."""
        ...

    def reader(self, path: str | os.PathLike[str]) -> VcfReader:
        """Open the records to score."""
        ...

    def probe(self, model: Model, length: int, offset: int | None) -> OutputSpec:
        """The structure of the model's outputs (:func:`veff.engine.batching.probe_outputs`)."""
        ...

    def progress(self, opts: RunOptions, reader: VcfReader) -> ProgressBar:
        """The progress bar the chunks update (``opts.progress``: shown at all)."""
        ...

    def merge(self, sinks: Sequence[Sink], tally: Tally) -> None:
        """Called when the run's own chunks are written, before the sinks are committed."""
        ...

    def annotate(self, summary: Summary) -> None:
        """Add what only the strategy knows to the run's summary (before it is written)."""
        ...

    def finished(self, summary: Summary) -> None:
        """Called with the summary when the outputs are committed."""
        ...


class LocalHook:
    """A run in one process: every record of the VCF, the outputs themselves."""

    part: PartFiles | None = None
    own_windows = True

    def load_model(self, opts: RunOptions) -> Model:
        """The run's model, loaded here."""
        return load_run_model(opts.model, opts)

    def fasta(self, path: str | os.PathLike[str]) -> Fasta:
        """The FASTA itself."""
        return Fasta(path)

    def reader(self, path: str | os.PathLike[str]) -> VcfReader:
        """Every record of the VCF."""
        return VcfReader(path)

    def probe(self, model: Model, length: int, offset: int | None) -> OutputSpec:
        """Probe the model with one all-N window."""
        return probe_outputs(model, length, offset=offset)

    def progress(self, opts: RunOptions, reader: VcfReader) -> ProgressBar:
        """Progress on stderr when asked: a total from the VCF's index, else estimated from bytes read."""
        return progress_bar(
            opts.progress,
            unit="variants",
            total=reader.indexed_records() if opts.select is None else None,
            size=reader.size,
            position=reader.bytes_read,
            interval=opts.progress_interval,
        )

    def merge(self, sinks: Sequence[Sink], tally: Tally) -> None:
        """Nothing to merge."""

    def annotate(self, summary: Summary) -> None:
        """Nothing to add."""

    def finished(self, summary: Summary) -> None:
        """Log the stage timings and the summary line."""
        log_summary(summary)
