"""Tiny genome, VCF and toy models shared by the mutation-map and plot tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from veff.models import CallableModel, InputLayout

CONTIGS = {
    "chrA": "".join(np.random.default_rng(7).choice(list("ACGT"), 300)),
    "2": "".join(np.random.default_rng(8).choice(list("ACGT"), 120)),
}
# an N run inside chrA (0-based 60..63)
CONTIGS["chrA"] = CONTIGS["chrA"][:60] + "NNNN" + CONTIGS["chrA"][64:]

# SNVs (1-based POS), multi-allelic included, plus an indel and one on an unknown contig
VCF_ROWS = [
    ("chrA", 40, "v_snv", None, "G"),
    ("chrA", 120, "v_multi", None, "A,C,G,T"),
    ("chrA", 121, ".", None, "T"),
    ("chrA", 200, "v_del", "2", "-"),
    ("2", 30, "v_two", None, "C"),
]


def write_genome(folder: Path) -> Path:
    """Write the FASTA; return its path (the index is built on first use)."""
    path = folder / "tiny.fa"
    with open(path, "w") as fh:
        for name, seq in CONTIGS.items():
            fh.write(f">{name}\n")
            for k in range(0, len(seq), 60):
                fh.write(seq[k : k + 60] + "\n")
    return path


def write_vcf(folder: Path) -> Path:
    """Write a VCF whose REF alleles match the FASTA (ALTs equal to REF are dropped)."""
    lines = [
        "##fileformat=VCFv4.2",
        "##contig=<ID=chrA,length=300>",
        "##contig=<ID=2,length=120>",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for chrom, pos, vid, ref_len, alt in VCF_ROWS:
        seq = CONTIGS[chrom]
        if ref_len is None:
            ref = seq[pos - 1]
            alts = ",".join(a for a in alt.split(",") if a != ref) or ("A" if ref != "A" else "C")
        else:
            ref = seq[pos - 1 : pos - 1 + int(ref_len)]
            alts = ref[0]
        lines.append(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alts}\t.\t.\t.")
    path = folder / "tiny.vcf"
    path.write_text("\n".join(lines) + "\n")
    return path


class LinearToy:
    """sigmoid(<x, W_t>) per output t: deterministic, strand-asymmetric, position-dependent."""

    def __init__(self, length: int, n_out: int = 2, seed: int = 0) -> None:
        self.w = np.random.default_rng(seed).normal(size=(length, 4, n_out)).astype(np.float32)
        self.calls: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(np.array(x))
        z = np.einsum("nlc,lct->nt", x.astype(np.float64), self.w.astype(np.float64))
        return (1 / (1 + np.exp(-z))).astype(np.float32)


def toy_model(length: int, n_out: int = 2, seed: int = 0) -> tuple[CallableModel, LinearToy]:
    """Return a veff model wrapping :class:`LinearToy` and the toy (to inspect its calls)."""
    fn = LinearToy(length, n_out, seed)
    labels = tuple(f"out{k}" for k in range(n_out))
    model = CallableModel(
        fn, name="toy", seq_length=length, layout=InputLayout.parse("L,4"), output_labels=labels
    )
    return model, fn
