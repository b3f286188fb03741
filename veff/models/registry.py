"""The framework registry: which model adapter loads a given path or object.

Each framework veff can run is one :class:`Framework`: its ``kind``, the file suffixes it loads,
an optional probe ``accepts`` for what suffixes cannot tell (framework objects, directories,
``FILE.py::Class`` specs), the loader, and optionally how to set its CPU thread count. The
built-in ones are declared by their adapter modules as ``FRAMEWORK`` (:mod:`veff.models.torch`,
:mod:`veff.models.keras`, :mod:`veff.models.kipoi`, :mod:`veff.models.python`); installed packages
add theirs through the ``veff.frameworks`` entry-point group (the entry point's value is a
Framework, or a function returning one), and code can call :func:`register_framework`.

Adding a framework (ONNX, JAX...) is one module: a :class:`~veff.models.base.Model` subclass plus
its ``FRAMEWORK``, registered through an entry point or by :func:`register_framework`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from veff.errors import ModelError
from veff.models.base import InputLayout, Model, OutputLayout

__all__ = [
    "ENTRY_POINT_GROUP",
    "Framework",
    "LoadOptions",
    "find_framework",
    "frameworks",
    "register_framework",
]

ENTRY_POINT_GROUP = "veff.frameworks"
_BUILTIN = ("veff.models.torch", "veff.models.keras", "veff.models.kipoi", "veff.models.python")


@dataclass(frozen=True)
class LoadOptions:
    """What :func:`veff.models.load_model` was asked for, handed to every loader.

    Attributes
    ----------
    seq_length, layout, output_labels, output_layout, name
        Overrides of what the model declares (None: keep the model's); the registry applies them
        to the loaded model, so a loader may ignore them.
    weights
        State dict for ``FILE.py::Class`` specs.
    device, precision
        Placement (``auto``, ``cpu``, ``cuda[:N]``) and autocast precision, for frameworks that
        have them.
    trust_model
        Allow model files whose loading runs code from the file (a pickled PyTorch module).
    random_weights
        Allow a ``FILE.py::Class`` with parameters but without ``weights`` (untrained).
    """

    seq_length: int | None = None
    layout: InputLayout | None = None
    output_labels: tuple[str, ...] | None = None
    output_layout: OutputLayout | None = None
    weights: str | Path | None = None
    device: str = "auto"
    precision: str = "float32"
    name: str | None = None
    trust_model: bool = False
    random_weights: bool = False

    def overrides(self) -> dict[str, Any]:
        """The adapter keyword arguments ``seq_length``, ``layout``, ``output_labels`` (and ``name``)."""
        out: dict[str, Any] = {
            "seq_length": self.seq_length,
            "layout": self.layout,
            "output_labels": self.output_labels,
        }
        if self.name:
            out["name"] = self.name
        return out

    def apply(self, model: Model) -> Model:
        """Set the overrides that were given on ``model``; returns ``model``."""
        for key, value in (
            ("seq_length", self.seq_length),
            ("layout", self.layout),
            ("output_labels", self.output_labels),
            ("output_layout", self.output_layout),
        ):
            if value is not None:
                setattr(model, key, value)
        if self.name:
            model.name = self.name
        return model


@dataclass(frozen=True)
class Framework:
    """A model adapter veff can load.

    Attributes
    ----------
    kind
        Short name (``pytorch``, ``keras``, ``kipoi``, ``python``), shown by ``veff models list``.
    load
        ``load(source, options)`` returns the :class:`~veff.models.base.Model`; ``source`` is what
        ``accepts`` took: an object, a spec string, or an existing :class:`~pathlib.Path`.
    suffixes
        Lower-case file suffixes (with the dot) the framework loads.
    accepts
        Probe for sources that suffixes cannot tell, called with objects, strings and existing
        paths (files and directories); a file with one of ``suffixes`` is accepted without it.
    threads
        ``threads(n)`` sets the framework's CPU threads when it is running and returns a function
        that restores the previous setting (or None); None: no thread control.
    title
        Name used in messages (default: ``kind``).
    priority
        Frameworks are asked in decreasing priority, then in order of registration; the
        catch-all for plain callables has the lowest.
    """

    kind: str
    load: Callable[[Any, LoadOptions], Model]
    suffixes: tuple[str, ...] = ()
    accepts: Callable[[Any], bool] | None = None
    threads: Callable[[int], Callable[[], None] | None] | None = None
    title: str = ""
    priority: int = 0

    def takes(self, source: Any) -> bool:
        """Whether this framework loads ``source`` (an object, a string, or an existing path)."""
        if isinstance(source, Path) and source.is_file() and source.suffix.lower() in self.suffixes:
            return True
        return self.accepts is not None and bool(self.accepts(source))


_FRAMEWORKS: dict[str, Framework] = {}
_loaded = False


def register_framework(framework: Framework, *, overwrite: bool = False) -> Framework:
    """Add ``framework`` to the registry (returns it).

    Raises
    ------
    ModelError
        When a framework of that kind is registered already and ``overwrite`` is False.
    """
    _load_registered()  # the built-in ones come first
    if framework.kind in _FRAMEWORKS and not overwrite and _FRAMEWORKS[framework.kind] is not framework:
        msg = f"a framework of kind {framework.kind!r} is already registered"
        raise ModelError(msg)
    _FRAMEWORKS[framework.kind] = framework
    return framework


def _load_registered() -> None:
    """Register the built-in adapters, then the ``veff.frameworks`` entry points (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN:
        fw = importlib.import_module(module).FRAMEWORK
        _FRAMEWORKS.setdefault(fw.kind, fw)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            fw = obj() if callable(obj) and not isinstance(obj, Framework) else obj
        except Exception as exc:
            msg = f"framework entry point {ep.value} failed: {type(exc).__name__}: {exc}"
            raise ModelError(msg) from exc
        if not isinstance(fw, Framework):
            msg = f"framework entry point {ep.value} gave {fw!r}, not a veff.models.registry.Framework"
            raise ModelError(msg)
        _FRAMEWORKS.setdefault(fw.kind, fw)


def frameworks() -> list[Framework]:
    """Every registered framework, in the order they are asked (decreasing priority)."""
    _load_registered()
    return sorted(_FRAMEWORKS.values(), key=lambda fw: -fw.priority)


def find_framework(source: Any) -> Framework | None:
    """The first framework that takes ``source`` (an object, a string, or an existing path), or None."""
    return next((fw for fw in frameworks() if fw.takes(source)), None)
