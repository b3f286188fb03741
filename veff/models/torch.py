"""PyTorch adapter (torch is imported here only, and lazily).

Accepts an ``nn.Module`` object, a TorchScript file, a pickled module, or a module file plus class
name and state dict (``path/to/net.py::ClassName`` with ``weights=``). A module may declare
``seq_len``, ``output_labels`` and ``input_layout`` (``"4,L"`` for Conv1d-style models, the default).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veff.errors import ModelError
from veff.models._pyfile import load_python_file
from veff.models.base import InputLayout, Model
from veff.models.registry import Framework, LoadOptions

__all__ = ["FRAMEWORK", "TorchModel", "load_module_class", "resolve_device"]

Precision = Literal["float32", "bfloat16", "float16"]


def resolve_device(device: str = "auto") -> str:
    """Return a torch device string for ``auto|cpu|cuda[:N]``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        msg = f"device {device!r} requested but CUDA is not available"
        raise ModelError(msg)
    return device


def load_module_class(spec: str, kwargs: dict[str, Any] | None = None) -> Any:
    """Instantiate ``path/to/file.py::ClassName`` (or ``package.module::ClassName``)."""
    path_text, _, cls_name = spec.rpartition("::")
    if not path_text or not cls_name:
        msg = f"{spec!r}: expected FILE.py::ClassName"
        raise ModelError(msg)
    path = Path(path_text)
    module = load_python_file(path) if path.suffix == ".py" else importlib.import_module(path_text)
    try:
        cls = getattr(module, cls_name)
    except AttributeError:
        msg = f"{path_text}: no class or object named {cls_name!r}"
        raise ModelError(msg) from None
    return cls(**(kwargs or {})) if isinstance(cls, type) else cls


class TorchModel(Model):
    """Run a PyTorch module under ``torch.inference_mode``.

    Parameters
    ----------
    module
        The network; put in eval mode and moved to ``device``.
    name, seq_length, layout, output_labels
        Override what the module declares (``seq_len``, ``input_layout``, ``output_labels``).
    device
        ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.
    precision
        ``float32``, or ``bfloat16`` / ``float16`` autocast.
    """

    framework = "pytorch"

    def __init__(
        self,
        module: Any,
        *,
        name: str | None = None,
        seq_length: int | None = None,
        layout: InputLayout | None = None,
        output_labels: tuple[str, ...] | None = None,
        device: str = "auto",
        precision: Precision = "float32",
    ) -> None:
        import torch

        self.device = resolve_device(device)
        self.accelerator = "gpu" if self.device.startswith("cuda") else "cpu"
        self.module = self._wrapped = module.to(self.device).eval()
        self.name = name or type(module).__name__
        self.seq_length = seq_length or getattr(module, "seq_len", None)
        self.layout = layout or InputLayout.parse(getattr(module, "input_layout", "4,L"))
        labels = output_labels or getattr(module, "output_labels", None)
        self.output_labels = tuple(map(str, labels)) if labels is not None else None
        if precision not in ("float32", "bfloat16", "float16"):
            msg = f"unknown precision {precision!r}; expected float32, bfloat16 or float16"
            raise ModelError(msg)
        self.precision = precision
        self._dtype = getattr(torch, precision)
        self.default_rc = bool(getattr(module, "use_rc", False))

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        weights: str | Path | None = None,
        module_kwargs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> TorchModel:
        """Load a TorchScript/pickled module file, or ``file.py::Class`` with a state dict."""
        import torch

        text = str(path)
        if "::" in text:
            module = load_module_class(text, module_kwargs)
            if weights is not None:
                try:
                    state = torch.load(str(weights), map_location="cpu", weights_only=True)
                    module.load_state_dict(state)
                except (OSError, RuntimeError, KeyError) as exc:
                    msg = f"{weights}: cannot load the state dict into {text}: {exc}"
                    raise ModelError(msg) from exc
            kw.setdefault("name", Path(text.split("::")[0]).stem)
            return cls(module, **kw)
        p = Path(text)
        if not p.is_file():
            msg = f"{p}: model file not found"
            raise ModelError(msg)
        try:
            module = torch.jit.load(str(p), map_location="cpu")
        except (RuntimeError, ValueError):
            try:
                module = torch.load(str(p), map_location="cpu", weights_only=False)
            except Exception as exc:
                msg = f"{p}: not a TorchScript or pickled PyTorch module: {exc}"
                raise ModelError(msg) from exc
        if isinstance(module, dict):
            msg = (
                f"{p}: holds a state dict, not a module; give the class as "
                f"FILE.py::ClassName with --weights {p}"
            )
            raise ModelError(msg)
        kw.setdefault("name", p.stem)
        return cls(module, **kw)

    def _forward(self, x: np.ndarray) -> Any:
        import torch

        xt = torch.from_numpy(x).to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(device_type=self.device.split(":")[0], dtype=self._dtype)
            if self.precision != "float32"
            else nullcontext()
        )
        with torch.inference_mode(), autocast:
            out = self.module(xt)
        if isinstance(out, (tuple, list)):
            return [t.float().cpu().numpy() for t in out]
        if isinstance(out, dict):
            return {k: t.float().cpu().numpy() for k, t in out.items()}
        return out.float().cpu().numpy()

    def activation_floats(self, length: int) -> int | None:
        """Largest output (floats) of any leaf module for one all-N sequence (forward hooks).

        None for TorchScript modules, whose submodules take no hooks.
        """
        import torch

        if self.module is None or isinstance(self.module, torch.jit.ScriptModule):
            return None
        sizes: list[int] = []

        def record(_mod: Any, _inp: Any, out: Any) -> None:
            outs = out if isinstance(out, (tuple, list)) else (out,)
            sizes.extend(int(o.numel()) for o in outs if isinstance(o, torch.Tensor))

        leaves = [m for m in self.module.modules() if not any(True for _ in m.children())]
        handles = [m.register_forward_hook(record) for m in leaves]
        try:
            self._forward(self.layout.to_model(np.zeros((1, length, 4), np.float32)))
        except Exception:  # the probe of the run reports a model that rejects its input
            return None
        finally:
            for h in handles:
                h.remove()
        return max(sizes, default=None)

    def close(self) -> None:
        """Free the module."""
        self.module = None


def _accepts(source: Any) -> bool:
    """An ``nn.Module`` (TorchScript modules included) or a ``FILE.py::Class`` spec."""
    if isinstance(source, str):
        return "::" in source
    torch = sys.modules.get("torch")  # an nn.Module exists only once torch is imported
    return torch is not None and isinstance(source, torch.nn.Module)


def _load(source: Any, options: LoadOptions) -> Model:
    place: dict[str, Any] = {"device": options.device, "precision": options.precision}
    if isinstance(source, (str, Path)):
        return TorchModel.from_path(source, weights=options.weights, **place, **options.overrides())
    return TorchModel(source, **place, **options.overrides())


def _threads(n: int) -> Callable[[], None] | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    return lambda: torch.set_num_threads(before)


FRAMEWORK = Framework(
    "pytorch",
    _load,
    suffixes=(".pt", ".pth", ".pts", ".jit", ".torchscript"),  # TorchScript first, else a pickled module
    accepts=_accepts,
    threads=_threads,
    title="PyTorch",
)
