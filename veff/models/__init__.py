"""Model adapters and :func:`load_model`, which turns a path or object into a :class:`Model`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from veff.errors import ModelError
from veff.models.base import CallableModel, InputLayout, Model, sanitize_name

__all__ = ["CallableModel", "InputLayout", "Model", "load_model", "sanitize_name"]

_KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")
_TORCH_SUFFIXES = (".pt", ".pth", ".pts", ".jit", ".torchscript")


def _is_torch_module(obj: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_keras_model(obj: object) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def load_model(  # noqa: PLR0913
    source: Any,
    *,
    seq_length: int | None = None,
    input_layout: str | None = None,
    output_labels: tuple[str, ...] | list[str] | None = None,
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
        pickled module), ``FILE.py::Class`` (PyTorch module class, with ``weights``).
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

        return TorchModel.from_path(
            text, weights=weights, device=device, precision=precision, **common  # type: ignore[arg-type]
        )
    if path.is_dir():
        msg = f"{path}: model directories (model.yaml) are not supported yet"
        raise ModelError(msg)
    if not path.exists():
        msg = f"{path}: model not found"
        raise ModelError(msg)
    suffix = path.suffix.lower()
    if suffix in _KERAS_SUFFIXES:
        from veff.models.keras import KerasModel

        return KerasModel.from_path(path, **common)
    if suffix in _TORCH_SUFFIXES:
        from veff.models.torch import TorchModel

        return TorchModel.from_path(path, device=device, precision=precision, **common)  # type: ignore[arg-type]
    msg = (
        f"{path}: unknown model kind (suffix {suffix!r}); expected .h5/.keras (Keras), "
        ".pt/.pth (PyTorch), FILE.py::Class, or a model directory"
    )
    raise ModelError(msg)
