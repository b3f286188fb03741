"""Run Kipoi-style model directories (model.yaml + dataloader.yaml) natively, without kipoi.

- :mod:`veff.models.kipoi.spec` reads the yaml files into frozen dataclasses;
- :mod:`veff.models.kipoi.describe` works out what veff can run (:func:`describe_model`);
- :mod:`veff.models.kipoi.scores` applies kipoi-veff's rules for available and default scores;
- :mod:`veff.models.kipoi.load` builds the :class:`~veff.models.base.Model` adapter
  (:func:`load_kipoi_model`), importing a framework only when its model is loaded;
- :mod:`veff.models.kipoi.windows` makes windows from a model's own dataloader
  (:meth:`KipoiModel.window_source`).

``FRAMEWORK`` registers model directories with :mod:`veff.models.registry`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from veff.models.base import Model
from veff.models.kipoi.describe import describe_model, plan_model
from veff.models.kipoi.load import KipoiModel, is_kipoi_dir, load_kipoi_model
from veff.models.kipoi.spec import KipoiSpecError, ModelSpec, read_model_spec
from veff.models.registry import Framework, LoadOptions

__all__ = [
    "FRAMEWORK",
    "KipoiModel",
    "KipoiSpecError",
    "ModelSpec",
    "describe_model",
    "is_kipoi_dir",
    "load_kipoi_model",
    "plan_model",
    "read_model_spec",
]


def _accepts(source: Any) -> bool:
    """A directory holding a model.yaml."""
    return isinstance(source, Path) and is_kipoi_dir(source)


def _load(source: Path, options: LoadOptions) -> Model:
    return load_kipoi_model(source, device=options.device, precision=options.precision)


FRAMEWORK = Framework("kipoi", _load, accepts=_accepts, title="Kipoi model directory")
