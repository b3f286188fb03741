"""Shared pieces of the benchmarks: synthetic VCFs on the shipped reference, and the models."""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FASTA = ROOT / "example_data" / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
CHROM = "chr22"
START, END = 32_000_100, 32_299_900  # 1-based range with real sequence


def make_vcf(path: Path, n: int, *, multiallelic: bool = False, seed: int = 0) -> Path:
    """Write ``n`` SNV records with REF from the FASTA (sorted), optionally all with 3 ALTs."""
    import pysam

    fa = pysam.FastaFile(str(FASTA))
    seq = fa.fetch(CHROM, START - 1, END).upper()
    rng = np.random.default_rng(seed)
    pos = np.sort(rng.integers(0, len(seq), n))
    with open(path, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        fh.write(f"##contig=<ID={CHROM},length=32300000>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        for k, p in enumerate(pos.tolist()):
            ref = seq[p]
            if ref not in "ACGT":
                ref = "A"
            alts = [b for b in "ACGT" if b != ref]
            alt = ",".join(alts) if multiallelic else alts[k % 3]
            fh.write(f"{CHROM}\t{START + p}\tv{k}\t{ref}\t{alt}\t.\tPASS\t.\n")
    return path


def deepsea_module(seed: int = 0):
    """DeepSEA architecture: conv 320/480/960 (k=8), pools of 4, dense 925, 919 sigmoid outputs."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class DeepSEA(nn.Module):
        seq_len = 1000
        input_layout = "4,L"

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Sequential(
                nn.Conv1d(4, 320, 8),
                nn.ReLU(),
                nn.MaxPool1d(4, 4),
                nn.Dropout(0.2),
                nn.Conv1d(320, 480, 8),
                nn.ReLU(),
                nn.MaxPool1d(4, 4),
                nn.Dropout(0.2),
                nn.Conv1d(480, 960, 8),
                nn.ReLU(),
                nn.Dropout(0.5),
            )
            self.head = nn.Sequential(nn.Linear(960 * 53, 925), nn.ReLU(), nn.Linear(925, 919), nn.Sigmoid())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.conv(x).flatten(1))

    return DeepSEA().eval()


def tiny_module(seed: int = 0):
    """Tiny 101-bp CNN: conv 4->8 (k=9), linear to 2 sigmoid outputs."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    class Tiny(nn.Module):
        seq_len = 101
        input_layout = "4,L"

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(4, 8, 9)
            self.fc = nn.Linear(8 * 93, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.fc(torch.relu(self.conv(x)).flatten(1)))

    return Tiny().eval()


def keras_deepsea(seed: int = 0):
    """The DeepSEA architecture in Keras (channels last)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((1000, 4))
    x = inp
    for filters, pool in ((320, True), (480, True), (960, False)):
        x = keras.layers.Conv1D(filters, 8, activation="relu")(x)
        if pool:
            x = keras.layers.MaxPooling1D(4, 4)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(925, activation="relu")(x)
    out = keras.layers.Dense(919, activation="sigmoid")(x)
    return keras.Model(inp, out, name="keras_deepsea")


def keras_tiny(seed: int = 0):
    """The tiny 101-bp CNN in Keras: conv 4->8 (k=9), dense to 2 sigmoid outputs."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((101, 4))
    x = keras.layers.Flatten()(keras.layers.Conv1D(8, 9, activation="relu")(inp))
    return keras.Model(inp, keras.layers.Dense(2, activation="sigmoid")(x), name="keras_tiny")


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
