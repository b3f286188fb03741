"""Overlap-mode test dataloader: one (8, 4) one-hot sample per BED line (name, strand optional).

Minus-strand lines give the reverse complement, as Kipoi dataloaders do.
"""

import numpy as np
import pysam
from kipoi.data import Dataset
from kipoi.metadata import GenomicRanges

_COMP = str.maketrans("ACGTN", "TGCAN")


def one_hot(seq):
    x = np.zeros((len(seq), 4), dtype=np.float32)
    for i, base in enumerate(seq):
        if base in "ACGT":
            x[i, "ACGT".index(base)] = 1.0
    return x


class BedDataset(Dataset):
    def __init__(self, intervals_file, fasta_file, strip_chr=False):
        with open(intervals_file) as fh:
            self.rows = [line.split() for line in fh if line.strip()]
        self.fasta_file = fasta_file
        self.strip_chr = strip_chr

    def name(self, chrom):
        return chrom[3:] if self.strip_chr and chrom.startswith("chr") else chrom

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        row = self.rows[idx]
        chrom, start, end = row[0], int(row[1]), int(row[2])
        name = row[3] if len(row) > 3 else str(idx)
        strand = row[5] if len(row) > 5 else "."
        with pysam.FastaFile(self.fasta_file) as fa:
            seq = fa.fetch(chrom, start, end).upper()
        if strand == "-":
            seq = seq.translate(_COMP)[::-1]
        return {
            "inputs": one_hot(seq),
            "metadata": {"ranges": GenomicRanges(self.name(chrom), start, end, name, strand)},
        }
