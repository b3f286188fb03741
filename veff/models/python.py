"""Plain Python callables as models: the registry's catch-all framework (:class:`CallableModel`)."""

from __future__ import annotations

import os
from typing import Any

from veff.models.base import CallableModel, Model
from veff.models.registry import Framework, LoadOptions

__all__ = ["FRAMEWORK"]


def _accepts(source: Any) -> bool:
    """Any callable that is not a path (asked last: framework objects are callable too)."""
    return callable(source) and not isinstance(source, (str, os.PathLike))


def _load(source: Any, options: LoadOptions) -> Model:
    return CallableModel(source, **options.overrides())


FRAMEWORK = Framework("python", _load, accepts=_accepts, title="Python callable", priority=-100)
