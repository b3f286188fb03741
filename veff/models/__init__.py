"""Model adapters and :func:`load_model`, which turns a path or object into a :class:`Model`."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from veff.errors import ModelError
from veff.models.base import CallableModel, InputLayout, Model, WindowRequest, sanitize_name

__all__ = [
    "CallableModel",
    "InputLayout",
    "Model",
    "WindowRequest",
    "cpu_threads",
    "describe_model",
    "list_models",
    "load_model",
    "resolve_model",
    "sanitize_name",
]

MODEL_PATH_ENV = "VEFF_MODEL_PATH"
ENTRY_POINT_GROUP = "veff.models"
log = logging.getLogger("veff")

_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
_TORCH_SUFFIXES = (".pt", ".pth", ".pts", ".jit", ".torchscript")


def _is_torch_module(obj: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_keras_model(obj: object) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def load_model(
    source: Any,
    *,
    seq_length: int | None = None,
    input_layout: str | None = None,
    output_labels: Sequence[str] | None = None,
    weights: str | Path | None = None,
    device: str = "auto",
    precision: str = "float32",
    name: str | None = None,
) -> Model:
    """Return veff's model object for a path or a model object.

    Parameters
    ----------
    source
        A :class:`Model`; a ``torch.nn.Module``; a ``keras.Model``; any callable
        ``array -> array``; or a path: ``.h5``/``.keras`` (Keras), ``.pt``/``.pth`` (TorchScript or
        pickled module), ``FILE.py::Class`` (PyTorch module class, with ``weights``), a Kipoi
        model directory (model.yaml, see :mod:`veff.models.kipoi`); or a model name looked up by
        :func:`resolve_model`.
    seq_length
        Input length, for models that do not fix it.
    input_layout
        Per-sequence layout such as ``"4,L"`` or ``"L,1,4"``, overriding what the model declares.
    output_labels
        Names of the outputs.
    weights
        State dict for ``FILE.py::Class``.
    device, precision
        PyTorch placement and autocast precision.
    name
        Model name (default: file stem or class name).
    """
    layout = InputLayout.parse(input_layout) if input_layout else None
    labels = tuple(map(str, output_labels)) if output_labels else None
    common: dict[str, Any] = {"seq_length": seq_length, "layout": layout, "output_labels": labels}
    if name:
        common["name"] = name
    if isinstance(source, Model):
        for key, value in (("seq_length", seq_length), ("layout", layout), ("output_labels", labels)):
            if value is not None:
                setattr(source, key, value)
        if name:
            source.name = name
        return source
    if _is_torch_module(source):
        from veff.models.torch import TorchModel

        return TorchModel(source, device=device, precision=precision, **common)  # type: ignore[arg-type]
    if _is_keras_model(source):
        from veff.models.keras import KerasModel

        return KerasModel(source, **common)
    if callable(source) and not isinstance(source, (str, Path)):
        return CallableModel(source, **common)
    text = str(source)
    path = Path(text.split("::")[0])
    if "::" in text:
        from veff.models.torch import TorchModel

        return TorchModel.from_path(text, weights=weights, device=device, precision=precision, **common)
    if path.is_dir():
        if not (path / "model.yaml").is_file():
            msg = f"{path}: a directory without model.yaml is not a model directory"
            raise ModelError(msg)
        from veff.models.kipoi import load_kipoi_model

        found: Path | Model = load_kipoi_model(path, device=device, precision=precision)
    elif not path.exists():
        found = resolve_model(text)
    else:
        found = path
    if found is not path:
        return load_model(
            found,
            seq_length=seq_length,
            input_layout=input_layout,
            output_labels=output_labels,
            weights=weights,
            device=device,
            precision=precision,
            name=name,
        )
    suffix = path.suffix.lower()
    if suffix in _KERAS_SUFFIXES:
        from veff.models.keras import KerasModel

        return KerasModel.from_path(path, **common)
    if suffix in _TORCH_SUFFIXES:
        from veff.models.torch import TorchModel

        return TorchModel.from_path(path, device=device, precision=precision, **common)
    msg = (
        f"{path}: unknown model kind (suffix {suffix!r}); expected .h5/.keras (Keras), "
        ".pt/.pth (PyTorch), FILE.py::Class, or a model directory"
    )
    raise ModelError(msg)


def _search_path() -> list[Path]:
    """The folders of ``$VEFF_MODEL_PATH`` (colon-separated), in order."""
    value = os.environ.get(MODEL_PATH_ENV, "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def resolve_model(name: str) -> Path | Model:
    """Find a model given by name: a path, else ``$VEFF_MODEL_PATH``, else a ``veff.models`` entry point.

    ``$VEFF_MODEL_PATH`` holds colon-separated folders; ``name`` (which may contain ``/``, as in
    ``DeepSEA/variantEffects``) is looked up in each, first match wins. An installed package can serve
    models through the entry-point group ``veff.models``: the entry point's name is the model name
    and its value a function returning a path or a :class:`Model`.

    Raises
    ------
    ModelError
        When nothing is found (the message lists where veff looked).
    """
    path = Path(name).expanduser()
    if path.exists():
        return path
    folders = _search_path()
    for folder in folders:
        candidate = folder / name
        if candidate.exists():
            return candidate
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name != name:
            continue
        try:
            obj = ep.load()
            result = obj() if callable(obj) and not isinstance(obj, Model) else obj
        except Exception as exc:
            msg = f"model {name!r}: entry point {ep.value} failed: {type(exc).__name__}: {exc}"
            raise ModelError(msg) from exc
        if isinstance(result, Model):
            return result
        if isinstance(result, (str, os.PathLike)) and Path(result).exists():
            return Path(result)
        msg = f"model {name!r}: entry point {ep.value} returned {result!r}, not a Model or an existing path"
        raise ModelError(msg)
    where = ", ".join(str(f) for f in folders) or "unset"
    msg = (
        f"model {name!r} not found: no such path, not in ${MODEL_PATH_ENV} ({where}), and no "
        f"{ENTRY_POINT_GROUP!r} entry point of that name"
    )
    raise ModelError(msg)


def _walk_models(folder: Path) -> Iterator[tuple[str, Path, str]]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        here = Path(root)
        if "model.yaml" in files and here != folder:
            yield here.relative_to(folder).as_posix(), here, "kipoi"
        elif here == folder:
            for f in sorted(files):
                suffix = Path(f).suffix.lower()
                if suffix in _KERAS_SUFFIXES or suffix in _TORCH_SUFFIXES:
                    yield f, here / f, "keras" if suffix in _KERAS_SUFFIXES else "pytorch"


def list_models() -> list[dict[str, Any]]:
    """Models found on the search path and through entry points.

    Returns
    -------
    list of dict
        One per model, in lookup order: ``name`` (what :func:`load_model` accepts), ``path``
        (None for entry points), ``kind`` (``kipoi``, ``keras``, ``pytorch`` or ``entry point``)
        and ``source`` (the folder, or the entry point's value). A name found twice is listed once,
        as :func:`resolve_model` resolves it.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for folder in _search_path():
        if not folder.is_dir():
            continue
        for name, path, kind in _walk_models(folder):
            if name not in seen:
                seen.add(name)
                out.append({"name": name, "path": str(path), "kind": kind, "source": str(folder)})
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in seen:
            seen.add(ep.name)
            out.append({"name": ep.name, "path": None, "kind": "entry point", "source": ep.value})
    return out


def describe_model(path: str | Path) -> dict[str, Any]:
    """What veff understands of a Kipoi model directory; see :func:`veff.models.kipoi.describe_model`."""
    from veff.models.kipoi.describe import describe_model as describe

    return describe(path)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` CPU threads in PyTorch (and TensorFlow, when it has not started).

    None leaves the libraries as they are. PyTorch's previous setting is restored afterwards.
    Some kernels (large dense layers through BLAS) split their sums across threads, so the
    last bits of a result can change with the thread count: runs that must give the same
    bytes (a sharded run and a run in one process) need the same ``n``.
    """
    if n is None:
        yield
        return
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
        except RuntimeError:  # TensorFlow started already: its pools are fixed
            if tf.config.threading.get_intra_op_parallelism_threads() != n:
                log.warning("TensorFlow runs already; set TF_NUM_INTRAOP_THREADS=%d before it starts", n)
    try:
        yield
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)
