"""Gradient maps of one window: saliency, gradient x input and integrated gradients.

The model's outputs for the window are reduced to one value per task, exactly as the score
columns of a mutation map are laid out (every task of every head; a profile head reduced over
positions with an :class:`~veff.scoring.tracks.Aggregation`, its "variant" being the window's
centre base), the kept columns selected, and then either each column or their sum is
differentiated with respect to the one-hot input (A, C, G, T channels):

* ``saliency``: the gradient itself, (L, 4) per output (signed);
* ``grad_x_input``: gradient times the one-hot input (non-zero only at the observed base);
* ``integrated_gradients``: ``(x - x0) * mean_k grad(x0 + (k + 0.5) / m * (x - x0))`` with the
  all-zero baseline ``x0`` and ``m`` steps (midpoint rule); the attributions of a window add up
  to ``f(x) - f(x0)`` up to the integration error.

PyTorch modules are differentiated with autograd and Keras models with ``tf.GradientTape``;
frameworks are imported only when a map of that kind is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veff.errors import InputError, ModelError
from veff.scoring.tracks import Aggregation
from veff.variants.sequences import one_hot

__all__ = ["GRADIENT_METHODS", "OUTPUT_REDUCTIONS", "Targets", "gradient_map"]

GRADIENT_METHODS = ("saliency", "grad_x_input", "integrated_gradients")
OUTPUT_REDUCTIONS = ("each", "sum")


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


def _head_masks(spec: Any, aggregate: Aggregation) -> list[np.ndarray | None]:
    """Per head: bool (P,) of the positions a profile head is reduced over (None: scalar head)."""
    centre = np.array([[(spec.input_length - 1) // 2, 1, 1]])
    masks: list[np.ndarray | None] = []
    for h in spec.heads:
        if h.positions is None:
            masks.append(None)
            continue
        m = aggregate.mask(centre, h.positions, spec.head_offset(h))[0]
        if not m.any():
            msg = f"aggregate {aggregate} selects no output position of head {h.name or 'output'}"
            raise InputError(msg)
        masks.append(m)
    return masks


def gradient_map(
    model: Any,
    codes: np.ndarray,
    *,
    method: str,
    targets: Targets,
    steps: int = 50,
    batch_size: int = 64,
) -> np.ndarray:
    """Attribution of one window (as the model sees it) to every base of its input.

    Parameters
    ----------
    model
        A :class:`veff.models.torch.TorchModel` or :class:`veff.models.keras.KerasModel`.
    codes
        uint8 codes of the window as fed to the model, shape (L,).
    method
        One of :data:`GRADIENT_METHODS`.
    targets
        The outputs to differentiate (:class:`Targets`).
    steps
        Integration steps of ``integrated_gradients``.
    batch_size
        Inputs per forward/backward call (integrated gradients runs ``steps`` inputs).

    Returns
    -------
    numpy.ndarray
        float32, shape (L, 4, T): T kept columns, or 1 with ``outputs="sum"``.
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
    x = one_hot(codes[None, :], model.n_value)  # (1, L, 4)
    if method == "integrated_gradients":
        alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps
        inputs = (alphas[:, None, None] * x).astype(np.float32)  # baseline 0
    else:
        inputs = x
    masks = _head_masks(targets.spec, targets.aggregate)
    reducer, columns, outputs = targets.aggregate.reducer, targets.columns, targets.outputs
    framework = getattr(model, "framework", "")
    if framework == "pytorch":
        grads = _torch_grads(model, inputs, masks, reducer, columns, outputs, batch_size)
    elif framework == "keras":
        grads = _keras_grads(model, inputs, masks, reducer, columns, outputs, batch_size)
    else:
        msg = (
            f"gradient maps need a PyTorch or Keras model; {model.name!r} is a {framework or 'Python'} "
            "model (use --method naive)"
        )
        raise ModelError(msg)
    if method == "integrated_gradients":
        grads = grads / steps
    if method != "saliency":
        grads = grads * x[0][:, :, None]
    return grads.astype(np.float32)


def _check_heads(n_heads: int, masks: Sequence[np.ndarray | None]) -> None:
    if n_heads != len(masks):
        msg = f"the model returned {n_heads} outputs while probing found {len(masks)}"
        raise ModelError(msg)


