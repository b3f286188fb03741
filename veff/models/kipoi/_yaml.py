"""Read Kipoi yaml files: the error type, the safe loader and the scalar helpers.

The lowest layer of :mod:`veff.models.kipoi.spec`: everything it and its sibling parsers
(:mod:`~veff.models.kipoi._schema`, :mod:`~veff.models.kipoi._variant_effects`,
:mod:`~veff.models.kipoi.dataloader`) share. Unexpanded Jinja templates (kipoi model groups:
``model-template.yaml`` + ``models.tsv``) are recognised and rejected with :class:`KipoiSpecError`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from veff.errors import ModelError

__all__ = ["KipoiSpecError", "load_yaml", "names_of", "text_of"]

_JINJA = re.compile(r"\{\{|\{%")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KipoiSpecError(ModelError):
    """A model.yaml / dataloader.yaml cannot be read or breaks the Kipoi contract."""


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a yaml file into a dict; reject unexpanded Jinja templates with a clear message."""
    try:
        text = path.read_text()
    except OSError as exc:
        msg = f"{path}: cannot read ({exc.strerror or exc})"
        raise KipoiSpecError(msg) from None
    if _JINJA.search(text):
        msg = (
            f"{path}: an unexpanded Jinja template (a kipoi model group); veff reads expanded "
            "model directories only"
        )
        raise KipoiSpecError(msg)
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"{path}: not valid YAML ({first})"
        raise KipoiSpecError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping at the top level, found {type(data).__name__}"
        raise KipoiSpecError(msg)
    return data


def text_of(value: Any) -> str:
    """A yaml scalar as stripped text; ``""`` for a missing (None) value."""
    return "" if value is None else str(value).strip()


def names_of(value: Any) -> tuple[str, ...]:
    """A yaml name or list of names as a tuple of strings (None entries dropped)."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),)
