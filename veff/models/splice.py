"""What a splice model of SpliceAI's class declares: its flank and the layout of its outputs.

Such a model maps ``2 * flank + P`` input bases to ``P`` output positions of three classes
(neither, acceptor, donor); output ``k`` looks at input ``k + flank``. SpliceAI's Keras files
return ``(N, P, 3)`` (positions first) with ``flank = 5000``; OpenSpliceAI's PyTorch models return
``(N, 3, P)`` (classes first) with ``flank`` = half their flanking size (40, 200, 1,000 or 5,000).

A model may declare ``flank`` (bases per side) and ``output_layout`` (``"positions_first"`` or
``"tasks_first"``, which splice models may also call ``"classes_first"``; ``--output-layout``) as
attributes; otherwise both are learnt by predicting one all-N window: the axis of size 3 is the
class axis, and ``flank = (L - P) / 2``. The engine flattens the outputs positions first in
either layout (:mod:`veff.engine.outputs`), so the layout found here is handed to the batch
stream.

Pangolin fits the same path as a configuration: its own ``flank`` (5,000), ``classes_first``
outputs of 12 channels (4 tissues x splice probability and usage) and a reduction of the tissue
channels to one acceptor and one donor track (max for gains, min for losses), declared by the
adapter; veff does not implement that adapter yet (see docs/spliceai.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from veff.errors import ModelError
from veff.models.base import Model, OutputLayout
from veff.variants.sequences import one_hot

__all__ = ["SpliceModelInfo", "splice_model_info"]

_PROBE_LENGTH = 10_101  # longer than the widest published context (10,000)


@dataclass(frozen=True)
class SpliceModelInfo:
    """How to place windows for, and read the outputs of, a splice model.

    Attributes
    ----------
    flank
        Input bases on each side of the outputs.
    layout
        The model's ``positions_first`` ((N, P, C)) or ``tasks_first`` ((N, C, P)) outputs.
    classes
        Output channels C (3: neither, acceptor, donor).
    """

    flank: int
    layout: OutputLayout
    classes: int = 3

    def tracks(self, flat: np.ndarray, positions: int) -> np.ndarray:
        """Turn outputs flattened positions first (n, P * C) into tracks (n, P, C).

        The batch stream flattens them so whatever the model's :attr:`layout`
        (:func:`veff.engine.outputs.flatten_output`, given the layout).
        """
        return flat.reshape(len(flat), positions, self.classes)


def splice_model_info(model: Model) -> SpliceModelInfo:
    """Read the model's declarations, or probe one all-N window for what it does not declare.

    Raises
    ------
    ModelError
        When the outputs are not ``(N, P, 3)`` or ``(N, 3, P)`` tracks.
    """
    flank = model.declared("flank")
    layout = model.declared_output_layout()
    if flank is not None and layout is not None:
        return SpliceModelInfo(int(flank), layout)
    length = model.seq_length or _PROBE_LENGTH
    out = model.predict(one_hot(np.full((1, length), ord("N"), np.uint8), model.n_value))
    shape = tuple(np.asarray(out).shape) if not isinstance(out, (dict, list, tuple)) else ()
    if len(shape) != 3:
        msg = (
            f"model {model.name!r} returned {shape or type(out).__name__} for one window; a splice model "
            "returns (N, P, 3) or (N, 3, P) tracks"
        )
        raise ModelError(msg)
    if layout is None:
        if shape[2] == 3 and shape[1] != 3:
            layout = "positions_first"
        elif shape[1] == 3:
            layout = "tasks_first"
        else:
            msg = f"model {model.name!r}: no class axis of size 3 in its output shape {shape}"
            raise ModelError(msg)
    positions, classes = (shape[1], shape[2]) if layout == "positions_first" else (shape[2], shape[1])
    if classes != 3:
        msg = (
            f"model {model.name!r}: output shape {shape} read {layout} has {classes} classes, not 3; "
            "check --output-layout (output_layout)"
        )
        raise ModelError(msg)
    if flank is None:
        if (length - positions) % 2 or positions > length:
            msg = f"model {model.name!r}: {positions} outputs for {length} inputs is not a centred crop"
            raise ModelError(msg)
        flank = (length - positions) // 2
    return SpliceModelInfo(int(flank), layout)
