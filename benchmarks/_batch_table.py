"""Case 15: the table of automatic batch sizes (docs/performance.md, "Batch size").

For 101 bp, 1 kb and 10 kb windows, one conv net per length (conv 4->C k=9, ReLU, max pool 4,
conv C->C k=9, ReLU, global max pool, linear to 16 sigmoid outputs; C = 32, 128 and 128) in
PyTorch and in Keras: the bare forward rate at batch sizes 4..4096 on random one-hot input, the
fastest of them, veff's automatic choice, and the rate at that choice relative to the fastest.
The sizes alternate within each of ``rounds`` rounds and the best round of each size is kept (one
timing per size swings by 2x on a shared machine).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import veff
from veff.engine.batching import model_batch_size

SIZES = (4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
NETS = ((101, 32), (1000, 128), (10_000, 128))
SEQUENCES = 4096  # sequences timed per batch size (fewer for 10 kb windows)


def _torch_net(length: int, channels: int) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        seq_len = length
        input_layout = "4,L"

        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv1d(4, channels, 9),
                nn.ReLU(),
                nn.MaxPool1d(4),
                nn.Conv1d(channels, channels, 9),
                nn.ReLU(),
            )
            self.head = nn.Linear(channels, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.head(self.body(x).amax(dim=2)))

    return Net().eval()


def _keras_net(length: int, channels: int) -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as veff's Keras adapter sets them
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((length, 4))
    x = keras.layers.Conv1D(channels, 9, activation="relu")(inp)
    x = keras.layers.MaxPooling1D(4)(x)
    x = keras.layers.Conv1D(channels, 9, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(inp, keras.layers.Dense(16, activation="sigmoid")(x), name=f"net{length}")


def _rate(model: veff.Model, length: int, batch: int, sequences: int = SEQUENCES) -> float:
    n = max(batch, min(sequences, sequences * 1000 // length))
    rng = np.random.default_rng(0)
    x = model.layout.to_model(np.eye(4, dtype=np.float32)[rng.integers(0, 4, (batch, length))])
    model._forward(x)  # warm-up (and Keras' trace for this shape)
    t0 = time.perf_counter()
    for _ in range(max(1, n // batch)):
        model._forward(x)
    return max(1, n // batch) * batch / (time.perf_counter() - t0)


def case_batch_table(rounds: int = 1, sequences: int = SEQUENCES) -> dict[str, str | float]:
    """One row per framework and window length: sequences/s by batch size, and veff's choice."""
    out: dict[str, str | float] = {}
    for framework, build in (("torch", _torch_net), ("keras", _keras_net)):
        for length, channels in NETS:
            model = veff.load_model(build(length, channels))
            auto = model_batch_size(model, length)
            sizes = sorted({b for b in SIZES if b * length <= 2**22 or b <= 16} | {auto})
            rates = dict.fromkeys(sizes, 0.0)
            for _ in range(rounds):
                for b in sizes:
                    rates[b] = max(rates[b], _rate(model, length, b, sequences))
            best = max(rates, key=rates.__getitem__)
            auto_rate = rates[auto]
            key = f"{framework}_{length}"
            out[key] = " ".join(f"{b}:{r:.0f}" for b, r in rates.items())
            out[f"{key}_fastest"] = best
            out[f"{key}_auto"] = auto
            out[f"{key}_auto_vs_fastest"] = auto_rate / rates[best]
    return out
