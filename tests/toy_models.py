"""Deterministic toy models whose predictions can be computed by hand."""

from __future__ import annotations

import numpy as np

from veff.models import CallableModel, InputLayout


class GCModel:
    """Fraction of G/C in the window; (N, L, 4) -> (N, 1). Counts its calls and sequences."""

    input_layout = "L,4"
    output_labels = ("gc",)

    def __init__(self, seq_len: int = 11) -> None:
        self.seq_len = seq_len
        self.calls = 0
        self.seen = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.seen += len(x)
        return x[:, :, 1:3].sum(axis=(1, 2))[:, None] / x.shape[1]


class TwoOutputModel:
    """Outputs [fraction of A, base-weighted position score]; the second is not strand-symmetric."""

    input_layout = "L,4"
    output_labels = ("a_frac", "weighted")

    def __init__(self, seq_len: int = 11) -> None:
        self.seq_len = seq_len

    def __call__(self, x: np.ndarray) -> np.ndarray:
        length = x.shape[1]
        w = np.arange(1, length + 1, dtype=np.float32) / length
        a = x[:, :, 0].mean(axis=1)
        weighted = (x @ np.array([0.1, 0.2, 0.3, 0.4], np.float32)) @ w / length
        return np.stack([a, weighted], axis=1)


def gc_model(seq_len: int = 11) -> CallableModel:
    fn = GCModel(seq_len)
    return CallableModel(fn, name="gc", seq_length=seq_len, layout=InputLayout.parse("L,4"))


def torch_gc_module(seq_len: int = 11):
    """A torch Conv1d module computing GC fraction on (N, 4, L)."""
    import torch

    class TorchGC(torch.nn.Module):
        input_layout = "4,L"
        output_labels = ("gc",)

        def __init__(self) -> None:
            super().__init__()
            self.seq_len = seq_len
            self.conv = torch.nn.Conv1d(4, 1, kernel_size=1, bias=False)
            with torch.no_grad():
                self.conv.weight.copy_(torch.tensor([[[0.0], [1.0], [1.0], [0.0]]]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean(dim=2)

    return TorchGC()
