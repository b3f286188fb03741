"""Small PyTorch networks for the receptive-field ISM tests: one per kind of local layer."""

from __future__ import annotations

import torch
from torch import nn


def _init(net: nn.Module, length: int, seed: int) -> nn.Module:
    """Seeded weights, non-trivial BatchNorm statistics, lazy layers built, eval mode."""
    torch.manual_seed(seed)
    net(
        torch.zeros(1, 4, length)
        if getattr(net, "input_layout", "4,L") == "4,L"
        else torch.zeros(1, length, 4)
    )
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.normal_(m.weight, std=0.3)
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.1)
        if isinstance(m, nn.BatchNorm1d):
            with torch.no_grad():
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    return net.eval()


class AllKinds(nn.Module):
    """Conv, BatchNorm, max pool, dilated 'same' conv with a residual add, strided conv,
    concatenation of two branches, a crop (channels and length), GELU, avg pool, dropout, dense."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 16, 7, padding=3)
        self.b1 = nn.BatchNorm1d(16)
        self.p1 = nn.MaxPool1d(3)
        self.c2 = nn.Conv1d(16, 16, 5, dilation=2, padding="same")
        self.c3 = nn.Conv1d(16, 8, 3, stride=2)
        self.c4 = nn.Conv1d(8, 8, 3, padding=1)
        self.ap = nn.AvgPool1d(2)
        self.drop = nn.Dropout(0.3)
        self.fc = nn.LazyLinear(5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.p1(torch.relu(self.b1(self.c1(x))))
        x = x + torch.relu(self.c2(x))
        x = self.c3(x)
        z = torch.cat([x, self.c4(x)], 1)[:, :12, 1:-1]
        z = self.drop(self.ap(nn.functional.gelu(z) * 0.5))
        return self.fc(z.flatten(1))


class ChannelsLast(nn.Module):
    """Takes (N, L, 4) and transposes it; a profile head and a pooled count head."""

    input_layout = "L,4"

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 9, padding=4)
        self.c2 = nn.Conv1d(8, 8, 3, dilation=4, padding=4)
        self.head = nn.Conv1d(8, 2, 5, padding=2)
        self.count = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.c1(x.transpose(1, 2)))
        h = h + torch.relu(self.c2(h))
        profile = self.head(h)[:, :, 10:-10].transpose(1, 2)  # (N, P, 2)
        return profile, self.count(h.mean(-1))


class GlobalFirst(nn.Module):
    """Mixes the whole sequence right after the input (a mean over positions): nothing to reuse."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, padding=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(-1, keepdim=True)
        return self.fc(torch.relu(self.c1(x)).amax(-1))


class UnknownMiddle(nn.Module):
    """A local prefix, then an operation fast ISM does not know (cumsum): the prefix ends there."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, padding=2)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c1(x))
        h = torch.cumsum(h, -1) / 10.0
        return self.fc(torch.relu(self.c2(h)).flatten(1))


class HookedConv(nn.Module):
    """A Conv1d with a forward hook that adds the mean over positions: not local."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, padding=2)
        self.c1.register_forward_hook(lambda m, i, o: o + o.mean(-1, keepdim=True))
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.c1(x)).flatten(1))


def build(cls: type[nn.Module], length: int, seed: int = 0) -> nn.Module:
    """An initialised network of class ``cls`` for inputs of ``length``."""
    return _init(cls(), length, seed)


class Smooth(nn.Module):
    """Smooth everywhere (tanh, softplus, avg pool), for finite differences: a profile head
    (N, P, 2) and a scalar head (N, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 7, padding=3)
        self.c2 = nn.Conv1d(8, 8, 5, padding=2)
        self.ap = nn.AvgPool1d(2)
        self.head = nn.Conv1d(8, 2, 3, padding=1)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.tanh(self.c1(x))
        h = nn.functional.softplus(self.c2(h)) + h
        profile = self.head(h)[:, :, 20:-20].transpose(1, 2)
        return profile, self.fc(self.ap(h).flatten(1))


class ValidPadding(nn.Module):
    """padding='valid' and 'same' (even kernel) given as strings, a depthwise conv without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, padding="valid")
        self.c2 = nn.Conv1d(8, 8, 4, dilation=3, padding="same", groups=8, bias=False)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c1(x))
        return self.fc(torch.relu(self.c2(h)).flatten(1))


class InPlace(nn.Module):
    """In-place changes of tensors other layers also read, before and after the change."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, padding=2)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1)
        self.c3 = nn.Conv1d(8, 8, 3, padding=2, dilation=2)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.LazyLinear(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        a = self.c2(h)  # reads h before the change
        h.relu_()
        h.mul_(0.5)
        nn.functional.leaky_relu(a, 0.1, inplace=True)
        b = self.act(self.c3(h))  # reads h after it
        return self.fc((a + b + h).flatten(1))


class _TwoConvs(nn.Module):
    """Two convolutions; subclasses combine them in ways fast ISM must refuse."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv1d(4, 8, 5, padding=2)
        self.c2 = nn.Conv1d(8, 8, 3, padding=1)


class InPlaceView(_TwoConvs):
    """Changes part of a tensor through a view: the whole tensor changes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        h[:, :4].relu_()
        return self.c2(h).amax(-1)


class AliasedAdd(_TwoConvs):
    """``h += ...`` changes ``h`` in place, which torch.fx records as ``h + ...``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(x)
        kept = h
        h += self.c2(h)
        return kept.amax(-1)


class BatchStatistics(_TwoConvs):
    """Normalises with the batch's statistics: each output depends on the other sequences."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.c1(x))
        return self.c2(nn.functional.batch_norm(h, None, None, training=True)).mean(-1)


class LastInBatch(_TwoConvs):
    """Adds the batch's last sequence to each: invisible when the probed sequence comes last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c2(self.c1(x))
        return (h + h[-1:]).amax(-1)


class ArgmaxHead(_TwoConvs):
    """Outputs the position of each channel's maximum: float rounding could move it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c2(self.c1(x)).argmax(-1).float()


class VarArgs(_TwoConvs):
    """``forward(*xs)``: torch.fx's one placeholder is the tuple of inputs, not the batch."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.c2(self.c1(xs[0])).amax(-1)
