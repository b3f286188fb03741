"""Calibration files (``.calib.h5``): write and read a :class:`veff.scoring.calibration.Calibration`.

Layout (``format="veff-calibration"``, ``format_version="2"``)::

    /                       attrs: format, format_version, veff_version, background (str),
                                   n_quantiles, options (JSON object, see below)
    /labels                 (T,)    str      model output labels
    /probabilities          (Q,)    float64  0, 1/(Q-1), ..., 1
    /scores/<score>/abs     (Q, T)  float32  quantiles of |score| per output
    /scores/<score>/signed  (Q, T)  float32  quantiles of the signed score per output
    /max_abs_labels         (T',)   str      the outputs /scores/<score>/max_abs is over
    /scores/<score>/max_abs (Q,)    float32  quantiles of each ALT's largest |score| over those outputs
    /scores/<score>/count   (T,)    int64    background values (not NaN) per output

``options`` holds ``model`` (name), ``model_checksum`` (``sha256:<hex>``), ``model_checksum_of``
(``files``: the model file, its weights or its directory; ``predictions``: a model object's
outputs on fixed sequences), ``scores``, ``score_kwargs`` (by score), ``rc``, ``seq_length``,
``aggregate``, ``centering``, ``output_offset``, ``rc_swap_tasks``, ``labels``, ``background``
(how it was drawn: ``vcf`` or ``random_snvs`` with ``n``, ``seed``, ``regions``, ``fasta``).
Score groups appear in the order of the run's scores. Version 2 added ``/max_abs_labels``
(``veff calibrate --model-outputs``); a version-1 file has none, and its ``max_abs`` is over all
outputs, which is how it is read. Readers refuse other formats and versions with one line. The file
appears under its name only when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from veff._version import __version__
from veff.errors import InputError
from veff.scoring.calibration import Calibration
from veff.writers._atomic import AtomicPath
from veff.writers._h5 import check_format, read_strings

__all__ = ["FORMAT", "FORMAT_VERSION", "READ_VERSIONS", "read_calibration", "write_calibration"]

FORMAT = "veff-calibration"
FORMAT_VERSION = "2"
#: versions :func:`read_calibration` reads (1: no ``/max_abs_labels``, its max_abs is over all outputs)
READ_VERSIONS = ("1", "2")


def write_calibration(calibration: Calibration, path: str | os.PathLike[str]) -> Path:
    """Write ``calibration`` to ``path`` (atomically); returns the path."""
    import h5py

    final = Path(path)
    if not final.parent.is_dir():
        msg = f"{final}: output folder {final.parent} does not exist"
        raise InputError(msg)
    atomic = AtomicPath(final)
    try:
        with h5py.File(atomic.tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["veff_version"] = __version__
            f.attrs["background"] = calibration.background
            f.attrs["n_quantiles"] = calibration.n_quantiles
            f.attrs["options"] = json.dumps(calibration.options, sort_keys=True, default=str)
            labels = np.array(calibration.labels, dtype=object)
            f.create_dataset("labels", data=labels, dtype=h5py.string_dtype())
            over = np.array(calibration.max_abs_labels, dtype=object)
            f.create_dataset("max_abs_labels", data=over, dtype=h5py.string_dtype())
            f.create_dataset("probabilities", data=np.linspace(0.0, 1.0, calibration.n_quantiles))
            group = f.create_group("scores", track_order=True)
            for s in calibration.scores:
                g = group.create_group(s)
                for name, arr in (
                    ("abs", calibration.abs_grid[s]),
                    ("signed", calibration.signed_grid[s]),
                    ("max_abs", calibration.max_abs_grid[s]),
                ):
                    g.create_dataset(name, data=np.asarray(arr, np.float32), compression="gzip", shuffle=True)
                g.create_dataset("count", data=np.asarray(calibration.counts[s], np.int64))
        atomic.commit()
    except BaseException:
        atomic.discard()
        raise
    return final


def read_calibration(path: str | os.PathLike[str]) -> Calibration:
    """Read a calibration file written by :func:`write_calibration`.

    Raises
    ------
    InputError
        When the file is missing, not HDF5, not a veff calibration or of another format version.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        msg = f"{p}: calibration file not found"
        raise InputError(msg)
    try:
        f = h5py.File(p, "r")
    except OSError:
        msg = f"{p}: not an HDF5 file (expected a calibration written by `veff calibrate`)"
        raise InputError(msg) from None
    with f:
        check_format(f.attrs, p, FORMAT, READ_VERSIONS, "veff calibration file")
        scores = list(f["scores"])
        labels = read_strings(f["labels"]).tolist()
        cal = Calibration(
            labels=labels,
            abs_grid={s: f["scores"][s]["abs"][()] for s in scores},
            signed_grid={s: f["scores"][s]["signed"][()] for s in scores},
            max_abs_grid={s: f["scores"][s]["max_abs"][()] for s in scores},
            counts={s: f["scores"][s]["count"][()] for s in scores},
            background=str(f.attrs["background"]),
            options=json.loads(str(f.attrs["options"])),
            path=p,
            max_abs_labels=read_strings(f["max_abs_labels"]).tolist() if "max_abs_labels" in f else labels,
        )
    return cal
