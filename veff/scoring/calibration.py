"""Calibrated scores: quantile grids of a background's scores, and percentiles against them.

A :class:`Calibration` holds, per score and model output, the quantiles of ``|score|`` and of the
signed score over a background (a VCF's variants or random SNVs, see :func:`veff.calibrate`) at
``n_quantiles`` evenly spaced probabilities (default 10,001: steps of 1e-4), the quantiles of each
background ALT's largest magnitude over a set of outputs (all of them, or the ``model_outputs``
given to :func:`veff.calibrate`: the magnitude of the numeric tag ``<TAG>_VALUE`` and of
``--info-aggregate max_abs`` of a run whose VCF carries those outputs), the run options the
background was scored with, and a checksum of the model. The file format is in
:mod:`veff.writers.calibration`; docs/scores.md ("Calibrated scores") says what the numbers mean.

Percentiles are on a 0-100 scale. A value ``x`` between grid values ``q[k]`` and ``q[k + 1]``
gets ``100 * (k + (x - q[k]) / (q[k + 1] - q[k])) / (Q - 1)`` (linear between the background's
quantiles); a value equal to one or more grid values gets the middle of their range (the mid-rank
rule, so ties such as exact zeros sit at the middle of the mass they share, not at its top);
values below the smallest or above the largest background value get 0 or 100; NaN stays NaN.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import InputError

__all__ = [
    "CHECKED_OPTIONS",
    "DEFAULT_QUANTILES",
    "Calibration",
    "build_calibration",
    "model_checksum",
    "percentile",
    "quantile_grid",
    "run_options",
]

DEFAULT_QUANTILES = 10_001
#: run options that must match between a calibration and the run that uses it
CHECKED_OPTIONS = (
    "model_checksum",
    "rc",
    "seq_length",
    "aggregate",
    "centering",
    "output_offset",
    "rc_swap_tasks",
)


def quantile_grid(values: np.ndarray, n_quantiles: int = DEFAULT_QUANTILES) -> np.ndarray:
    """Quantiles of each column at ``n_quantiles`` evenly spaced probabilities, NaN ignored.

    Parameters
    ----------
    values
        shape (n,) or (n, T).
    n_quantiles
        Q, grid points from probability 0 to 1.

    Returns
    -------
    numpy.ndarray
        float32, shape (Q,) or (Q, T); a column without values is all NaN.
    """
    arr = np.asarray(values, dtype=np.float64)
    flat = arr.reshape(len(arr), -1)
    probs = np.linspace(0.0, 1.0, n_quantiles)
    out = np.full((n_quantiles, flat.shape[1]), np.nan, np.float32)
    for t in range(flat.shape[1]):
        col = flat[:, t]
        col = col[~np.isnan(col)]
        if len(col):
            out[:, t] = np.quantile(col, probs)
    return out[:, 0] if arr.ndim == 1 else out


def percentile(grid: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Percentiles (0-100) of ``values`` among a background given by its quantile grid.

    Parameters
    ----------
    grid
        float, shape (Q,) or (Q, T): sorted quantiles per column (see :func:`quantile_grid`).
    values
        shape (n,) or (n, T).

    Returns
    -------
    numpy.ndarray
        float32 of the shape of ``values``; NaN where the value or the column's grid is NaN.

    Examples
    --------
    >>> g = quantile_grid(np.arange(101.0), 101)
    >>> percentile(g, np.array([-1.0, 25.0, 25.5, 200.0])).tolist()
    [0.0, 25.0, 25.5, 100.0]
    """
    g = np.asarray(grid, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    g2, x2 = g.reshape(len(g), -1), x.reshape(len(x), -1)
    q = len(g2) - 1
    out = np.full(x2.shape, np.nan)
    for t in range(x2.shape[1]):
        col, v = g2[:, t], x2[:, t]
        if np.isnan(col[0]):
            continue
        lo = np.searchsorted(col, v, side="left")
        hi = np.searchsorted(col, v, side="right")
        tie = hi > lo
        # between grid points k-1 and k (k = lo): interpolate
        k = np.clip(lo, 1, q)
        left, right = col[k - 1], col[k]
        width = right - left
        frac = np.where(width > 0, (v - left) / np.where(width > 0, width, 1.0), 0.0)
        between = (k - 1 + np.clip(frac, 0.0, 1.0)) / q
        res = np.where(tie, (lo + hi - 1) / 2 / q, between)
        res = np.where(v < col[0], 0.0, np.where(v > col[-1], 1.0, res))
        out[:, t] = np.where(np.isnan(v), np.nan, 100.0 * res)
    return out.astype(np.float32).reshape(x.shape)


@dataclass
class Calibration:
    """The background distribution of a run's scores (see the module docstring).

    Attributes
    ----------
    labels
        Model output labels (T).
    abs_grid, signed_grid
        Per score, float32 (Q, T): quantiles of ``|score|`` and of the score.
    max_abs_grid
        Per score, float32 (Q,): quantiles of the largest ``|score|`` over the outputs
        :attr:`max_abs_labels` of an ALT.
    counts
        Per score, int64 (T,): background values (not NaN) per output.
    background
        What the background was, in words (goes into output headers).
    options
        The run options the background was scored with (:data:`CHECKED_OPTIONS`, ``scores``
        with their ``score_kwargs``, ``model``, ...).
    path
        The file it was read from, if any.
    max_abs_labels
        The outputs :attr:`max_abs_grid` takes the largest magnitude over (empty: all
        :attr:`labels`).
    """

    labels: list[str]
    abs_grid: dict[str, np.ndarray]
    signed_grid: dict[str, np.ndarray]
    max_abs_grid: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    background: str
    options: dict[str, Any]
    path: Path | None = None
    max_abs_labels: list[str] = field(default_factory=list)
    n_quantiles: int = field(init=False)

    def __post_init__(self) -> None:
        self.max_abs_labels = list(self.max_abs_labels) or list(self.labels)
        first = next(iter(self.abs_grid.values()), None)
        self.n_quantiles = 0 if first is None else len(first)

    @property
    def scores(self) -> list[str]:
        """Calibrated score names, in order."""
        return list(self.abs_grid)

    @property
    def n_background(self) -> int:
        """Background ALTs (the largest per-output count)."""
        return max((int(c.max()) for c in self.counts.values() if len(c)), default=0)

    def describe(self) -> str:
        """One line for output headers: the background and where the calibration came from."""
        where = f"; calibration {self.path.name}" if self.path is not None else ""
        return f"{self.background}{where}"

    def check(
        self, options: Mapping[str, Any], scores: Sequence[str], labels: Sequence[str], *, force: bool = False
    ) -> list[str]:
        """Refuse a run whose options or model differ from the calibration's.

        Parameters
        ----------
        options
            The run's options (:data:`CHECKED_OPTIONS` and ``score_kwargs`` by score).
        scores
            The run's score names.
        labels
            The run's output labels (all of them).
        force
            Return the differences instead of raising (scores and labels must still be there).

        Returns
        -------
        list of str
            The differences (empty unless ``force``).

        Raises
        ------
        InputError
            One line naming the file and the first difference.
        """
        where = self.path or "calibration"
        missing = [s for s in scores if s not in self.abs_grid]
        if missing:
            msg = (
                f"{where}: no calibration for score {missing[0]!r} (it has {', '.join(self.scores)}); "
                "calibrate with the same --scores"
            )
            raise InputError(msg)
        absent = [lab for lab in labels if lab not in self.labels]
        if absent:
            msg = f"{where}: calibrated for other model outputs (no {absent[0]!r}); calibrate this model"
            raise InputError(msg)
        diffs = []
        for key in CHECKED_OPTIONS:
            mine, theirs = self.options.get(key), options.get(key)
            if _canon(mine) != _canon(theirs):
                diffs.append(f"{key}={_show(mine)} in the calibration, {_show(theirs)} in this run")
        kw_mine, kw_theirs = self.options.get("score_kwargs", {}), options.get("score_kwargs", {})
        diffs += [
            f"score_kwargs of {s}={_show(kw_mine.get(s, {}))} in the calibration, "
            f"{_show(kw_theirs.get(s, {}))} in this run"
            for s in scores
            if _canon(kw_mine.get(s, {})) != _canon(kw_theirs.get(s, {}))
        ]
        if diffs and not force:
            msg = (
                f"{where}: made with other options or another model ({diffs[0]}); "
                "calibrate again, or use it anyway with --force-calibration (force_calibration=True)"
            )
            raise InputError(msg)
        return diffs

    def percentiles(
        self, score: str, values: np.ndarray, labels: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Percentiles of ``|values|`` and of ``values`` among the background.

        Parameters
        ----------
        score
            A calibrated score.
        values
            float32, shape (n, T'): the run's values of ``score`` for the outputs ``labels``.
        labels
            The T' labels of the columns of ``values``.

        Returns
        -------
        tuple of numpy.ndarray
            float32 (n, T') each: the percentile of the magnitude and the signed percentile.
        """
        cols = [self.labels.index(lab) for lab in labels]
        v = np.asarray(values, dtype=np.float32).reshape(len(values), len(cols))
        return (
            percentile(self.abs_grid[score][:, cols], np.abs(v)),
            percentile(self.signed_grid[score][:, cols], v),
        )

    def covers_max_abs(self, labels: Sequence[str]) -> bool:
        """Whether :attr:`max_abs_grid` is over exactly the outputs ``labels`` (in any order)."""
        return set(labels) == set(self.max_abs_labels)

    def max_abs_percentile(self, score: str, values: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Percentile of each ALT's largest ``|value|`` over the outputs ``labels``.

        Parameters
        ----------
        score
            A calibrated score.
        values
            float, shape (n, T'): the run's values of ``score`` for the outputs ``labels``.
        labels
            The T' labels of the columns of ``values``: the outputs :attr:`max_abs_labels`.

        Returns
        -------
        numpy.ndarray
            float32 (n,): NaN where every value of the row is NaN.

        Raises
        ------
        InputError
            When ``labels`` are not the outputs of :attr:`max_abs_grid`.
        """
        if not self.covers_max_abs(labels):
            msg = (
                f"{self.path or 'calibration'}: its largest |{score}| is over the outputs "
                f"{','.join(self.max_abs_labels)}, not {','.join(labels)}"
            )
            raise InputError(msg)
        return percentile(self.max_abs_grid[score], _max_abs(np.asarray(values, dtype=np.float64)))


def _max_abs(values: np.ndarray) -> np.ndarray:
    """Largest ``|value|`` of each row of (n, T), NaN ignored; NaN for a row of NaN (and for T = 0)."""
    v = values.reshape(len(values), -1)
    if not v.shape[1]:
        return np.full(len(v), np.nan)
    mags = np.where(np.isnan(v), -1.0, np.abs(v)).max(axis=1)
    return np.where(mags < 0, np.nan, mags)


def build_calibration(
    predictions: Mapping[str, np.ndarray],
    labels: Sequence[str],
    *,
    background: str,
    options: dict[str, Any],
    n_quantiles: int = DEFAULT_QUANTILES,
    max_abs_labels: Sequence[str] | None = None,
) -> Calibration:
    """Quantile grids of a background's scores.

    Parameters
    ----------
    predictions
        Per score, float (n, T): the background ALTs' scores for every model output.
    labels
        The T output labels.
    background
        What the background was, in words.
    options
        The run options (see :attr:`Calibration.options`).
    n_quantiles
        Grid points Q (at least 2).
    max_abs_labels
        The outputs whose largest magnitude per ALT :attr:`Calibration.max_abs_grid` holds (the
        outputs a later run's VCF carries, ``--model-outputs``); None: all.

    Raises
    ------
    InputError
        When no background ALT was scored, or ``max_abs_labels`` names no output of ``labels``.
    """
    if n_quantiles < 2:
        msg = f"n_quantiles must be at least 2, got {n_quantiles}"
        raise InputError(msg)
    over = list(labels) if not max_abs_labels else list(dict.fromkeys(max_abs_labels))
    absent = [lab for lab in over if lab not in labels]
    if absent:
        msg = f"model output {absent[0]!r} not found; outputs are {list(labels)[:20]}"
        raise InputError(msg)
    cols = [list(labels).index(lab) for lab in over]
    abs_grid, signed_grid, max_grid, counts = {}, {}, {}, {}
    for s, arr in predictions.items():
        v = np.asarray(arr, dtype=np.float64).reshape(len(arr), len(labels))
        if not len(v) or np.isnan(v).all():
            msg = f"the background gave no score {s!r} (no ALT scored); check the VCF, FASTA and regions"
            raise InputError(msg)
        signed_grid[s] = quantile_grid(v, n_quantiles)
        abs_grid[s] = quantile_grid(np.abs(v), n_quantiles)
        max_grid[s] = quantile_grid(_max_abs(v[:, cols]), n_quantiles)
        counts[s] = (~np.isnan(v)).sum(axis=0).astype(np.int64)
    return Calibration(
        list(labels), abs_grid, signed_grid, max_grid, counts, background, options, max_abs_labels=over
    )


def run_options(
    source: Any,
    model: Any,
    jobs: Sequence[Any],
    spec: Any,
    rc: bool,
    aggregate: Any,
    centering: str,
    weights: str | Path | None = None,
) -> dict[str, Any]:
    """The options of a run that a calibration records and checks (JSON-ready).

    Parameters
    ----------
    source
        What the run was given as the model (a path is checksummed by its files).
    model
        The loaded :class:`veff.Model` (a model object is checksummed by its outputs on four
        fixed random sequences).
    jobs
        The run's :class:`~veff.scoring.registry.ScoreJob`.
    spec
        The run's :class:`~veff.engine.outputs.OutputSpec` (input length, output offset, rc task
        pairs, labels).
    rc, aggregate, centering
        The run's reverse-complement setting, :class:`~veff.scoring.tracks.Aggregation` and
        centring.
    weights
        The state-dict file given with ``FILE.py::Class``.
    """
    from veff.engine.batching import predict_pairs

    length = spec.input_length

    def probe() -> np.ndarray:
        codes = np.random.default_rng(0).choice(np.frombuffer(b"ACGT", np.uint8), (4, length))
        return predict_pairs(model, codes, codes[:0], batch_size=4).ref

    checksum, kind = model_checksum(source, probe, weights)
    return {
        "model": model.name,
        "model_checksum": checksum,
        "model_checksum_of": kind,
        "scores": [j.name for j in jobs],
        "score_kwargs": {j.name: j.kwargs for j in jobs},
        "rc": bool(rc),
        "seq_length": int(length),
        "aggregate": {"reducer": aggregate.reducer, "scope": aggregate.scope, "k": aggregate.k},
        "centering": centering,
        "output_offset": spec.offset,
        "rc_swap_tasks": json.loads(json.dumps(spec.rc_tasks, default=str)),
        "labels": list(spec.labels(model.output_labels)),
    }


def model_checksum(
    source: Any, predict_probe: Any = None, weights: str | Path | None = None
) -> tuple[str, str]:
    """A sha256 checksum of a model: of its files, or of its predictions on fixed sequences.

    Parameters
    ----------
    source
        What the run was given as the model: a path (a file, a ``FILE.py::Class``, a Kipoi model
        directory) or an object.
    predict_probe
        Called without arguments when ``source`` is not a path: returns the model's predictions
        (an array) on fixed sequences.

    Returns
    -------
    tuple of str
        ``("sha256:<hex>", kind)`` where kind is ``files`` or ``predictions``.
    weights
        A state-dict file given with ``FILE.py::Class`` (hashed with it).
    """
    text = str(source) if isinstance(source, str | Path) else None
    if text is not None:
        paths = [Path(text.split("::")[0])] + ([Path(weights)] if weights else [])
        if paths[0].exists():
            return "sha256:" + _hash_files(paths), "files"
    if predict_probe is None:
        return "", "none"
    out = np.asarray(predict_probe(), dtype=np.float32)
    digest = hashlib.sha256(np.round(out.astype(np.float64), 5).tobytes() + str(out.shape).encode())
    return "sha256:" + digest.hexdigest(), "predictions"


def _hash_files(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for top in paths:
        files = (
            sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if top.is_dir()
            else [top]
        )
        for f in files:
            h.update(str(f.relative_to(top) if top.is_dir() else f.name).encode() + b"\0")
            with open(f, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
    return h.hexdigest()


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, default=str)


def _show(x: Any) -> str:
    return json.dumps(x, default=str) if not isinstance(x, str) else x
