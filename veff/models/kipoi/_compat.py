"""Import Python code that ships with a Kipoi model directory, without the kipoi packages.

Model directories hold Python files (custom model classes, custom Keras objects, custom scoring
functions, PyTorch module files, dataloaders) that often start with ``from kipoi.model import
BaseModel`` / ``from kipoi.data import Dataset`` / ``from kipoi.metadata import GenomicRanges`` or
subclass ``kipoi_veff.scores.RCScore``. When kipoi / kipoi_veff are not installed, veff puts small
stand-ins for those few names into ``sys.modules`` while such a file is imported, and removes them
afterwards. The stand-ins carry no behaviour beyond what the subclasses rely on.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from veff.errors import ModelError
from veff.models._pyfile import load_python_file

__all__ = ["import_object", "in_directory", "kipoi_stand_ins"]


class _BaseModel:
    """Stand-in for ``kipoi.model.BaseModel``: subclasses implement ``predict_on_batch``."""

    def predict_on_batch(self, x: Any) -> Any:
        msg = f"{type(self).__name__} does not implement predict_on_batch"
        raise NotImplementedError(msg)


class _Score:
    """Stand-in for ``kipoi_veff.scores.Score``."""

    def __call__(self, ref: Any, alt: Any, ref_rc: Any = None, alt_rc: Any = None) -> Any:
        raise NotImplementedError


def _absmax(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(np.abs(y) > np.abs(x), y, x)


# kipoi-veff's names for merging the forward and reverse-complement scores (the median of two
# values is their mean); veff checks the name the user gives before a custom score sees it
_KIPOI_MERGES: dict[str, Any] = {
    "mean": lambda x, y: (x + y) / 2,
    "median": lambda x, y: (x + y) / 2,
    "min": np.minimum,
    "max": np.maximum,
    "absmax": _absmax,
}


class _RCScore(_Score):
    """Stand-in for ``kipoi_veff.scores.RCScore``: resolves ``rc_merging`` to ``self.rc_merging``."""

    def __init__(self, rc_merging: Any = "mean") -> None:
        if not callable(rc_merging) and rc_merging not in _KIPOI_MERGES:
            msg = f"unknown rc_merging {rc_merging!r}; expected one of {sorted(_KIPOI_MERGES)} or a callable"
            raise ModelError(msg)
        self.rc_merging = rc_merging if callable(rc_merging) else _KIPOI_MERGES[rc_merging]

    @staticmethod
    def absmax(x: np.ndarray, y: np.ndarray, inplace: bool = True) -> np.ndarray:
        """Element-wise the value with the larger magnitude (ties keep ``x``)."""
        return _absmax(x, y)


class _Dataset:
    """Stand-in for the ``kipoi.data`` base classes: subclasses implement the access methods.

    veff reads a dataloader through ``__len__`` + ``__getitem__`` (``Dataset``) or ``__iter__``
    (iterators), following the ``type`` given in dataloader.yaml.
    """

    def __iter__(self) -> Any:
        n = len(self)  # type: ignore[arg-type]
        return (self[i] for i in range(n))  # type: ignore[index]


class _GenomicRanges:
    """Stand-in for ``kipoi.metadata.GenomicRanges``: a sample's region (0-based, half-open)."""

    def __init__(self, chr: Any, start: Any, end: Any, id: Any, strand: Any = "*") -> None:
        self.chr, self.start, self.end, self.id, self.strand = chr, start, end, id, strand

    @classmethod
    def from_interval(cls, interval: Any) -> _GenomicRanges:
        """From a pybedtools ``Interval`` (name becomes ``id``)."""
        return cls(interval.chrom, interval.start, interval.stop, interval.name, interval.strand)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return {"chr": self.chr, "start": self.start, "end": self.end, "id": self.id, "strand": self.strand}


_DATA_CLASSES = (
    "Dataset",
    "PreloadedDataset",
    "BatchDataset",
    "SampleIterator",
    "BatchIterator",
    "SampleGenerator",
    "BatchGenerator",
)


