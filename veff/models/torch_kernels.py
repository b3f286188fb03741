"""CPU kernel choice for PyTorch convolutions: wide 1-D convolutions by faster paths than oneDNN's.

On a CPU, oneDNN runs a ``Conv1d`` whose kernel is wide (:data:`WIDE_KERNEL` taps or more) over
many input channels (:data:`WIDE_CHANNELS` or more), such as the profile head of a BPNet-style
net (64 channels, kernel 75, 2 outputs), far below its usual speed in PyTorch's (N, C, L) layout;
narrower kernels and 4-channel inputs run well (docs/performance.md, "Framework paths"). Two
faster paths, chosen by the layer's shape alone:

* few outputs per tap (``C_out * K`` up to :data:`GEMM_TAPS`, stride and dilation 1): one matrix
  product of every tap's weights with the input, (K * C_out, C) @ (C, L), then the K shifted
  rows summed (:func:`_gemm_taps`; 7-13x oneDNN's time for the BPNet head);
* otherwise the same convolution as a 2-D one of a channels-last (N, C, 1, L) tensor (1.5-3x).

:func:`wide_conv_kernels` returns a context in which ``torch.conv1d`` (what ``nn.Conv1d`` and
``F.conv1d`` call) takes them, and :func:`has_wide_convs` says whether a module has such a layer.
The values are the plain call's up to float32 round-off (the sums run in another order); input
and output stay contiguous (N, C, L) tensors, so the rest of the module sees no difference, and
the module itself is not changed. torch is imported inside the functions.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["GEMM_TAPS", "WIDE_CHANNELS", "WIDE_KERNEL", "has_wide_convs", "is_wide", "wide_conv_kernels"]

WIDE_KERNEL = 20
"""Kernel taps from which a 1-D convolution takes a faster path (15 and 19 measured slower, 21 faster)."""
WIDE_CHANNELS = 16
"""Input channels (per group) from which it does (4-channel one-hot inputs measured slower)."""
GEMM_TAPS = 320
"""Largest ``C_out * K`` run as one matrix product and shifted sums (16 x 75 measured slower)."""
GEMM_TAPS_FLOATS = 2**22
"""Floats of the per-tap products held at once (the batch is cut to fit: 16 MB, in the caches)."""


def is_wide(weight: Any) -> bool:
    """Whether a ``Conv1d`` weight (C_out, C_in, K) is one the faster paths take."""
    return bool(weight.dim() == 3 and weight.shape[1] >= WIDE_CHANNELS and weight.shape[2] >= WIDE_KERNEL)


def has_wide_convs(module: Any) -> bool:
    """Whether ``module`` holds an ungrouped ``nn.Conv1d`` with a wide kernel (:func:`is_wide`)."""
    import torch

    lazy = torch.nn.parameter.UninitializedParameter  # a LazyConv1d before its first call: no shape yet
    return any(
        isinstance(m, torch.nn.Conv1d)
        and m.groups == 1
        and not isinstance(m.weight, lazy)
        and is_wide(m.weight)
        for m in module.modules()
    )


def _one(value: Any) -> Any:
    return value[0] if isinstance(value, (tuple, list)) else value


def _padding(padding: Any, kernel: int) -> tuple[int, int] | None:
    """(left, right) zero padding of a stride-1, dilation-1 convolution; None for other forms."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2
    value = _one(padding)
    return (value, value) if isinstance(value, int) else None


def _gemm_taps(x: Any, weight: Any, bias: Any, left: int, right: int) -> Any:
    """A 1-D convolution (stride and dilation 1) as one matrix product and K shifted sums.

    Parameters
    ----------
    x
        Input, shape (N, C, L), float32.
    weight
        Shape (C_out, C, K).
    bias
        Shape (C_out,), or None.
    left, right
        Zero padding on each side.

    Returns
    -------
    torch.Tensor
        Shape (N, C_out, L + left + right - K + 1), contiguous.
    """
    import torch

    c_out, c_in, k = weight.shape
    n, _, length = x.shape
    width = length + left + right - k + 1
    taps = weight.permute(2, 0, 1).reshape(k * c_out, c_in)  # row i * C_out + o: tap i of output o
    if bias is None:
        y = x.new_zeros((n, c_out, width))
    else:
        y = bias.view(1, c_out, 1).expand(n, c_out, width).contiguous()
    step = max(1, GEMM_TAPS_FLOATS // (k * c_out * length))
    for lo in range(0, n, step):
        z = torch.matmul(taps, x[lo : lo + step]).view(-1, k, c_out, length)
        part = y[lo : lo + step]
        for i in range(k):  # output l reads input l + i - left
            a, b = max(0, left - i), min(width, length + left - i)
            if b > a:
                part[:, :, a:b] += z[:, i, :, a + i - left : b + i - left]
    return y


def _wide_conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Any:
    """``torch.conv1d(x, weight, ...)`` by the faster path for its shape; None where neither applies."""
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
    c_out, _, k = weight.shape
    pads = _padding(padding, k)
    if pads is not None and _one(stride) == 1 and _one(dilation) == 1 and c_out * k <= GEMM_TAPS:
        return _gemm_taps(x, weight, bias, *pads)
    pad = padding if isinstance(padding, str) else (0, _one(padding))
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    y = torch.conv2d(x4, weight.unsqueeze(2), bias, (1, _one(stride)), pad, (1, _one(dilation)), 1)
    return y.squeeze(2).contiguous()


def wide_conv_kernels() -> AbstractContextManager[Any]:
    """A context in which wide ``torch.conv1d`` calls on the CPU take the faster paths.

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
    return _mode_class()()


@functools.cache
def _mode_class() -> Any:
    """The ``TorchFunctionMode`` that reroutes wide ``torch.conv1d`` calls to :func:`_wide_conv`.

    Made once, on first use (torch is imported lazily), not on every forward pass.
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
                out = _wide_conv(*args, **kwargs)
                if out is not None:
                    return out
            return func(*args, **kwargs)

    return _WideConvs
