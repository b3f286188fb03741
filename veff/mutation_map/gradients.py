"""Gradient maps of windows (saliency, gradient x input, integrated gradients), batched over windows.

The model's outputs for a window are reduced to one value per task, exactly as the score
columns of a mutation map are laid out (every task of every head; a profile head reduced over
positions with an :class:`~veff.scoring.tracks.Aggregation`, its "variant" being the window's
centre base), the kept columns selected, and then either each column or their sum is
differentiated with respect to the one-hot input (A, C, G, T channels):

* ``saliency``: the gradient itself, (L, 4) per output (signed);
* ``grad_x_input``: gradient times the one-hot input (non-zero only at the observed base);
* ``integrated_gradients``: ``(x - x0) * mean_k grad(x0 + (k + 0.5) / m * (x - x0))`` with the
  all-zero baseline ``x0`` and ``m`` steps (midpoint rule); the attributions of a window add up
  to ``f(x) - f(x0)`` up to the integration error.

Windows are independent (models run in eval mode: BatchNorm uses its running statistics, dropout
is off), so the gradient of a column summed over a batch of windows gives each window its own
gradient: one backward pass per batch and output column. The forward pass of saliency and
gradient x input is also the reference prediction stored with the map. The differentiation itself is the
model adapter's (:meth:`veff.models.base.Model.input_gradients`: autograd for PyTorch,
``tf.GradientTape`` for Keras); this module imports no framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from veff.engine.batching import model_batch_size, predict_pairs
from veff.engine.outputs import flatten_output
from veff.errors import InputError
from veff.models.base import GradientTarget
from veff.scoring.tracks import Aggregation
from veff.variants.sequences import one_hot

__all__ = ["GRADIENT_METHODS", "OUTPUT_REDUCTIONS", "Targets", "gradient_batch", "gradient_maps"]

GRADIENT_METHODS = ("saliency", "grad_x_input", "integrated_gradients")
OUTPUT_REDUCTIONS = ("each", "sum")
_GRADIENT_BYTES = 256 * 2**20  # float32 gradients (rows, L, 4, T) kept from one backward call


@dataclass(frozen=True)
class Targets:
    """What is differentiated.

    Attributes
    ----------
    spec
        The model's :class:`~veff.engine.outputs.OutputSpec`.
    aggregate
        Reduction of profile heads over positions.
    columns
        Task columns to keep (None: all).
    outputs
        ``each`` (one map per kept column) or ``sum`` (one map of their sum).
    """

    spec: Any
    aggregate: Aggregation
    columns: np.ndarray | None = None
    outputs: str = "each"

    def for_model(self) -> GradientTarget:
        """The plain-data target the model adapter differentiates.

        Raises
        ------
        InputError
            When the aggregation selects no position of a profile head.
        """
        spec = self.spec
        centre = np.array([[(spec.input_length - 1) // 2, 1, 1]])
        masks: list[np.ndarray | None] = []
        for h in spec.heads:
            if h.positions is None:
                masks.append(None)
                continue
            m = self.aggregate.mask(centre, h.positions, spec.head_offset(h))[0]
            if not m.any():
                msg = f"aggregate {self.aggregate} selects no output position of head {h.name or 'output'}"
                raise InputError(msg)
            masks.append(m)
        return GradientTarget(tuple(masks), self.aggregate.reducer, self.columns, self.outputs)


def gradient_batch(model: Any, length: int, batch_size: int | None, n_columns: int) -> int:
    """Input rows per backward call.

    The model's automatic batch (:func:`veff.engine.batching.model_batch_size`: on a CPU, its
    largest activation kept within the caches, more for compute-bound models), at most
    ``batch_size`` (None: no other bound), and at most as many rows as keep their
    gradients of ``n_columns`` outputs within 256 MiB.
    """
    auto = model_batch_size(model, length)
    fit = _GRADIENT_BYTES // (length * 4 * max(1, n_columns) * 4)
    return int(max(1, min(batch_size or auto, auto, fit)))


def gradient_maps(
    model: Any,
    codes: np.ndarray,
    *,
    method: str,
    targets: Targets,
    steps: int = 50,
    batch_size: int = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Attributions of windows (as the model sees them) to every base of their input.

    Parameters
    ----------
    model
        A model adapter whose :meth:`~veff.models.base.Model.input_gradients` works (PyTorch,
        Keras).
    codes
        uint8 codes of the windows as fed to the model, shape (W, L).
    method
        One of :data:`GRADIENT_METHODS`.
    targets
        The outputs to differentiate (:class:`Targets`).
    steps
        Integration steps of ``integrated_gradients``.
    batch_size
        Input rows per forward/backward call (integrated gradients runs ``steps`` rows per
        window; see :func:`gradient_batch`).

    Returns
    -------
    tuple of numpy.ndarray
        ``(maps, ref_predictions)``: float32 (W, L, 4, T), T the kept columns or 1 with
        ``outputs="sum"``; and float32 (W, F), the flat model output of each window.
    """
    if method not in GRADIENT_METHODS:
        msg = f"unknown gradient method {method!r}; expected one of {', '.join(GRADIENT_METHODS)}"
        raise InputError(msg)
    if targets.outputs not in OUTPUT_REDUCTIONS:
        msg = f"unknown output reduction {targets.outputs!r}; expected one of {', '.join(OUTPUT_REDUCTIONS)}"
        raise InputError(msg)
    if steps < 1:
        msg = f"integrated gradients needs at least 1 step, got {steps}"
        raise InputError(msg)
    target = targets.for_model()
    x = one_hot(codes, model.n_value)  # (W, L, 4)
    if method == "integrated_gradients":
        grads, _ = _row_gradients(model, _PathRows(x, steps), target, batch_size, steps)
        grads /= steps
        ref = predict_pairs(model, codes, codes[:0], batch_size=batch_size).ref
    else:
        grads, ref = _row_gradients(model, x, target, batch_size, 1)
    if method != "saliency":
        grads *= x[:, :, :, None]
    return grads.astype(np.float32, copy=False), ref.reshape(len(codes), -1)


