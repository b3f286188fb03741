"""Small convolutional splice-donor classifier.

The model scores a 101 bp transcript-strand sequence window whose centre base
(index 50) is the first intron base, i.e. the ``G`` of the canonical ``GT``
donor dinucleotide, and returns the probability that the window is an
annotated splice donor site.

Input is a float32 one-hot tensor of shape ``(N, 4, 101)`` with channels in
``A, C, G, T`` order (``N`` bases are all-zero columns). Output is a float32
tensor of shape ``(N, 1)`` holding sigmoid probabilities.

Only ``torch`` is required; the module is TorchScript-compatible.
"""

from __future__ import annotations

import torch
from torch import nn


class DonorCNN(nn.Module):
    """Position-aware CNN that scores a window centred on a candidate donor.

    Architecture: ``Conv1d(4, 16, k=9) -> ReLU -> Conv1d(16, 16, k=9) -> ReLU
    -> MaxPool1d(5) -> Flatten -> Dropout -> Linear(16 * 17, 1) -> Sigmoid``.
    Both convolutions are unpadded, so the 101 bp input yields 85 positions,
    pooled to 17 bins. The final linear layer sees every bin separately, so the
    model knows *where* a motif occurs relative to the candidate ``GT``
    (unlike a global pooling head).

    Attributes
    ----------
    seq_len : int
        Required input length (101 bp).
    output_labels : tuple of str
        Names of the output columns (``("donor",)``).
    input_layout : str
        Input layout: ``"4,L"`` means ``(N, 4, L)`` one-hot, channels A, C, G, T.
    """

    # Plain (unannotated) class attributes: TorchScript infers their types from
    # the values when they are mirrored on the instance in ``__init__``.
    seq_len = 101
    output_labels = ("donor",)
    input_layout = "4,L"

    def __init__(
        self, n_filters: int = 16, kernel_size: int = 9, pool: int = 5, dropout: float = 0.5
    ) -> None:
        """Build the network.

        Parameters
        ----------
        n_filters : int, optional
            Channels of both convolutional layers.
        kernel_size : int, optional
            Width of both (unpadded) convolution kernels.
        pool : int, optional
            Kernel and stride of the max-pooling layer.
        dropout : float, optional
            Dropout probability before the linear head (inactive in eval mode).
        """
        super().__init__()
        # Mirror the class attributes on the instance so torch.jit.script keeps
        # them on the exported TorchScript module as well.
        self.seq_len = type(self).seq_len
        self.output_labels = type(self).output_labels
        self.input_layout = type(self).input_layout
        conv_len = self.seq_len - 2 * (kernel_size - 1)
        n_bins = conv_len // pool
        self.conv1 = nn.Conv1d(4, n_filters, kernel_size)
        self.conv2 = nn.Conv1d(n_filters, n_filters, kernel_size)
        self.pool = nn.MaxPool1d(pool)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n_filters * n_bins, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Return pre-sigmoid scores.

        Parameters
        ----------
        x : torch.Tensor
            One-hot input of shape ``(N, 4, seq_len)``.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(N, 1)``.
        """
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        h = self.pool(h)
        h = torch.flatten(h, 1)
        return self.fc(self.dropout(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return donor probabilities.

        Parameters
        ----------
        x : torch.Tensor
            One-hot input of shape ``(N, 4, seq_len)``, float32.

        Returns
        -------
        torch.Tensor
            Sigmoid probabilities of shape ``(N, 1)``.
        """
        return torch.sigmoid(self.logits(x))
