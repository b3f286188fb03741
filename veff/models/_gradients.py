"""Gradient targets in any framework: output heads reduced to the columns a gradient map differentiates.

The PyTorch and Keras adapters share this walk over the heads (:func:`target_columns`); each
supplies its tensor operations as a :class:`TensorOps`.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from veff.errors import InputError, ModelError
from veff.models.base import GRADIENT_REDUCERS, GradientTarget

__all__ = ["TensorOps", "no_input_gradient", "output_heads", "target_columns"]


def no_input_gradient(name: str) -> ModelError:
    """The error for a model whose gradient-map targets do not depend on its input differentiably."""
    msg = (
        f"model {name!r}: its outputs have no gradient with respect to the input "
        "(detached, integer-valued or not computed from it); gradient maps need a "
        "differentiable model (use --method naive)"
    )
    return ModelError(msg)


class TensorOps(Protocol):
    """The tensor operations :func:`target_columns` needs, for one framework."""

    def float32(self, h: Any) -> Any:
        """``h`` as float32."""
        ...

    def flat(self, h: Any) -> Any:
        """(N, ...) -> (N, K)."""
        ...

    def positions_first(self, h: Any) -> Any:
        """(N, T, P) -> (N, P, T); heads of other ranks unchanged."""
        ...

    def positions(self, h: Any, mask: np.ndarray) -> Any:
        """(N, P) or (N, P, T) -> (N, P_kept, T): the positions of ``mask`` (bool, (P,))."""
        ...

    def reduce(self, v: Any, reducer: str) -> Any:
        """(N, P, T) -> (N, T) over positions (one of :data:`~veff.models.base.GRADIENT_REDUCERS`)."""
        ...

    def cat(self, columns: list[Any]) -> Any:
        """Concatenate (N, K_i) along the columns."""
        ...

    def take(self, y: Any, columns: np.ndarray) -> Any:
        """Keep the columns ``columns`` of (N, K)."""
        ...

    def total(self, y: Any) -> Any:
        """(N, K) -> (N, 1): the sum of the columns."""
        ...


def output_heads(out: Any) -> list[Any]:
    """The arrays of one raw forward call, in order (a dict's values, a list, or the one array)."""
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, (list, tuple)) else [out]


def target_columns(out: Any, target: GradientTarget, ops: TensorOps, *, tasks_first: bool = False) -> Any:
    """The (N, T) values ``target`` differentiates, from the raw output ``out`` of a batch.

    With ``tasks_first`` (the model declares ``output_layout = "tasks_first"``) profile heads
    come as (N, T, P) and are read as (N, P, T), as :mod:`veff.engine.outputs` reads them.

    Raises
    ------
    ModelError
        When the model returned another number of heads than ``target`` has masks.
    InputError
        For an unknown reducer.
    """
    if target.reducer not in GRADIENT_REDUCERS:
        msg = f"unknown reduction {target.reducer!r}; expected one of {', '.join(GRADIENT_REDUCERS)}"
        raise InputError(msg)
    heads = output_heads(out)
    if len(heads) != len(target.masks):
        msg = f"the model returned {len(heads)} outputs while probing found {len(target.masks)}"
        raise ModelError(msg)
    cols = []
    for h, mask in zip(heads, target.masks, strict=True):
        h = ops.positions_first(ops.float32(h)) if tasks_first else ops.float32(h)
        cols.append(ops.flat(h) if mask is None else ops.reduce(ops.positions(h, mask), target.reducer))
    y = ops.cat(cols)
    if target.columns is not None:
        y = ops.take(y, np.asarray(target.columns))
    return ops.total(y) if target.outputs == "sum" else y
