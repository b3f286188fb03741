"""FactorNet-style test dataloader: (12, 6) DNA + two signal channels, its reverse complement, features.

The signals are functions of the genomic coordinate, so a test can recompute them.
"""

import numpy as np
import pysam
from kipoi.data import Dataset
from kipoi.metadata import GenomicRanges


def signals(start, end):
    """Two synthetic signal channels for [start, end), shape (end - start, 2)."""
    pos = np.arange(start, end, dtype=np.float32)
    return np.stack([(pos % 5) / 5.0, (pos % 3) / 3.0], axis=1)


def one_hot(seq):
    x = np.zeros((len(seq), 4), dtype=np.float32)
    for i, base in enumerate(seq):
        if base in "ACGT":
            x[i, "ACGT".index(base)] = 1.0
    return x


class TrackDataset(Dataset):
    def __init__(self, intervals_file, fasta_file):
        with open(intervals_file) as fh:
            self.rows = [line.split() for line in fh if line.strip()]
        self.fasta_file = fasta_file

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        chrom, start, end, name = self.rows[idx][:4]
        start, end = int(start), int(end)
        with pysam.FastaFile(self.fasta_file) as fa:
            seq = fa.fetch(chrom, start, end).upper()
        x = np.concatenate([one_hot(seq), signals(start, end)], axis=1)
        x_rc = np.concatenate([x[::-1, 3::-1], x[::-1, 4:]], axis=1)
        return {
            "inputs": {"seq": x, "seq_rc": x_rc,
                       "meta_features": np.array([idx, 1.0, 0.5], dtype=np.float32)},
            "metadata": {"ranges": GenomicRanges(chrom, start, end, name, "+"),
                         "ranges_rc": GenomicRanges(chrom, start, end, name, "-")},
        }