def _stand_in_modules() -> dict[str, types.ModuleType]:
    mods = {
        name: types.ModuleType(name)
        for name in (
            "kipoi",
            "kipoi.model",
            "kipoi.data",
            "kipoi.metadata",
            "kipoi_veff",
            "kipoi_veff.scores",
            "kipoi_veff.utils",
            "kipoi_veff.utils.scoring_fns",
        )
    }
    mods["kipoi"].model = mods["kipoi.model"]  # type: ignore[attr-defined]
    mods["kipoi.model"].BaseModel = _BaseModel  # type: ignore[attr-defined]
    mods["kipoi"].data = mods["kipoi.data"]  # type: ignore[attr-defined]
    mods["kipoi"].metadata = mods["kipoi.metadata"]  # type: ignore[attr-defined]
    for cls_name in _DATA_CLASSES:
        setattr(mods["kipoi.data"], cls_name, type(cls_name, (_Dataset,), {}))
    mods["kipoi.metadata"].GenomicRanges = _GenomicRanges  # type: ignore[attr-defined]
    mods["kipoi_veff"].scores = mods["kipoi_veff.scores"]  # type: ignore[attr-defined]
    mods["kipoi_veff"].utils = mods["kipoi_veff.utils"]  # type: ignore[attr-defined]
    mods["kipoi_veff.utils"].scoring_fns = mods["kipoi_veff.utils.scoring_fns"]  # type: ignore[attr-defined]
    for name in ("kipoi_veff.scores", "kipoi_veff.utils.scoring_fns"):
        mods[name].Score = _Score  # type: ignore[attr-defined]
        mods[name].RCScore = _RCScore  # type: ignore[attr-defined]
        mods[name].Rc_merging_pred_analysis = _RCScore  # type: ignore[attr-defined]
    return mods


def _installed(top: str) -> bool:
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def kipoi_stand_ins() -> Iterator[None]:
    """Provide ``kipoi.model.BaseModel`` and ``kipoi_veff.scores.RCScore`` while importing model code."""
    added = {name: mod for name, mod in _stand_in_modules().items() if not _installed(name.split(".")[0])}
    sys.modules.update(added)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


@contextlib.contextmanager
def in_directory(path: Path) -> Iterator[None]:
    """Run with ``path`` as the working directory and first on ``sys.path`` (kipoi ran model code so)."""
    old = Path.cwd()
    entry = str(path.resolve())
    os.chdir(path)
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        os.chdir(old)
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def import_object(ref: str, base_dir: Path) -> Any:
    """Import ``file.py::Name``, ``dir/file.py::Name`` or ``module.Name`` relative to ``base_dir``.

    A dotted ``module.Name`` is looked up as ``base_dir/module.py`` first (the Kipoi convention for
    ``defined_as: model.MyModel``), then as an installed module. The import runs inside ``base_dir``
    with the kipoi stand-ins in place.
    """
    base_dir = base_dir.resolve()
    if "::" in ref:
        file_part, _, obj_name = ref.rpartition("::")
        module_path: Path | None = base_dir / file_part
        dotted = ""
    else:
        dotted, _, obj_name = ref.rpartition(".")
        candidate = base_dir / (dotted.replace(".", "/") + ".py") if dotted else None
        module_path = candidate if candidate is not None and candidate.is_file() else None
    if not obj_name or (module_path is None and not dotted):
        msg = f"{ref!r}: expected FILE.py::Name or module.Name"
        raise ModelError(msg)
    with in_directory(base_dir), kipoi_stand_ins():
        if module_path is not None:
            module = load_python_file(module_path.resolve())
        else:
            try:
                module = importlib.import_module(dotted)
            except ImportError as exc:
                msg = f"{ref!r}: no file {dotted.replace('.', '/')}.py in {base_dir} and no module {dotted!r}"
                raise ModelError(msg) from exc
    try:
        return getattr(module, obj_name)
    except AttributeError:
        msg = f"{ref!r}: {module_path or dotted} defines no {obj_name!r}"
        raise ModelError(msg) from None
