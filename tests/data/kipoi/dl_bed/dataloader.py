"""Bed-input test dataloader: returns the BED's samples in reverse order, with region features.

``dist`` is ``[start % 7, scale, 1]`` so tests can check that the features travel with their sample.
"""

import numpy as np
import pysam
from kipoi.data import Dataset


def one_hot(seq):
    codes = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
    return (codes[:, None] == np.frombuffer(b"ACGT", dtype=np.uint8)).astype(np.float32)


class FeatureDataset(Dataset):
    def __init__(self, intervals_file, fasta_file, scale=1.0):
        with open(intervals_file) as fh:
            self.rows = [line.split() for line in fh if line.strip()][::-1]
        self.fasta = pysam.FastaFile(fasta_file)
        self.scale = float(scale)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        chrom, start, end, name = self.rows[idx][:4]
        start, end = int(start), int(end)
        seq = self.fasta.fetch(chrom, max(start, 0), end).upper()
        seq = "N" * (end - start - len(seq)) + seq if start < 0 else seq
        return {
            "inputs": {
                "seq": one_hot(seq),
                "dist": np.array([start % 7, self.scale, 1.0], dtype=np.float32),
            },
            "metadata": {"ranges": {"chr": chrom, "start": start, "end": end, "id": name, "strand": "*"}},
        }
