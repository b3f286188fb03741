"""Shared test helpers: paths of the example data, a small test genome, and FASTA/VCF writers.

Tests import these (``from helpers import write_vcf``); conftest.py holds only fixtures and hooks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = ROOT / "example_data"
HG38 = EXAMPLE / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz"
HG19 = EXAMPLE / "reference" / "hg19_chr17_1-40000.fa"
E1 = EXAMPLE / "vcf" / "E1_hg38_chr22_32000001-32300000.vcf"
E2 = EXAMPLE / "vcf" / "E2_hg19_chr17_1-40000.vcf"
DONOR_H5 = EXAMPLE / "models" / "mmsplice_donor" / "Donor.h5"

# A small genome: chr1 (600 bp, random, with a soft-masked stretch), 2 (300 bp, no chr prefix),
# chrM (50 bp). Tests write it into tmp folders with write_fasta().
_rng = np.random.default_rng(7)
CHR1 = "".join(_rng.choice(list("ACGT"), 600))
CHR1 = CHR1[:200] + CHR1[200:230].lower() + CHR1[230:]
CHR2 = "".join(_rng.choice(list("ACGT"), 300))
# homopolymer and dinucleotide repeats at known places in chr2
CHR2 = CHR2[:100] + "GAAAAAAT" + CHR2[108:150] + "GCACACACAT" + CHR2[160:]
CHRM = "".join(_rng.choice(list("ACGT"), 50))
GENOME = {"chr1": CHR1, "2": CHR2, "chrM": CHRM}


def write_fasta(path: Path, contigs: dict[str, str] | None = None, width: int = 60) -> Path:
    contigs = contigs or GENOME
    with open(path, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
    return path


VCF_HEADER = """##fileformat=VCFv4.2
##contig=<ID=chr1,length=600>
##contig=<ID=2,length=300>
##contig=<ID=chrM,length=50>
##contig=<ID=chrUn,length=1000>
##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##FILTER=<ID=q10,Description="Quality below 10">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""


def write_vcf(path: Path, rows: list[tuple], header: str = VCF_HEADER) -> Path:
    """rows: (chrom, pos, id, ref, alt[, info])"""
    with open(path, "w") as fh:
        fh.write(header)
        for row in rows:
            chrom, pos, vid, ref, alt = row[:5]
            info = row[5] if len(row) > 5 else "DP=10"
            fh.write(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t50\tPASS\t{info}\tGT\t0/1\n")
    return path


def base(chrom: str, pos: int) -> str:
    """Reference base at 1-based pos of the test genome (upper case)."""
    return GENOME[chrom][pos - 1].upper()


def other(b: str) -> str:
    return {"A": "C", "C": "G", "G": "T", "T": "A"}[b]
