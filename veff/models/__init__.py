"""Loading models: :func:`load_model` turns a path, a name or an object into a :class:`Model`.

The adapters register with :mod:`veff.models.registry`; :func:`resolve_model` finds a model by
name (``$VEFF_MODEL_PATH``, ``veff.models`` entry points) and :func:`list_models` lists them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from veff.errors import ModelError
from veff.models.base import (
    CallableModel,
    DeclaredScore,
    InputLayout,
    Model,
    WindowRequest,
    check_device,
    check_precision,
    parse_output_layout,
    sanitize_name,
)
from veff.models.registry import Framework, LoadOptions, find_framework, frameworks, register_framework

__all__ = [
    "CallableModel",
    "DeclaredScore",
    "Framework",
    "InputLayout",
    "LoadOptions",
    "Model",
    "WindowRequest",
    "cpu_threads",
    "describe_model",
    "find_framework",
    "frameworks",
    "list_models",
    "load_model",
    "parse_output_layout",
    "register_framework",
    "resolve_model",
    "sanitize_name",
]

MODEL_PATH_ENV = "VEFF_MODEL_PATH"
ENTRY_POINT_GROUP = "veff.models"


def load_model(
    source: Any,
    *,
    seq_length: int | None = None,
    input_layout: str | None = None,
    output_labels: Sequence[str] | None = None,
    output_layout: str | None = None,
    weights: str | Path | None = None,
    device: str = "auto",
    precision: str = "float32",
    name: str | None = None,
    trust_model: bool = False,
    random_weights: bool = False,
) -> Model:
    """Return veff's model object for a path or a model object.

    The adapter is found in :mod:`veff.models.registry`: by the object's type, by the file's
    suffix, or by a probe (model directories, ``FILE.py::Class``).

    Parameters
    ----------
    source
        A :class:`Model`; a ``torch.nn.Module``; a ``keras.Model``; any callable
        ``array -> array``; or a path: ``.h5``/``.keras`` (Keras), ``.pt``/``.pth`` (TorchScript or
        pickled module), ``FILE.py::Class`` (PyTorch module class, with ``weights``), a Kipoi
        model directory (model.yaml, see :mod:`veff.models.kipoi`), a file of a framework
        registered by a package; or a model name looked up by :func:`resolve_model`.
    seq_length
        Input length, for models that do not fix it.
    input_layout
        Per-sequence layout such as ``"4,L"`` or ``"L,1,4"``, overriding what the model declares.
    output_labels
        Names of the outputs.
    output_layout
        Layout of position-resolved outputs, ``"positions_first"`` ((N, P, T)) or
        ``"tasks_first"`` ((N, T, P), as bpnet-lite and OpenSpliceAI write them), overriding
        what the model declares (attribute ``output_layout``; see docs/models.md).
    weights
        State dict for ``FILE.py::Class``.
    device, precision
        PyTorch placement and autocast precision.
    name
        Model name (default: file stem or class name).
    trust_model
        Allow a pickled full PyTorch module (unpickling runs code from the file; see the "Trust"
        section of docs/models.md). Without it such a file is refused with a ModelError.
    random_weights
        Allow ``FILE.py::Class`` without ``weights`` when the class has parameters and does not
        declare ``veff_weights_included = True`` (it scores with its initial weights).

    Raises
    ------
    ModelError
        When no registered framework loads the path, or the framework fails to.
    InputError
        For an unknown device or output layout.
    ModelError
        Also for an unknown precision (whatever the framework).
    """
    check_device(device)
    check_precision(precision)  # for every framework, not only those that use it
    options = LoadOptions(
        seq_length=seq_length,
        layout=InputLayout.parse(input_layout) if input_layout else None,
        output_labels=tuple(map(str, output_labels)) if output_labels else None,
        output_layout=parse_output_layout(output_layout),
        weights=weights,
        device=device,
        precision=precision,
        name=name,
        trust_model=trust_model,
        random_weights=random_weights,
    )
    if isinstance(source, Model):
        return options.apply(source)
    is_path = isinstance(source, (str, os.PathLike))
    framework = find_framework(str(source) if is_path else source)  # objects, FILE.py::Class specs
    if framework is not None:
        return options.apply(framework.load(str(source) if is_path else source, options))
    path = Path(str(source))
    if not path.exists():
        found = resolve_model(str(source))
        return load_model(
            found,
            seq_length=seq_length,
            input_layout=input_layout,
            output_labels=output_labels,
            output_layout=output_layout,
            weights=weights,
            device=device,
            precision=precision,
            name=name,
            trust_model=trust_model,
            random_weights=random_weights,
        )
    framework = find_framework(path)
    if framework is None:
        raise ModelError(_unknown_kind(path))
    if weights is not None and framework.kind != "pytorch":
        msg = f"weights ({weights}) go with a model given as FILE.py::Class, not with {path}"
        raise ModelError(msg)
    return options.apply(framework.load(path, options))


def _unknown_kind(path: Path) -> str:
    if path.is_dir():
        return f"{path}: a directory without model.yaml is not a model directory"
    known = ", ".join(
        f"{'/'.join(fw.suffixes)} ({fw.title or fw.kind})" for fw in frameworks() if fw.suffixes
    )
    return (
        f"{path}: unknown model kind (suffix {path.suffix.lower()!r}); expected {known}, "
        "FILE.py::Class, or a model directory"
    )


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
    """Models under ``folder``: directories a framework loads (at any depth), and files directly in it."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        here = Path(root)
        if here != folder:
            framework = find_framework(here)
            if framework is not None:
                yield here.relative_to(folder).as_posix(), here, framework.kind
            continue
        by_suffix = {sfx: fw.kind for fw in reversed(frameworks()) for sfx in fw.suffixes}
        for f in sorted(files):
            kind = by_suffix.get(Path(f).suffix.lower())
            if kind is not None:
                yield f, here / f, kind


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
def cpu_threads(n: int | None, only: str | None = None) -> Iterator[None]:
    """Run the block with ``n`` CPU threads in every framework that runs and can set them.

    ``only`` names the one framework (its ``kind``, e.g. ``pytorch``) to set, for a choice veff made itself
    (:func:`veff.engine.batching.model_threads`), which must leave other libraries alone.

    That is PyTorch (its previous setting is restored afterwards) and TensorFlow when it has not
    started; frameworks declare this as :attr:`Framework.threads <veff.models.registry.Framework>`.
    None leaves the libraries as they are. Some kernels (large dense layers through BLAS) split
    their sums across threads, so the last bits of a result can change with the thread count:
    runs that must give the same bytes (a sharded run and a run in one process) need the same
    ``n``.
    """
    if n is None:
        yield
        return
    chosen = [fw for fw in frameworks() if fw.threads is not None and only in (None, fw.kind)]
    restore = [undo for fw in chosen if fw.threads is not None and (undo := fw.threads(n)) is not None]
    try:
        yield
    finally:
        for undo in reversed(restore):
            undo()
