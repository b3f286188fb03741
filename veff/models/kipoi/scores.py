"""Which scores a Kipoi model offers, and its defaults: kipoi-veff's ``get_avail_scoring_fns`` rules.

The rules (reference section 4.2), applied to ``variant_effects.scoring_functions``:

- A built-in entry gets the label of its ``type``; a ``name`` renames it unless that name is itself
  a built-in score. A ``custom`` entry gets the label ``name``, or ``custom_<name>`` when the name is
  empty or a built-in. Duplicate labels are an error.
- Defaults are the entries marked ``default: true``; when none is marked, every declared entry is a
  default.
- Declaring one of the logit family (``logit``, ``logit_ref``, ``logit_alt``, ``deepsea_effect``)
  makes the rest of the family available; ``diff``, ``ref`` and ``alt`` are always available. An
  added score whose label is taken is called ``default_<name>``. When nothing is declared at all,
  the only default is ``diff``.

Built-in scores keep kipoi-veff's default keyword arguments (``rc_merging="mean"``). A custom entry
(``defined_as: file.py::Class``, resolved relative to the *model directory*, where kipoi-veff used the
working directory) names a class whose ``__init__`` arguments are exactly the yaml ``args``; it is
instantiated with the yaml defaults (typed as YAML reads them; kipoi-veff passed strings) updated by
the user's keyword arguments, and called as ``obj(ref=, alt=, ref_rc=, alt_rc=)``. When the class
takes ``rc_merging``, a merge chosen by the user is passed on by name (``max``...); veff's default
``mean`` leaves the yaml default in place.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import ModelError
from veff.models.base import DeclaredScore
from veff.models.kipoi._compat import import_object, in_directory
from veff.models.kipoi.spec import BUILTIN_SCORES, KipoiSpecError, ScoringFunctionSpec, VariantEffectSpec

__all__ = ["ModelScore", "declared_score", "score_table"]

_LOGIT_FAMILY = ("logit", "logit_ref", "logit_alt", "deepsea_effect")
_ALWAYS = ("diff", "ref", "alt")
BUILTIN_KWARGS: dict[str, Any] = {"rc_merging": "mean"}


@dataclass(frozen=True)
class ModelScore:
    """A score a model offers.

    Attributes
    ----------
    label
        The name users select it by (and the INFO tag suffix).
    type
        The built-in score it computes, or ``custom``.
    kwargs
        Default keyword arguments, or None when a custom function has arguments without defaults
        (then the user must give them).
    defined_as
        ``file.py::Class`` of a custom score (relative to the model directory).
    declared
        Whether model.yaml declares it (False for the automatic additions).
    """

    label: str
    type: str
    kwargs: dict[str, Any] | None = field(default_factory=lambda: dict(BUILTIN_KWARGS))
    defined_as: str = ""
    declared: bool = True


def _custom_label(sf: ScoringFunctionSpec) -> str:
    return f"custom_{sf.name}" if not sf.name or sf.name in BUILTIN_SCORES else sf.name


def _custom_kwargs(sf: ScoringFunctionSpec) -> dict[str, Any] | None:
    if not sf.args:
        return {}
    if all(a.default is not None or a.optional for a in sf.args):
        return {a.name: a.default for a in sf.args if a.default is not None}
    return None


def score_table(ve: VariantEffectSpec | None) -> tuple[tuple[ModelScore, ...], tuple[str, ...]]:
    """Return ``(available, defaults)`` for a variant-effect section (None: nothing declared).

    Raises
    ------
    KipoiSpecError
        On duplicate labels or a custom entry without ``defined_as: FILE.py::Name``.
    """
    declared: list[ModelScore] = []
    defaults: list[str] = []
    for sf in ve.scoring_functions if ve is not None else ():
        if sf.type == "custom":
            label = _custom_label(sf)
            if "::" not in sf.defined_as:
                msg = (
                    f"custom scoring function {label!r}: defined_as must be FILE.py::Name, "
                    f"got {sf.defined_as!r}"
                )
                raise KipoiSpecError(msg)
            entry = ModelScore(label, "custom", _custom_kwargs(sf), sf.defined_as)
        else:
            label = sf.name if sf.name and sf.name not in BUILTIN_SCORES else sf.type
            entry = ModelScore(label, sf.type)
        if any(d.label == label for d in declared):
            msg = f"scoring function label {label!r} is declared twice in model.yaml"
            raise KipoiSpecError(msg)
        declared.append(entry)
        if sf.default:
            defaults.append(label)
    if not defaults:
        defaults = [d.label for d in declared]
    taken_types = {d.type for d in declared}
    labels = {d.label for d in declared}
    added: list[ModelScore] = []

    def add(kind: str, kwargs: dict[str, Any] | None) -> None:
        label = f"default_{kind}" if kind in labels else kind
        added.append(ModelScore(label, kind, kwargs, declared=False))
        taken_types.add(kind)
        labels.add(label)

    for entry in declared:
        if entry.type == "custom":
            continue
        family = _LOGIT_FAMILY if entry.type in _LOGIT_FAMILY else _ALWAYS
        for kind in family:
            if kind not in taken_types:
                add(kind, entry.kwargs)
    for kind in _ALWAYS:
        if kind not in taken_types:
            add(kind, dict(BUILTIN_KWARGS))
            if not defaults:
                defaults.append(added[-1].label)
    return (*declared, *added), tuple(defaults)


def _check_args(obj: Any, names: set[str], ref: str) -> None:
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    got = {
        p
        for p in params
        if p != "self"
        and params[p].kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }
    if got != names:
        msg = (
            f"custom scoring function {ref}: its arguments {sorted(got)} do not match the yaml "
            f"args {sorted(names)}"
        )
        raise ModelError(msg)


def _custom_score(entry: ModelScore, model_dir: Path, arg_names: set[str]) -> DeclaredScore:
    obj = import_object(entry.defined_as, model_dir)
    if not callable(obj):
        msg = f"custom scoring function {entry.defined_as}: not callable"
        raise ModelError(msg)
    is_class = isinstance(obj, type)
    if is_class:
        _check_args(obj, arg_names, entry.defined_as)
    defaults = dict(entry.kwargs or {})
    cache: dict[tuple[tuple[str, str], ...], Any] = {}

    def fn(
        ref: np.ndarray,
        alt: np.ndarray,
        ref_rc: np.ndarray | None,
        alt_rc: np.ndarray | None,
        rc_merging: Any = "mean",
        **kwargs: Any,
    ) -> np.ndarray:
        if entry.kwargs is None and not kwargs:
            msg = f"score {entry.label!r} has arguments without defaults; give them as score kwargs"
            raise ModelError(msg)
        params = {**defaults, **kwargs}
        if "rc_merging" in arg_names and not (isinstance(rc_merging, str) and rc_merging == "mean"):
            params["rc_merging"] = rc_merging  # veff's default "mean" leaves the yaml default
        if not is_class:
            return np.asarray(obj(ref=ref, alt=alt, ref_rc=ref_rc, alt_rc=alt_rc, **params))
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        if key not in cache:
            with in_directory(model_dir):
                cache[key] = obj(**params)
        return np.asarray(cache[key](ref=ref, alt=alt, ref_rc=ref_rc, alt_rc=alt_rc))

    doc = (inspect.getdoc(obj) or "").strip().splitlines()
    description = doc[0] if doc else f"custom score {entry.defined_as}"
    return DeclaredScore(entry.label, fn=fn, description=description)


def declared_score(entry: ModelScore, model_dir: Path, ve: VariantEffectSpec | None = None) -> DeclaredScore:
    """Return one of a model's scores as a :class:`~veff.models.base.DeclaredScore`.

    Built-in types name the registered score they compute; custom ones import their class from
    the model directory (``ModelError`` when that fails).
    """
    if entry.type != "custom":
        return DeclaredScore(entry.label, computes=entry.type)
    arg_names: set[str] = set()
    for sf in ve.scoring_functions if ve is not None else ():
        if sf.type == "custom" and _custom_label(sf) == entry.label:
            arg_names = {a.name for a in sf.args}
    return _custom_score(entry, model_dir, arg_names)
