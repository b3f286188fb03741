"""The run summary as a JSON file (``--summary-json``), committed with the run's other outputs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from veff.errors import InputError
from veff.writers._atomic import AtomicOutput, AtomicPath
from veff.writers.sink import ScoredChunk

__all__ = ["SummaryJson"]


class SummaryJson(AtomicOutput):
    """Write a run's summary, as indented JSON, when the run is complete (a :class:`~veff.writers.sink.Sink`).

    Parameters
    ----------
    path
        Output ``.json`` file; it appears only on :meth:`commit`.
    summary
        Called once, on :meth:`finish`, for the JSON-ready summary of the run (give this sink
        last, so that the summary covers the finishing of the other outputs).
    """

    def __init__(self, path: str | os.PathLike[str], summary: Callable[[], dict[str, Any]]) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            msg = f"{self.path}: output folder {self.path.parent} does not exist"
            raise InputError(msg)
        self._summary = summary
        self._atomic = AtomicPath(self.path)

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Nothing per chunk: the engine counts the records."""

    def abort(self) -> None:
        """Remove the temporary file, if written (a no-op after :meth:`commit`)."""
        if not self._committed:
            self._atomic.discard()

    def _finish(self) -> None:
        self._atomic.tmp.write_text(json.dumps(self._summary(), indent=2) + "\n")