def _torch_grads(
    model: Any,
    inputs: np.ndarray,
    masks: list[np.ndarray | None],
    reducer: str,
    columns: np.ndarray | None,
    outputs: str,
    batch_size: int,
) -> np.ndarray:
    import torch

    module, device, layout = model.module, model.device, model.layout
    tasks_first = model.declared_output_layout() == "tasks_first"
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:  # gradients of the input only: no weight gradients to compute
        p.requires_grad_(requires_grad=False)
    total: np.ndarray | None = None
    try:
        for lo in range(0, len(inputs), batch_size):
            xt = torch.from_numpy(np.ascontiguousarray(inputs[lo : lo + batch_size])).to(device)
            xt.requires_grad_()
            base = xt.transpose(1, 2) if layout.channels_first else xt
            shape = [len(xt)] + [xt.shape[1] if a == "L" else 4 if a == "4" else 1 for a in layout.axes]
            with torch.enable_grad():
                heads = _heads(module(base.reshape(shape)))
                if tasks_first:  # (N, T, P) profile heads read as (N, P, T), as veff.engine.outputs does
                    heads = [h.transpose(1, 2) if h.dim() == 3 else h for h in heads]
                _check_heads(len(heads), masks)
                cols = []
                for h, m in zip(heads, masks, strict=True):
                    h = h.float()
                    if m is None:
                        cols.append(h.reshape(len(xt), -1))
                    else:
                        h = h[:, :, None] if h.dim() == 2 else h
                        cols.append(_reduce_torch(h[:, torch.from_numpy(m).to(h.device)], reducer))
                y = torch.cat(cols, dim=1)
                if columns is not None:
                    y = y[:, torch.from_numpy(np.asarray(columns)).to(y.device)]
                if outputs == "sum":
                    y = y.sum(dim=1, keepdim=True)
                per = []
                for t in range(y.shape[1]):
                    (g,) = torch.autograd.grad(y[:, t].sum(), xt, retain_graph=t < y.shape[1] - 1)
                    per.append(g.sum(dim=0))
            part = torch.stack(per, dim=-1).detach().cpu().numpy()  # (L, 4, T)
            total = part if total is None else total + part
    finally:
        for p in params:
            p.requires_grad_()
    assert total is not None
    return total


def _heads(out: Any) -> list[Any]:
    """The output arrays of one forward call, in order (a dict's values, a list, or the one array)."""
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _reduce_torch(v: Any, reducer: str) -> Any:
    """Reduce (N, P, T) over P: max_abs (signed value of largest magnitude), max, min, mean, sum."""
    if reducer == "sum":
        return v.sum(dim=1)
    if reducer == "mean":
        return v.mean(dim=1)
    if reducer == "max":
        return v.amax(dim=1)
    if reducer == "min":
        return v.amin(dim=1)
    idx = v.abs().argmax(dim=1, keepdim=True)
    return v.gather(1, idx)[:, 0]


def _keras_grads(
    model: Any,
    inputs: np.ndarray,
    masks: list[np.ndarray | None],
    reducer: str,
    columns: np.ndarray | None,
    outputs: str,
    batch_size: int,
) -> np.ndarray:
    import tensorflow as tf

    layout = model.layout
    tasks_first = model.declared_output_layout() == "tasks_first"
    total: np.ndarray | None = None
    for lo in range(0, len(inputs), batch_size):
        xt = tf.convert_to_tensor(np.ascontiguousarray(inputs[lo : lo + batch_size]))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(xt)
            base = tf.transpose(xt, (0, 2, 1)) if layout.channels_first else xt
            shape = [-1] + [int(xt.shape[1]) if a == "L" else 4 if a == "4" else 1 for a in layout.axes]
            out = model.model(tf.reshape(base, shape), training=False)
            heads = _heads(out)
            if tasks_first:
                heads = [tf.transpose(h, (0, 2, 1)) if len(h.shape) == 3 else h for h in heads]
            _check_heads(len(heads), masks)
            cols = []
            for h, m in zip(heads, masks, strict=True):
                h = tf.cast(h, tf.float32)
                if m is None:
                    cols.append(tf.reshape(h, (tf.shape(h)[0], -1)))
                else:
                    if len(h.shape) == 2:
                        h = h[:, :, None]
                    cols.append(_reduce_tf(tf.boolean_mask(h, m, axis=1), reducer))
            y = tf.concat(cols, axis=1)
            if columns is not None:
                y = tf.gather(y, np.asarray(columns), axis=1)
            if outputs == "sum":
                y = tf.reduce_sum(y, axis=1, keepdims=True)
            targets = [tf.reduce_sum(y[:, t]) for t in range(int(y.shape[1]))]
        per = [tf.reduce_sum(tape.gradient(t, xt), axis=0).numpy() for t in targets]
        del tape
        part = np.stack(per, axis=-1)
        total = part if total is None else total + part
    assert total is not None
    return total


def _reduce_tf(v: Any, reducer: str) -> Any:
    import tensorflow as tf

    if reducer == "sum":
        return tf.reduce_sum(v, axis=1)
    if reducer == "mean":
        return tf.reduce_mean(v, axis=1)
    if reducer == "max":
        return tf.reduce_max(v, axis=1)
    if reducer == "min":
        return tf.reduce_min(v, axis=1)
    vt = tf.transpose(v, (0, 2, 1))  # (N, T, P)
    idx = tf.argmax(tf.abs(vt), axis=2)
    return tf.gather(vt, idx, axis=2, batch_dims=2)
