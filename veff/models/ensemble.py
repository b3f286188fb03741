"""Ensembles: several model files that act as one model, their outputs averaged.

SpliceAI ships five networks (``spliceai1.h5`` ... ``spliceai5.h5``) and scores with their mean;
OpenSpliceAI ships five seeds. An :class:`EnsembleModel` gives every member the same batch and
returns the float32 mean of their outputs, so every later stage (windows, batching, scores,
writers) sees one model. Members must agree on input length, layout and output shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from veff.errors import ModelError
from veff.models.base import Model

__all__ = ["EnsembleModel"]


def _mean(outputs: list[Any]) -> Any:
    first = outputs[0]
    if isinstance(first, dict):
        return {k: _mean([o[k] for o in outputs]) for k in first}
    if isinstance(first, (list, tuple)):
        return [_mean([o[k] for o in outputs]) for k in range(len(first))]
    arrays = [np.asarray(o, dtype=np.float32) for o in outputs]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        msg = f"ensemble members returned different output shapes {sorted(shapes)}"
        raise ModelError(msg)
    # the mean over a leading member axis in float32, as SpliceAI's np.mean of its five predictions
    return np.mean(np.stack(arrays), axis=0, dtype=np.float32)


class EnsembleModel(Model):
    """Average the outputs of several models.

    Parameters
    ----------
    members
        The loaded member models (at least one).
    name
        Ensemble name (default: the first member's name without a trailing digit run, e.g.
        ``spliceai`` for ``spliceai1`` ... ``spliceai5``).
    """

    def __init__(self, members: Sequence[Model], *, name: str | None = None) -> None:
        if not members:
            msg = "an ensemble needs at least one model"
            raise ModelError(msg)
        self.members = list(members)
        first = self.members[0]
        lengths = {m.seq_length for m in self.members}
        if len(lengths) != 1:
            msg = f"ensemble members take different input lengths {sorted(map(str, lengths))}"
            raise ModelError(msg)
        layouts = {m.declared_output_layout() for m in self.members}
        if len(layouts) != 1:
            msg = f"ensemble members declare different output layouts {sorted(map(str, layouts))}"
            raise ModelError(msg)
        self.output_layout = layouts.pop()
        self.seq_length = first.seq_length
        self.output_labels = first.output_labels
        self.default_rc = first.default_rc
        self.n_value = first.n_value
        self.framework = first.framework
        self.default_centering = getattr(first, "default_centering", "exact")
        self._wrapped = getattr(first, "_wrapped", None)
        base = first.name.rstrip("0123456789_-.") or first.name
        self.name = name or (base if len(self.members) > 1 else first.name)

    def predict(self, x: np.ndarray) -> Any:
        """Every member's prediction of the same (N, L, 4) batch, averaged (float32)."""
        return _mean([m.predict(x) for m in self.members])

    def close(self) -> None:
        """Release every member."""
        for m in self.members:
            m.close()

    def __len__(self) -> int:
        return len(self.members)
