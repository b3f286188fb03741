"""What a run did: the counts its chunks add up to (:class:`Tally`) and its :class:`Summary`."""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from veff._version import __version__
from veff.errors import VeffWarning
from veff.types import SCORED_STATUSES, Status

if TYPE_CHECKING:
    from veff.variants.windows import WindowSet

__all__ = ["Summary", "Tally"]


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
    batch
        For ``--batch-size tune``: the sizes timed, their sequences per second and the size chosen
        (:meth:`veff.engine.batching.BatchTuning.report`); None otherwise.
    """

    records: int = 0
    alleles: int = 0
    scored: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str | None = None
    distributed: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    batch: dict[str, Any] | None = None

    def line(self) -> str:
        """One-line human summary."""
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        rate = self.records / self.seconds if self.seconds else 0.0
        tuned = ""
        if self.batch is not None:
            size, done = self.batch["size"], self.batch["tuned"]
            tuned = (
                f", batch {size} (tuned)"
                if done
                else f", batch {size} (too few sequences to tune)"
                if size is not None
                else ", batch not tuned (the run ended before every size was timed)"
            )
        return (
            f"veff: {self.records} records, {self.alleles} ALT alleles, {self.scored} scored "
            f"({parts}) in {self.seconds:.1f} s ({rate:.0f} records/s){tuned}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return (
            {
                "records": self.records,
                "alleles": self.alleles,
                "scored": self.scored,
                "statuses": dict(sorted(self.statuses.items())),
                "seconds": round(self.seconds, 3),
                "output": self.output,
                "veff_version": __version__,
                "timings": dict(self.timings),
            }
            | ({"distributed": self.distributed} if self.distributed is not None else {})
            | ({"batch": self.batch} if self.batch is not None else {})
        )


class Tally:
    """What the chunks of a run (and the parts of its shards) added up to: records and ALT statuses."""

    def __init__(self) -> None:
        self.records = 0
        self.statuses: Counter[str] = Counter()
        self.unknown_contigs: Counter[str] = Counter()  # records per contig the FASTA lacks (this process)

    def add(self, ws: WindowSet) -> None:
        """Count the records of one written chunk."""
        for v, sts in zip(ws.variants, ws.statuses, strict=True):
            self.statuses.update(map(str, sts))
            if sts and sts[0] is Status.UNKNOWN_CONTIG:
                self.unknown_contigs[v.chrom] += 1
        self.records += len(ws)

    def no_contig_found(self) -> bool:
        """Whether every ALT of the run was on a contig the FASTA lacks (at least one was)."""
        unknown = self.statuses.get(str(Status.UNKNOWN_CONTIG), 0)
        return unknown > 0 and unknown + self.statuses.get(str(Status.NO_ALT), 0) == sum(
            self.statuses.values()
        )

    def warn_unscored(self, fasta: str | os.PathLike[str]) -> None:
        """One warning each for ALTs on contigs the FASTA lacks and for NaN/inf model outputs."""
        unknown = self.statuses.get(str(Status.UNKNOWN_CONTIG), 0)
        if unknown:
            contigs = self.unknown_contigs
            named = ", ".join(f"{c} ({n})" for c, n in contigs.most_common(4))
            more = f" and {len(contigs) - 4} more" if len(contigs) > 4 else ""
            records = f"{sum(contigs.values())} records, " if contigs else ""
            where = f" on contigs {named}{more}" if named else ""
            warnings.warn(
                f"{unknown} ALT alleles ({records}status unknown_contig){where} are not scored: the FASTA "
                f"{fasta} has no such contig",
                VeffWarning,
                stacklevel=3,
            )
        bad = self.statuses.get(str(Status.NONFINITE), 0)
        if bad:
            warnings.warn(
                f"{bad} ALT alleles got NaN or infinite model outputs (status nonfinite); their values "
                "are written as the model gave them",
                VeffWarning,
                stacklevel=3,
            )

    def add_part(self, records: int, statuses: dict[str, int]) -> None:
        """Count the records of a shard's part."""
        self.statuses.update(statuses)
        self.records += records

    def summary(self, seconds: float, output: str | None, stages: dict[str, float] | None = None) -> Summary:
        """The :class:`Summary` of these counts (``stages``: seconds per stage, :attr:`Summary.timings`)."""
        counts = self.statuses
        return Summary(
            records=self.records,
            alleles=sum(counts.values()) - counts.get(str(Status.NO_ALT), 0),
            scored=sum(v for k, v in counts.items() if Status(k) in SCORED_STATUSES),
            statuses=dict(counts),
            seconds=seconds,
            output=output,
            timings={k: round(v, 3) for k, v in (stages or {}).items()} | {"total": round(seconds, 3)},
        )
