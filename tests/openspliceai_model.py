"""A seeded PyTorch splice model with OpenSpliceAI's input/output contract (no trained weights exist here).

OpenSpliceAI's models take one-hot ``(N, 4, L)`` and return ``(N, 3, L - flanking_size)``
softmax probabilities (neither, acceptor, donor): residual units of batch norm, ReLU and dilated
convolutions, skip connections summed, the flanks cropped. This is the 80-nt flavour (flank 40 per
side): four residual units of kernel 11, dilation 1. Weights are random (seeded), so scores are
not biology; they exercise veff's generic splice path (windows, strands, crops, layouts).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OpenSpliceAI80"]


class _Residual(nn.Module):
    def __init__(self, channels: int, width: int, dilation: int) -> None:
        super().__init__()
        pad = (width - 1) // 2 * dilation
        self.body = nn.Sequential(
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, width, dilation=dilation, padding=pad),
            nn.BatchNorm1d(channels),
            nn.ReLU(),
            nn.Conv1d(channels, channels, width, dilation=dilation, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class OpenSpliceAI80(nn.Module):
    """OpenSpliceAI-80nt-shaped network with seeded random weights.

    Parameters
    ----------
    seed
        Seed of the weights (different seeds: different ensemble members).
    """

    input_layout = "4,L"
    flanking_size = 80

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        channels = 16
        self.initial = nn.Conv1d(4, channels, 1)
        self.skip0 = nn.Conv1d(channels, channels, 1)
        self.units = nn.ModuleList([_Residual(channels, 11, 1) for _ in range(4)])
        self.skip1 = nn.Conv1d(channels, channels, 1)
        self.final = nn.Conv1d(channels, 3, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            for m in self.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                    m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        skip = self.skip0(x)
        for unit in self.units:
            x = unit(x)
        skip = skip + self.skip1(x)
        half = self.flanking_size // 2
        return torch.softmax(self.final(skip[:, :, half:-half]), dim=1)
