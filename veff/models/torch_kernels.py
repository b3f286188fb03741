"""CPU kernel choice for PyTorch convolutions: wide 1-D convolutions through the channels-last path.

On a CPU, oneDNN runs a ``Conv1d`` whose kernel is wide (:data:`WIDE_KERNEL` taps or more) over
many input channels (:data:`WIDE_CHANNELS` or more), such as the profile head of a BPNet-style
net (64 channels, kernel 75), 1.5-3x faster when it is given the convolution as a 2-D one of a
channels-last (N, C, 1, L) tensor than in PyTorch's (N, C, L) layout; narrower kernels and
4-channel inputs gain nothing or lose (docs/performance.md, "Framework paths").
:func:`wide_conv_kernels` returns a context in which ``torch.conv1d`` (what ``nn.Conv1d`` and
``F.conv1d`` call) takes that path for such convolutions, and :func:`has_wide_convs` says whether
a module has any. The values are the plain call's up to float32 round-off; the input and output
stay contiguous (N, C, L) tensors, so the rest of the module sees no difference, and the module
itself is not changed. torch is imported inside the functions.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

__all__ = ["WIDE_CHANNELS", "WIDE_KERNEL", "has_wide_convs", "is_wide", "wide_conv_kernels"]

WIDE_KERNEL = 20
"""Kernel taps from which a 1-D convolution runs channels-last (15 and 19 measured slower, 21 faster)."""
WIDE_CHANNELS = 16
"""Input channels (per group) from which it does (4-channel one-hot inputs measured slower)."""


def is_wide(weight: Any) -> bool:
    """Whether a ``Conv1d`` weight (C_out, C_in, K) is one the channels-last path runs faster."""
    return bool(weight.dim() == 3 and weight.shape[1] >= WIDE_CHANNELS and weight.shape[2] >= WIDE_KERNEL)


def has_wide_convs(module: Any) -> bool:
    """Whether ``module`` holds an ungrouped ``nn.Conv1d`` with a wide kernel (:func:`is_wide`)."""
    import torch

    return any(
        isinstance(m, torch.nn.Conv1d) and m.groups == 1 and is_wide(m.weight) for m in module.modules()
    )


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, (tuple, list)) else value


def _channels_last(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """``torch.conv1d(x, weight, ...)`` as a channels-last 2-D convolution; None where not applicable."""
    import torch

    if (
        x.dim() != 3
        or groups != 1
        or x.device.type != "cpu"
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or not is_wide(weight)
    ):
        return None
    pad = padding if isinstance(padding, str) else (0, _one(padding))
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    y = torch.conv2d(x4, weight.unsqueeze(2), bias, (1, _one(stride)), pad, (1, _one(dilation)), 1)
    return y.squeeze(2).contiguous()


def wide_conv_kernels() -> AbstractContextManager[Any]:
    """A context in which wide ``torch.conv1d`` calls on the CPU run channels-last.

    Other calls, and every call outside the context, run as they would.

    Examples
    --------
    >>> import torch
    >>> conv = torch.nn.Conv1d(64, 2, 75, padding=37).eval()
    >>> x = torch.randn(3, 64, 200)
    >>> with torch.inference_mode():
    ...     plain = conv(x)
    ...     with wide_conv_kernels():
    ...         fast = conv(x)
    >>> fast.shape == plain.shape, fast.is_contiguous(), bool(torch.allclose(fast, plain, atol=1e-5))
    (True, True, True)
    """
    import torch
    from torch.overrides import TorchFunctionMode

    conv1d = {torch.conv1d, torch.nn.functional.conv1d}

    class _WideConvs(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
        ) -> Any:
            kwargs = kwargs or {}
            if func in conv1d:
                out = _channels_last(*args, **kwargs)
                if out is not None:
                    return out
            return func(*args, **kwargs)

    return _WideConvs()
