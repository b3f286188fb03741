"""A tiny PyTorch network for tests: one Conv1d over (N, 4, L), global max, sigmoid."""

import torch


class TinyConv(torch.nn.Module):
    def __init__(self, n_filters=3, width=5):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, n_filters, width)

    def forward(self, x):
        return torch.sigmoid(self.conv(x).amax(dim=2))


def build():
    torch.manual_seed(0)
    return TinyConv(n_filters=2, width=3)
