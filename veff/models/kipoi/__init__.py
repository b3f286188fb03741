"""Run Kipoi-style model directories (model.yaml + dataloader.yaml) natively, without kipoi.

- :mod:`veff.models.kipoi.spec` reads the yaml files into frozen dataclasses;
- :mod:`veff.models.kipoi.describe` works out what veff can run (:func:`describe_model`);
- :mod:`veff.models.kipoi.scores` applies kipoi-veff's rules for available and default scores;
- :mod:`veff.models.kipoi.load` builds the :class:`~veff.models.base.Model` adapter
  (:func:`load_kipoi_model`), importing a framework only when its model is loaded.
"""

from __future__ import annotations

from veff.models.kipoi.describe import describe_model, plan_model
from veff.models.kipoi.load import KipoiModel, is_kipoi_dir, load_kipoi_model
from veff.models.kipoi.spec import KipoiSpecError, ModelSpec, read_model_spec

__all__ = [
    "KipoiModel",
    "KipoiSpecError",
    "ModelSpec",
    "describe_model",
    "is_kipoi_dir",
    "load_kipoi_model",
    "plan_model",
    "read_model_spec",
]
