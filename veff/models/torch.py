"""PyTorch adapter (torch is imported here only, and lazily).

Accepts an ``nn.Module`` object, a TorchScript file, a module file plus class name and state dict
(``path/to/net.py::ClassName`` with ``weights=``), or, with ``trust_model=True`` only, a pickled
full module (unpickling runs code from the file). A module may declare ``seq_len``,
``output_labels`` and ``input_layout`` (``"4,L"`` for Conv1d-style models, the default), and
``veff_weights_included = True`` when its class loads trained weights itself.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np

from veff.errors import ModelError
from veff.models._gradients import no_input_gradient, target_columns
from veff.models._pyfile import load_python_file
from veff.models.base import (
    GradientTarget,
    InputLayout,
    Model,
    MutantEngine,
    NoMutantEngine,
    check_device,
    check_precision,
)
from veff.models.registry import Framework, LoadOptions

__all__ = ["FRAMEWORK", "TorchModel", "load_module_class", "resolve_device", "to_numpy"]

Precision = Literal["float32", "bfloat16", "float16"]


def resolve_device(device: str = "auto") -> str:
    """Return a torch device string for ``auto|cpu|cuda[:N]|mps``."""
    import torch

    check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        msg = f"device {device!r} requested but CUDA is not available; use --device cpu (or auto)"
        raise ModelError(msg)
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        msg = f"device {device!r}: there are {torch.cuda.device_count()} CUDA devices (cuda:0, ...)"
        raise ModelError(msg)
    if device == "mps" and not torch.backends.mps.is_available():
        msg = "device 'mps' requested but Apple's MPS is not available; use --device cpu (or auto)"
        raise ModelError(msg)
    return device


def _first_line(exc: BaseException) -> str:
    """``Type: first sentence of the message`` (torch's messages go on for lines)."""
    text = str(exc).strip().splitlines()
    first = text[0].split(". ")[0].rstrip(".") if text else ""
    return f"{type(exc).__name__}: {first}".rstrip(": ")


def _has_parameters(module: Any) -> bool:
    """Whether the module has weights at all (a fixed function such as a GC counter has none)."""
    try:
        return any(True for _ in module.parameters())
    except Exception:  # not an nn.Module: it cannot say, so it is taken to have weights
        return True


def _load_state_dict(module: Any, weights: str | Path, spec: str) -> None:
    """Load the state dict file ``weights`` into ``module``, every failure one ModelError line."""
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note that a TorchScript file is not a state dict
            state = torch.load(str(weights), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        msg = (
            f"{weights}: not a state dict (it pickles other objects, e.g. a whole module); save "
            "the weights with torch.save(model.state_dict(), PATH)"
        )
        raise ModelError(msg) from None
    except Exception as exc:
        if "TorchScript" in str(exc):
            msg = (
                f"{weights}: a TorchScript module, not a state dict; give it as the MODEL, without --weights"
            )
            raise ModelError(msg) from exc
        msg = (
            f"{weights}: cannot read as a PyTorch state dict ({_first_line(exc)}); "
            "expected a file written by torch.save(model.state_dict(), PATH)"
        )
        raise ModelError(msg) from exc
    if not isinstance(state, dict):
        msg = f"{weights}: holds a {type(state).__name__}, not a state dict (a dict of tensors)"
        raise ModelError(msg)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        msg = f"{weights}: does not fit {spec}: {_state_dict_mismatch(module, state)}"
        raise ModelError(msg) from exc


def _state_dict_mismatch(module: Any, state: dict[str, Any]) -> str:
    """Missing, unexpected and wrongly shaped keys of ``state`` for ``module``, in one line."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]

    def few(items: list[str]) -> str:
        return ", ".join(items[:3]) + (f" (+{len(items) - 3} more)" if len(items) > 3 else "")

    parts = [
        f"{label} {few(items)}"
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", extra),
            ("shapes (file vs model)", shapes),
        )
        if items
    ]
    return "; ".join(parts) or "the module refused it"


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
        self.precision = check_precision(precision)
        self._dtype = getattr(torch, precision)
        self.default_rc = bool(getattr(module, "use_rc", False))
        self._sizes: dict[int, tuple[int, int, int] | None] = {}  # _leaf_sizes per length
        from veff.models.torch_kernels import has_wide_convs

        # float32 on a CPU: wide convolutions (profile heads) by faster paths than oneDNN's plain one
        self.wide_convs = self.accelerator == "cpu" and precision == "float32" and has_wide_convs(self.module)

    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        weights: str | Path | None = None,
        module_kwargs: dict[str, Any] | None = None,
        trust_model: bool = False,
        random_weights: bool = False,
        **kw: Any,
    ) -> TorchModel:
        """Load a TorchScript file, ``file.py::Class`` with a state dict, or a trusted pickled module.

        Parameters
        ----------
        path
            A ``.pt``/``.pth`` file, or ``file.py::Class``.
        weights
            State dict for ``file.py::Class``.
        module_kwargs
            Arguments of ``Class``.
        trust_model
            Allow a pickled full module (``torch.save(model)``): unpickling runs code from the
            file, so only for files from a trusted source. Without it such a file is refused.
        random_weights
            Allow ``file.py::Class`` without ``weights`` although the class has parameters and
            does not declare ``veff_weights_included = True`` (it then scores with its initial
            weights). A module without parameters needs neither.
        **kw
            Passed to :class:`TorchModel` (``device``, ``precision``, ``name``...).
        """
        import torch

        text = str(path)
        if "::" in text:
            module = load_module_class(text, module_kwargs)
            if weights is not None:
                _load_state_dict(module, weights, text)
            elif (
                not random_weights
                and not getattr(module, "veff_weights_included", False)
                and _has_parameters(module)
            ):
                msg = (
                    f"{text}: no weights given, so the class would score with its random initial "
                    "weights; give --weights STATE_DICT (weights=), declare "
                    "`veff_weights_included = True` on the class if it loads trained weights itself, "
                    "or pass --random-weights (random_weights=True) to score untrained"
                )
                raise ModelError(msg)
            kw.setdefault("name", Path(text.split("::")[0]).stem)
            return cls(module, **kw)
        if weights is not None:
            msg = f"weights ({weights}) go with a model given as FILE.py::Class, not with {text}"
            raise ModelError(msg)
        p = Path(text)
        if not p.is_file():
            msg = f"{p}: model file not found"
            raise ModelError(msg)
        kw.setdefault("name", p.stem)
        return cls(_load_module_file(torch, p, trust_model=trust_model), **kw)

    def input_hint(self) -> str:
        """The first convolution's ``in_channels`` / first linear layer's ``in_features``, in words."""
        found: list[str] = []
        try:
            for _, mod in self.module.named_modules():
                kind = getattr(mod, "original_name", type(mod).__name__)
                if not found and kind.startswith("Conv") and hasattr(mod, "in_channels"):
                    found.append(f"its first layer {kind} takes {mod.in_channels} input channels")
                if kind == "Linear" and hasattr(mod, "in_features"):
                    found.append(f"its first Linear layer takes {mod.in_features} features")
                    break
        except Exception:  # a module without the usual structure: nothing to say
            return ""
        declared = [
            f"{k} {getattr(self.module, k)!r}" for k in ("seq_len", "input_layout") if hasattr(self.module, k)
        ]
        if declared:
            found.append("it declares " + " and ".join(declared))
        return "; ".join(found)

    def kernels(self) -> AbstractContextManager[Any]:
        """The context the module's forward passes run in.

        Wide convolutions take faster paths on a CPU in float32
        (:func:`veff.models.torch_kernels.wide_conv_kernels`); otherwise nothing changes.
        """
        if not self.wide_convs:
            return nullcontext()
        from veff.models.torch_kernels import wide_conv_kernels

        return wide_conv_kernels()

    def _forward(self, x: np.ndarray) -> Any:
        import torch

        xt = torch.from_numpy(x).to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(device_type=self.device.split(":")[0], dtype=self._dtype)
            if self.precision != "float32"
            else nullcontext()
        )
        with torch.inference_mode(), autocast, self.kernels():
            out = self.module(xt)
        return to_numpy(out)

    def input_gradients(self, x: np.ndarray, target: GradientTarget) -> tuple[np.ndarray, Any]:
        """Input gradients by autograd (float32, no autocast; weights get no gradients).

        See :meth:`veff.models.base.Model.input_gradients`.
        """
        import torch

        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        xt.requires_grad_()
        base = xt.transpose(1, 2) if self.layout.channels_first else xt
        params = [p for p in self.module.parameters() if p.requires_grad]
        for p in params:  # gradients of the input only: no weight gradients to compute
            p.requires_grad_(requires_grad=False)
        try:
            with torch.enable_grad():
                out = self.module(base.reshape(self.layout.shape(len(x), x.shape[1])))
                tasks_first = self.declared_output_layout() == "tasks_first"
                y = target_columns(out, target, _TORCH_OPS, tasks_first=tasks_first)
                if not y.requires_grad:
                    raise no_input_gradient(self.name)
                n = y.shape[1]
                grads = [torch.autograd.grad(y[:, t].sum(), xt, retain_graph=t < n - 1)[0] for t in range(n)]
        finally:
            for p in params:
                p.requires_grad_()
        return torch.stack(grads, dim=-1).cpu().numpy(), to_numpy(out)

    def mutant_engine(self, length: int) -> MutantEngine:
        """The module's receptive-field ISM for windows of ``length`` (:class:`.torch_ism.FastISM`).

        Its ``usable`` is False, with a note, when the module cannot be analysed (TorchScript,
        half precision, nothing local after the input, a released module).
        """
        if self.module is None:
            return NoMutantEngine("the module was released (model closed)")
        from veff.models.torch_ism import FastISM

        return FastISM(self, length)

    def activation_floats(self, length: int) -> int | None:
        """Largest output (floats) of any leaf module for one all-N sequence (forward hooks).

        None for TorchScript modules, whose submodules take no hooks.
        """
        sizes = self._leaf_sizes(length)
        return None if sizes is None else sizes[0]

    def flops_per_float(self, length: int) -> float | None:
        """FLOPs of the convolutions and linear layers per float of all leaf outputs (one sequence).

        None for TorchScript modules, and for modules without convolutions or linear layers.
        """
        sizes = self._leaf_sizes(length)
        return None if sizes is None or not sizes[2] else sizes[2] / sizes[1]

    def flops_per_sequence(self, length: int) -> int | None:
        """FLOPs of the convolutions and linear layers for one sequence (None: TorchScript)."""
        sizes = self._leaf_sizes(length)
        return None if sizes is None or not sizes[2] else sizes[2]

    def _leaf_sizes(self, length: int) -> tuple[int, int, int] | None:
        """(largest, total) leaf output floats and convolution + linear FLOPs of one sequence.

        One all-N sequence of ``length`` goes through the module with forward hooks (once per
        length); None when the module takes no hooks or rejects the input.
        """
        import torch

        if length in self._sizes:
            return self._sizes[length]
        if self.module is None or isinstance(self.module, torch.jit.ScriptModule):
            return None
        sizes: list[int] = []
        flops = [0]
        conv, linear = torch.nn.modules.conv._ConvNd, torch.nn.Linear

        def record(mod: Any, _inp: Any, out: Any) -> None:
            outs = out if isinstance(out, (tuple, list)) else (out,)
            sizes.extend(int(o.numel()) for o in outs if isinstance(o, torch.Tensor))
            if isinstance(out, torch.Tensor) and isinstance(mod, conv) and not mod.transposed:
                fan_in = mod.in_channels // mod.groups * int(np.prod(mod.kernel_size))
                flops[0] += 2 * out.numel() * fan_in
            elif isinstance(out, torch.Tensor) and isinstance(mod, linear):
                flops[0] += 2 * out.numel() * mod.in_features

        leaves = [m for m in self.module.modules() if not any(True for _ in m.children())]
        handles = [m.register_forward_hook(record) for m in leaves]
        try:
            self._forward(self.layout.to_model(np.zeros((1, length, 4), np.float32)))
        except Exception:  # the probe of the run reports a model that rejects its input
            return None
        finally:
            for h in handles:
                h.remove()
        found = (max(sizes), sum(sizes), flops[0]) if sizes else None
        self._sizes[length] = found
        return found

    def close(self) -> None:
        """Free the module."""
        self.module = None


def to_numpy(out: Any) -> Any:
    """A module's output (a tensor, or a list/tuple/dict of them) as float32 numpy arrays."""
    if isinstance(out, (tuple, list)):
        return [t.detach().float().cpu().numpy() for t in out]
    if isinstance(out, dict):
        return {k: t.detach().float().cpu().numpy() for k, t in out.items()}
    return out.detach().float().cpu().numpy()


class _TorchOps:
    """The tensor operations of :func:`veff.models._gradients.target_columns` for torch tensors."""

    @staticmethod
    def float32(h: Any) -> Any:
        return h.float()

    @staticmethod
    def flat(h: Any) -> Any:
        return h.reshape(len(h), -1)

    @staticmethod
    def positions_first(h: Any) -> Any:
        return h.transpose(1, 2) if h.dim() == 3 else h

    @staticmethod
    def positions(h: Any, mask: np.ndarray) -> Any:
        import torch

        h = h[:, :, None] if h.dim() == 2 else h
        return h[:, torch.from_numpy(mask).to(h.device)]

    @staticmethod
    def reduce(v: Any, reducer: str) -> Any:
        if reducer == "sum":
            return v.sum(dim=1)
        if reducer == "mean":
            return v.mean(dim=1)
        if reducer == "max":
            return v.amax(dim=1)
        if reducer == "min":
            return v.amin(dim=1)
        return v.gather(1, v.abs().argmax(dim=1, keepdim=True))[:, 0]  # max_abs: signed

    @staticmethod
    def cat(columns: list[Any]) -> Any:
        import torch

        return torch.cat(columns, dim=1)

    @staticmethod
    def take(y: Any, columns: np.ndarray) -> Any:
        import torch

        return y[:, torch.from_numpy(columns).to(y.device)]

    @staticmethod
    def total(y: Any) -> Any:
        return y.sum(dim=1, keepdim=True)


_TORCH_OPS = _TorchOps()


def _load_module_file(torch: Any, p: Path, *, trust_model: bool) -> Any:
    """A TorchScript module, or (``trust_model``) an unpickled full module, from ``p``."""
    import pickle

    try:
        return torch.jit.load(str(p), map_location="cpu")
    except (RuntimeError, ValueError):
        pass
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a pickle of other objects than tensors: a whole module
        if not trust_model:
            msg = (
                f"{p}: a pickled PyTorch module; unpickling it runs code from the file, so veff does "
                "not load it unless you trust its source: pass --trust-model (trust_model=True), or "
                "save it as TorchScript (torch.jit.script(model).save(PATH)) or as a state dict for "
                "FILE.py::Class --weights"
            )
            raise ModelError(msg) from exc
        try:
            obj = torch.load(str(p), map_location="cpu", weights_only=False)
        except Exception as exc2:
            msg = f"{p}: cannot unpickle the PyTorch module: {_first_line(exc2)}"
            raise ModelError(msg) from exc2
    except Exception as exc:
        msg = f"{p}: not a TorchScript file, a PyTorch module or a state dict: {_first_line(exc)}"
        raise ModelError(msg) from exc
    if isinstance(obj, dict):
        msg = (
            f"{p}: holds a state dict, not a module; give the class as FILE.py::ClassName with --weights {p}"
        )
        raise ModelError(msg)
    if not isinstance(obj, torch.nn.Module):
        msg = f"{p}: holds a {type(obj).__name__}, not a PyTorch module"
        raise ModelError(msg)
    return obj


def _accepts(source: Any) -> bool:
    """An ``nn.Module`` (TorchScript modules included) or a ``FILE.py::Class`` spec."""
    if isinstance(source, str):
        return "::" in source
    torch = sys.modules.get("torch")  # an nn.Module exists only once torch is imported
    return torch is not None and isinstance(source, torch.nn.Module)


def _load(source: Any, options: LoadOptions) -> Model:
    place: dict[str, Any] = {"device": options.device, "precision": options.precision}
    if isinstance(source, (str, Path)):
        return TorchModel.from_path(
            source,
            weights=options.weights,
            trust_model=options.trust_model,
            random_weights=options.random_weights,
            **place,
            **options.overrides(),
        )
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
