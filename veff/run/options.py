"""``RunOptions``: every option of a ``score_variants`` run, typed, checked once when it is made.

The Python API (:func:`veff.score_variants`) and the command line (``veff score-variants``, through
the API) build one :class:`RunOptions`; the pipeline and the distributed driver read it and check
nothing again. A bad option is one :class:`~veff.errors.InputError` line, raised on construction.
"""

from __future__ import annotations

import numbers
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from veff.engine.progress import DEFAULT_INTERVAL
from veff.errors import InputError, check_int
from veff.io.vcf import STDIN
from veff.io.vcf_regions import RegionSet
from veff.models import parse_output_layout
from veff.scoring.tracks import Aggregation
from veff.variants.regions import Centering
from veff.variants.shuffle import DEFAULT_NULL_CORE, parse_null
from veff.variants.windows import DEFAULT_MAX_INDEL_LENGTH, RefMismatchPolicy
from veff.writers.table import table_format
from veff.writers.vcf import InfoAggregate, InfoStyle, OutputType

__all__ = ["RunOptions"]

PathLike = str | os.PathLike[str]

_INFO_KEY_START = re.compile(r"[A-Za-z_][0-9A-Za-z_.]*")


def _choice(name: str, value: Any, kind: Any, *, optional: bool = False) -> None:
    allowed = get_args(kind)
    if (value is None and optional) or value in allowed:
        return
    choices = " or ".join([*map(repr, allowed), *(["None"] if optional else [])])
    msg = f"{name} must be {choices}, got {value!r}"
    raise InputError(msg)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The options of one run of :func:`veff.score_variants` (see its parameters for each field).

    Construction checks every option and raises :class:`~veff.errors.InputError` with one line
    naming the first bad one. Three fields are derived on construction: :attr:`select` (the parsed
    ``regions`` / ``regions_file``), :attr:`aggregation` (the parsed ``aggregate``) and
    :attr:`n_null` (the null windows per ALT that ``null`` asks for).

    Examples
    --------
    >>> RunOptions(model="m.pt", vcf="in.vcf", fasta="ref.fa", output="out.vcf.gz").sharded
    False
    >>> RunOptions(model="m.pt", vcf="in.vcf", fasta="ref.fa")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    veff.errors.InputError: nothing to do: give an output VCF, a table, dump_sequences or ...
    """

    model: Any
    vcf: PathLike
    fasta: PathLike
    output: PathLike | None = None
    scores: Sequence[str | Callable[..., Any]] | None = None
    score_kwargs: Sequence[dict[str, Any]] | None = None
    rc: bool | None = None
    seq_length: int | None = None
    restriction_bed: PathLike | None = None
    regions: str | Sequence[str] | None = None
    regions_file: PathLike | None = None
    batch_size: int | Literal["tune"] | None = None
    threads: int | None = None
    model_outputs: Sequence[str | int] | None = None
    output_labels: Sequence[str] | None = None
    output_layout: str | None = None
    aggregate: str | Sequence[str] | Aggregation | None = None
    output_offset: int | None = None
    rc_swap_tasks: str | Sequence[Sequence[str | int]] | None = None
    centering: Centering | None = None
    ref_mismatch: RefMismatchPolicy = "skip"
    max_indel_length: int = DEFAULT_MAX_INDEL_LENGTH
    info_prefix: str | None = None
    info_style: InfoStyle = "veff"
    info_aggregate: InfoAggregate | None = None
    output_type: OutputType | None = None
    table: PathLike | None = None
    dump_sequences: PathLike | None = None
    return_predictions: bool = False
    summary_json: PathLike | None = None
    progress: bool = False
    progress_interval: float = DEFAULT_INTERVAL
    command: str | None = None
    model_kwargs: Mapping[str, Any] | None = None
    dataloader_args: PathLike | dict[str, Any] | Sequence[str] | None = None
    client: Any = None
    workers: int | None = None
    scheduler: str | None = None
    work_dir: PathLike | None = None
    shard_records: int | None = None
    calibration: PathLike | None = None
    force_calibration: bool = False
    null: str | None = None
    null_seed: int = 0
    null_core: int = DEFAULT_NULL_CORE
    record_options: bool = False  # veff.calibrate: attach the run's checked options to the frames
    select: RegionSet | None = field(init=False, default=None, compare=False)
    aggregation: Aggregation = field(init=False, default_factory=Aggregation, compare=False)
    n_null: int = field(init=False, default=0, compare=False)

    def __post_init__(self) -> None:
        self._check_outputs()
        _choice("ref_mismatch", self.ref_mismatch, RefMismatchPolicy)
        _choice("centering", self.centering, Centering, optional=True)
        _choice("info_style", self.info_style, InfoStyle)
        _choice("info_aggregate", self.info_aggregate, InfoAggregate, optional=True)
        _choice("output_type", self.output_type, OutputType, optional=True)
        if self.info_aggregate is not None and self.info_style == "kipoi":
            msg = "--info-aggregate is not available with --info-style kipoi"
            raise InputError(msg)
        for name, low in (("threads", 1), ("seq_length", 1), ("shard_records", 1)):
            check_int(name, getattr(self, name), low)
        self._check_batch_size()
        check_int("max_indel_length", self.max_indel_length, 0, optional=False)
        check_int("output_offset", self.output_offset, 0)
        if isinstance(self.progress_interval, bool) or not (
            isinstance(self.progress_interval, numbers.Real) and self.progress_interval > 0
        ):
            msg = f"progress_interval must be more than 0 seconds, got {self.progress_interval}"
            raise InputError(msg)
        if (
            self.info_prefix is not None
            and self.info_style == "veff"
            and not _INFO_KEY_START.fullmatch(self.info_prefix)
        ):
            msg = (
                f"info prefix {self.info_prefix!r} is not a valid VCF INFO key start; use letters, digits, "
                "'_' and '.'"
            )
            raise InputError(msg)
        self._check_sharding()
        object.__setattr__(self, "n_null", parse_null(self.null))
        check_int("null_core", self.null_core, 1, optional=False)
        if self.dump_sequences is not None and (self.calibration is not None or self.n_null):
            msg = "dump_sequences runs no model: give it without calibration or null"
            raise InputError(msg)
        object.__setattr__(self, "aggregation", Aggregation.parse(self.aggregate))
        object.__setattr__(self, "output_layout", parse_output_layout(self.output_layout))
        object.__setattr__(self, "select", RegionSet.from_options(self.regions, self.regions_file))

    def _check_outputs(self) -> None:
        if self.dump_sequences is not None and (
            self.output is not None or self.table is not None or self.return_predictions
        ):
            msg = "dump_sequences runs no model: give it without an output VCF, a table or return_predictions"
            raise InputError(msg)
        nothing = self.output is None and self.table is None and self.dump_sequences is None
        if nothing and not self.return_predictions:
            msg = "nothing to do: give an output VCF, a table, dump_sequences or return_predictions=True"
            raise InputError(msg)
        if self.table is not None:
            table_format(self.table)

    def _check_batch_size(self) -> None:
        if not isinstance(self.batch_size, str):
            check_int("batch_size", self.batch_size, 1)
            return
        if self.batch_size != "tune":
            msg = f"batch_size must be a number of sequences, 'tune' or None, got {self.batch_size!r}"
            raise InputError(msg)
        if self.sharded:
            msg = (
                "batch_size 'tune' (--batch-size tune) times batch sizes in one process, so the shards of a "
                "sharded run (--workers/--scheduler) would choose different ones: give a number"
            )
            raise InputError(msg)

    def _check_sharding(self) -> None:
        given = [k for k in ("client", "workers", "scheduler") if getattr(self, k) is not None]
        if len(given) > 1:
            msg = f"give one of client, workers and scheduler, not {' and '.join(given)}"
            raise InputError(msg)
        check_int("workers", self.workers, 1)
        if given and self.dump_sequences is not None:
            msg = "dump_sequences is not sharded; run it without workers, scheduler or client"
            raise InputError(msg)
        if given and str(self.vcf) == STDIN:
            msg = (
                "a sharded run (--workers/--scheduler) reads the VCF by region through its index; it "
                "cannot read standard input: write it to a file first (bcftools view -Oz -o in.vcf.gz)"
            )
            raise InputError(msg)

    @property
    def sharded(self) -> bool:
        """Whether the run is sharded over a Dask cluster (``client``, ``workers`` or ``scheduler``)."""
        return self.client is not None or self.workers is not None or self.scheduler is not None
