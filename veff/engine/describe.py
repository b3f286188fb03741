"""Describe any model veff can load, running it once on an all-N window to find its output heads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veff.engine.batching import probe_outputs
from veff.models import Model, load_model, resolve_model
from veff.models import describe_model as describe_declared

__all__ = ["describe_loaded", "describe_model"]


def describe_loaded(model: Model, seq_length: int | None = None) -> dict[str, Any]:
    """Describe a loaded :class:`~veff.models.base.Model` (:meth:`~veff.models.base.Model.describe`).

    When the input length is known (the model's or ``seq_length``) the model is run once on an
    all-N window to report its outputs: labels, heads (tasks, positions, output offset) and the
    declared ``layout`` of position-resolved heads (None: not declared, read positions first).
    """
    info = model.describe()
    length = seq_length or model.seq_length
    if length:
        spec = probe_outputs(model, length)
        labels = spec.labels(info["outputs"]["labels"])
        heads = [
            {
                "name": h.name,
                "tasks": h.tasks,
                "positions": h.positions,
                "offset": spec.head_offset(h) if h.positions is not None else None,
            }
            for h in spec.heads
        ]
        layout = model.declared_output_layout()
        info["outputs"] = {"labels": labels, "count": len(labels), "heads": heads, "layout": layout}
    return info


def describe_model(
    model: str | Path | Model,
    seq_length: int | None = None,
    *,
    trust_model: bool = False,
    output_layout: str | None = None,
) -> dict[str, Any]:
    """Describe a model given as a path, a name, ``FILE.py::Class`` or a loaded Model.

    A Kipoi model directory (or its model.yaml) is described from its yaml files alone
    (:func:`veff.models.kipoi.describe_model`, no weights needed); anything else is loaded and
    described by :func:`describe_loaded` (``FILE.py::Class`` with its initial weights, which
    describe it as well; a pickled PyTorch module only with ``trust_model``), with
    ``output_layout`` overriding what it declares.
    """
    if isinstance(model, Model):
        return describe_loaded(load_model(model, output_layout=output_layout), seq_length)
    if "::" in str(model):  # FILE.py::Class
        loaded = load_model(model, random_weights=True, output_layout=output_layout)
        return describe_loaded(loaded, seq_length)
    found = resolve_model(str(model))
    if isinstance(found, Path) and (found.is_dir() or found.suffix in (".yaml", ".yml")):
        return describe_declared(found)
    return describe_loaded(
        load_model(found, trust_model=trust_model, output_layout=output_layout), seq_length
    )
