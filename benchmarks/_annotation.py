"""Case 18: reading a GENCODE-size annotation (``--annotation``) as GTF, gzipped GTF and GFF3.

The files are the shipped GENCODE v25 slice (272 lines) replicated with renamed gene and
transcript IDs and gene names over contigs chr0..chr23: 10,000 copies are 2.7 M lines, 1.2 M of
them exons, about the size of a full GENCODE GTF (3.4 M lines).
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

from _common import ROOT, Timer

from veff.io.annotation import read_annotation

SLICE = ROOT / "example_data" / "annotation" / "gencode.v25.chr22_32000001-32300000.gtf"
_RENAME = re.compile(r'((?:gene_id|transcript_id|gene_name) "[^"]*)"')
_GTF_ATTR = re.compile(r'(\S+) "?([^";]*)"?;')
_GFF3_TYPE = {"transcript": "mRNA"}
# GENCODE >= 34 tags one transcript per gene; v25 has no such tags, so three are added
_MANE = ("ENST00000266088.8", "ENST00000248983.8", "ENST00000266086.5")


def make_gencode_like(dst: Path, copies: int) -> Path:
    """Write ``copies`` renamed copies of the GENCODE slice as one GTF (feature lines only)."""
    lines = [ln for ln in SLICE.read_text().splitlines(keepends=True) if not ln.startswith("#")]
    lines = [
        ln[:-1] + ' tag "MANE_Select"; tag "Ensembl_canonical";\n' if any(t in ln for t in _MANE) else ln
        for ln in lines
    ]
    with dst.open("w") as out:
        out.write("##description: GENCODE-like test file\n")
        for k in range(copies):
            contig = f"chr{k % 24}"
            suffix = rf'\1_{k}"'
            for ln in lines:
                out.write(contig + _RENAME.sub(suffix, ln[ln.index("\t") :]))
    return dst


def gtf_to_gff3(src: Path, dst: Path) -> Path:
    """The same features as GFF3, laid out as GENCODE's: ``ID``/``Parent`` first, then the GTF
    attributes as ``key=value`` (repeated ones such as ``tag`` joined by commas)."""
    with src.open() as fh, dst.open("w") as out:
        out.write("##gff-version 3\n")
        for ln in fh:
            if ln.startswith("#"):
                continue
            cols = ln.rstrip("\n").split("\t")
            attrs: dict[str, list[str]] = {}
            for key, value in _GTF_ATTR.findall(cols[8]):
                attrs.setdefault(key, []).append(value)
            if cols[2] == "gene":
                own = f"ID={attrs['gene_id'][0]};Name={attrs['gene_name'][0]}"
            elif cols[2] == "transcript":
                own = f"ID={attrs['transcript_id'][0]};Parent={attrs['gene_id'][0]}"
            else:
                own = f"ID={cols[2]}:{cols[3]};Parent={attrs['transcript_id'][0]}"
            rest = ";".join(f"{key}={','.join(values)}" for key, values in attrs.items())
            cols[2] = _GFF3_TYPE.get(cols[2], cols[2])
            cols[8] = f"{own};{rest}"
            out.write("\t".join(cols) + "\n")
    return dst


def case_annotation(tmp: Path, copies: int, rounds: int) -> dict[str, float | int]:
    """Lines/s of ``read_annotation`` on a GENCODE-like GTF, its gzipped copy and a GFF3."""
    gtf = make_gencode_like(tmp / "gencode_like.gtf", copies)
    gz = tmp / "gencode_like.gtf.gz"
    with gzip.open(gz, "wb", compresslevel=6) as fh:
        fh.write(gtf.read_bytes())
    gff3 = gtf_to_gff3(gtf, tmp / "gencode_like.gff3")
    with gtf.open("rb") as fh:
        n_lines = sum(1 for _ in fh)
    result: dict[str, float | int] = {"lines": n_lines}
    for label, path in (("gtf", gtf), ("gtf_gz", gz), ("gff3", gff3)):
        best = float("inf")
        for _ in range(rounds):
            with Timer() as t:
                units = len(read_annotation(path))
            best = min(best, t.seconds)
        result[f"{label}_s"] = best
        result[f"{label}_lines_per_s"] = n_lines / best
        result[f"{label}_transcripts"] = units
    return result