class _PathRows:
    """The integration path of integrated gradients as rows (W * steps, L, 4), made a slice at a time.

    Row ``w * steps + k`` is ``alpha_k * x[w]`` with ``alpha_k = (k + 0.5) / steps`` (the all-zero
    baseline); slicing builds only the rows asked for, so memory does not grow with ``steps``.
    """

    def __init__(self, x: np.ndarray, steps: int) -> None:
        self.x, self.steps = x, steps
        self.shape = (len(x) * steps, *x.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        index = np.arange(*rows.indices(len(self)))
        alphas = (np.asarray(index % self.steps, dtype=np.float32) + np.float32(0.5)) / self.steps
        return (alphas[:, None, None] * self.x[index // self.steps]).astype(np.float32)


def _row_gradients(
    model: Any, rows: np.ndarray | _PathRows, target: GradientTarget, batch_size: int, per: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``rows`` (W * per, L, 4), summed over each window's ``per`` consecutive rows.

    Returns ``(gradients (W, L, 4, T), flat outputs (W * per, F))``; with ``per > 1`` (an
    integration path, whose outputs nobody reads) the outputs are not kept and come back empty.
    """
    total: np.ndarray | None = None
    outputs = []
    n_win = len(rows) // per
    layout = model.declared_output_layout()
    for lo in range(0, len(rows), batch_size):
        part = rows[lo : lo + batch_size]
        grads, out = model.input_gradients(part, target)
        if per == 1:
            outputs.append(flatten_output(out, len(part), layout))
        if total is None:
            total = np.zeros((n_win, *grads.shape[1:]), np.float32)
        if per == 1:
            total[lo : lo + len(part)] = grads
            continue
        win = (lo + np.arange(len(part))) // per
        first = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
        total[win[first]] += np.add.reduceat(grads, first, axis=0)
    if total is None:
        return np.zeros((0, rows.shape[1], 4, 0), np.float32), np.zeros((0, 0), np.float32)
    return total, np.concatenate(outputs) if outputs else np.zeros((len(rows), 0), np.float32)
