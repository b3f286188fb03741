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
        self.blank = 0  # all-N rows (padding of a last batch)
        self.shapes: list[int] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.seen += len(x)
        self.blank += int((x.reshape(len(x), -1).sum(axis=1) == 0).sum())
        self.shapes.append(len(x))
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


class ProfileModel:
    """Position-resolved toy: (N, L, 4) -> (N, P, 2) with a centred crop of ``(L - P) // 2``.

    Task 0 is 1 where the input base is G, task 1 is 2 where it is A (so A->G at output j gives
    diff +1 and -2 at j, zero elsewhere). ``heads=True`` returns ``{"profile": ..., "counts": ...}``
    with counts = the track summed over positions, shape (N, 2).
    """

    input_layout = "L,4"

    def __init__(self, seq_len: int = 21, out_len: int = 11, heads: bool = False) -> None:
        self.seq_len = seq_len
        self.out_len = out_len
        self.heads = heads

    def __call__(self, x: np.ndarray) -> np.ndarray | dict[str, np.ndarray]:
        off = (x.shape[1] - self.out_len) // 2
        core = x[:, off : off + self.out_len]
        track = np.stack([core[:, :, 2], 2 * core[:, :, 0]], axis=2).astype(np.float32)
        if self.heads:
            return {"profile": track, "counts": track.sum(axis=1)}
        return track


class BaseTrackModel:
    """Per-position identity: output j = code of input base j + offset (A=1, C=2, G=3, T=4)."""

    input_layout = "L,4"

    def __init__(self, seq_len: int = 21, out_len: int = 21) -> None:
        self.seq_len = seq_len
        self.out_len = out_len

    def __call__(self, x: np.ndarray) -> np.ndarray:
        off = (x.shape[1] - self.out_len) // 2
        core = x[:, off : off + self.out_len]
        return (core @ np.array([1, 2, 3, 4], np.float32))[:, :, None]
