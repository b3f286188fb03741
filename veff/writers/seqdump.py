"""Dump the model inputs that a run would score to HDF5, without running the model.

For quality control, or to run the model elsewhere: one row per scored ALT (the ALTs whose status
is ``ok``, ``contig_edge`` or ``ref_mismatch_scored``), in input order, holding exactly the arrays
the model would receive (one-hot, converted to the model's input layout, N bases as the model's
``n_value``).

HDF5 layout (``format="veff-sequences"``, ``format_version="1"``)
----------------------------------------------------------------
::

    /                      attrs: format, format_version, veff_version, model, layout (e.g. "4,L"),
                                  seq_length, n_value, alphabet ("ACGT"), rc (bool)
    /ref                   (N, *layout) float32  reference window of each scored ALT
    /alt                   (N, *layout) float32  alternative window
    /ref_rc, /alt_rc       (N, *layout) float32  reverse complements (only when rc)
    /variants/key          (N,) str   chrom:pos:ref:alt (as in the VCF)
    /variants/chrom, id, ref, alt, status
                           (N,) str
    /variants/pos          (N,) int64  1-based VCF position
    /variants/window_chrom (N,) str    FASTA contig of the window
    /variants/window_start (N,) int64  0-based start of the window (may be negative at a contig
                                       start, where the window is padded with N)

A record with several scored ALTs repeats its reference window once per ALT, so row ``k`` of
``ref`` and ``alt`` always form a pair. Datasets are chunked, gzip-compressed and appended chunk by
chunk; the file appears under its name only when the run succeeds.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from veff.errors import InputError
from veff.variants.sequences import one_hot, reverse_complement_codes
from veff.writers._atomic import AtomicOutput, AtomicPath
from veff.writers._h5 import H5Appender
from veff.writers.sink import ScoredChunk

if TYPE_CHECKING:
    from veff.models.base import Model
    from veff.variants.windows import WindowSet

__all__ = ["FORMAT_VERSION", "SeqDumpWriter"]

FORMAT = "veff-sequences"
FORMAT_VERSION = "1"


class SeqDumpWriter(AtomicOutput):
    """Append the model inputs of each chunk of windows to an HDF5 file.

    Parameters
    ----------
    path
        Output ``.h5`` file; it appears only on :meth:`close`.
    model
        The model whose input layout and N value are used (it is never called).
    seq_length
        Window length L.
    rc
        Also write the reverse complements.
    """

    def __init__(self, path: str | os.PathLike[str], *, model: Model, seq_length: int, rc: bool) -> None:
        import h5py

        from veff._version import __version__

        self.path = Path(path)
        if not self.path.parent.is_dir():
            msg = f"{self.path}: output folder {self.path.parent} does not exist"
            raise InputError(msg)
        self.layout = model.layout
        self.n_value = float(model.n_value)
        self.rc = rc
        self.rows_written = 0
        self._atomic = AtomicPath(self.path)
        self._h5: Any = h5py.File(self._atomic.tmp, "w")
        attrs = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "veff_version": __version__,
            "model": model.name,
            "layout": str(self.layout),
            "seq_length": seq_length,
            "n_value": self.n_value,
            "alphabet": "ACGT",
            "rc": rc,
        }
        self._h5.attrs.update(attrs)
        self._app = H5Appender(self._h5)
        empty = np.empty((0, seq_length), dtype=np.uint8)
        self._append(empty, empty, [], [], np.empty(0, np.int64))

    def write(self, ws: WindowSet) -> None:
        """Append the inputs of the scored ALTs of one chunk."""
        slots = [(int(i), int(a)) for i, a in ws.alt_slot]
        meta = [(ws.variants[i], ws.variants[i].alts[a], str(ws.statuses[i][a])) for i, a in slots]
        regions = [ws.ref_regions[r] for r in ws.alt_ref.tolist()]
        self._append(
            ws.ref_codes[ws.alt_ref],
            ws.alt_codes,
            meta,
            [r.chrom for r in regions],
            np.array([r.start for r in regions], np.int64),
        )

    def write_scored(self, chunk: ScoredChunk) -> None:
        """Append the inputs of the scored ALTs of one chunk (:class:`~veff.writers.sink.Sink`; no scores)."""
        self.write(chunk.windows)

    def _append(
        self,
        ref_codes: np.ndarray,
        alt_codes: np.ndarray,
        meta: list[tuple[Any, str, str]],
        window_chrom: list[str],
        window_start: np.ndarray,
    ) -> None:
        groups = {"ref": ref_codes, "alt": alt_codes}
        if self.rc:
            groups |= {
                "ref_rc": reverse_complement_codes(ref_codes),
                "alt_rc": reverse_complement_codes(alt_codes),
            }
        for name, codes in groups.items():
            self._app.append(name, self.layout.to_model(one_hot(codes, self.n_value)))
        app = self._app
        app.append("variants/key", [v.key(a) for v, a, _ in meta])
        app.append("variants/chrom", [v.chrom for v, _, _ in meta])
        app.append("variants/pos", np.array([v.pos for v, _, _ in meta], dtype=np.int64))
        app.append("variants/id", [v.id for v, _, _ in meta])
        app.append("variants/ref", [v.ref for v, _, _ in meta])
        app.append("variants/alt", [a for _, a, _ in meta])
        app.append("variants/status", [s for _, _, s in meta])
        app.append("variants/window_chrom", window_chrom)
        app.append("variants/window_start", window_start)
        self.rows_written += len(meta)

    def _finish(self) -> None:
        self._h5.close()
