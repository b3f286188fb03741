"""Benchmark case: veff's gene-aware SpliceAI scoring against the SpliceAI CLI on the same alleles.

Both tools score the two example VCFs (E1 on GRCh38 chr22, E2 on GRCh37 chr17; 175 ALT alleles,
SNVs, deletions, insertions, multi-allelic records, skips) with the five SpliceAI networks, the
same gene tables and ``-D 50``, one after the other on the same machine. Each is timed end to end
(a separate process: start-up, model loading, reading, scoring, writing) and on a one-record VCF
(start-up and loading alone), so the report gives both the end-to-end ratio and the ratio of the
per-allele rates once loaded. The CLI is looked for as ``spliceai`` in ``$SPLICEAI_VENV/bin``
(default /work/venv-spliceai, a venv with ``setuptools<81``, tensorflow-cpu, spliceai) or on PATH;
without it the case reports veff alone.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["case_spliceai"]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "spliceai"
EXAMPLE = ROOT / "example_data"
SETS = [
    (
        EXAMPLE / "vcf" / "E1_hg38_chr22_32000001-32300000.vcf",
        EXAMPLE / "reference" / "hg38_chr22_32000001-32300000.padded.fa.gz",
        DATA / "genes_E1_grch38_chr22.txt",
    ),
    (
        EXAMPLE / "vcf" / "E2_hg19_chr17_1-40000.vcf",
        EXAMPLE / "reference" / "hg19_chr17_1-40000.fa",
        DATA / "genes_E2_grch37_chr17.txt",
    ),
]

HELDOUT = [
    (
        DATA / "chr2_heldout.vcf",
        EXAMPLE / "reference" / "hg38_chr2_1-2333275.fa.gz",
        DATA / "genes_chr2_grch38.txt",
    )
]


def _cli() -> str | None:
    venv = Path(os.environ.get("SPLICEAI_VENV", "/work/venv-spliceai"))
    found = venv / "bin" / "spliceai"
    return str(found) if found.is_file() else shutil.which("spliceai")


def _alleles(vcf: Path) -> int:
    return sum(
        len(x.split("\t")[4].split(",")) for x in vcf.read_text().splitlines() if not x.startswith("#")
    )


def _first_record(vcf: Path, out: Path) -> Path:
    lines = vcf.read_text().splitlines(keepends=True)
    head = [x for x in lines if x.startswith("#")]
    # a record at a splice site (the example sets' ids say _exon_, the held-out set's _snv)
    body = [x for x in lines if not x.startswith("#") and ("_exon_" in x.split("\t")[2] or "_snv" in x)][:1]
    out.write_text("".join(head + body))
    return out


def _plain(fasta: Path, tmp: Path) -> Path:
    """pyfaidx (the CLI) reads plain FASTA; veff reads the BGZF file as given."""
    if not fasta.name.endswith(".gz"):
        return fasta
    out = tmp / fasta.name.removesuffix(".gz")
    with gzip.open(fasta, "rb") as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def _run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        msg = f"{cmd[0]} failed ({res.returncode}): {res.stderr[-2000:]}"
        raise RuntimeError(msg)
    return time.perf_counter() - t


def _entries(path: Path) -> list[str]:
    opener = gzip.open if path.name.endswith(".gz") else open
    out = []
    with opener(path, "rt") as fh:
        for line in fh:
            if not line.startswith("#"):
                info = dict(
                    kv.split("=", 1) for kv in line.rstrip("\n").split("\t")[7].split(";") if "=" in kv
                )
                out.extend((info.get("SpliceAI") or "-").split(","))
    return out


def case_spliceai(tmp: Path, threads: int | None = None) -> dict[str, float | str]:
    """veff ``--info-style spliceai`` against the SpliceAI CLI, each with its default threads.

    Both use every core by default (TensorFlow's thread pools; veff's SpliceNet workers, one per
    core); ``threads`` passes ``--threads`` to veff instead. The example VCFs (records clustered
    at splice sites, so reference windows are shared) are compared first, then the held-out chr2
    set (keys ``heldout_*``: 36 clusters and a dozen isolated records over 2.3 Mb).
    """
    spec = importlib.util.find_spec("spliceai")
    if spec is None or spec.origin is None:
        return {"skipped": "the spliceai package (its weights) is not installed"}
    models = [str(Path(spec.origin).parent / "models" / f"spliceai{k}.h5") for k in range(1, 6)]
    res = _compare(SETS, tmp / "examples", models, threads)
    held = _compare(HELDOUT, tmp / "heldout", models, threads)
    return {**res, **{f"heldout_{k}": v for k, v in held.items()}}


def _compare(
    sets: list[tuple[Path, Path, Path]], tmp: Path, models: list[str], threads: int | None
) -> dict[str, float | str]:
    tmp.mkdir(parents=True, exist_ok=True)
    cli = _cli()
    n = sum(_alleles(v) for v, _, _ in sets)
    res: dict[str, float | str] = {"alleles": float(n)}

    def veff_cmd(vcf: Path, fasta: Path, genes: Path, out: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "veff",
            "score-variants",
            *models,
            "--vcf",
            str(vcf),
            "--fasta",
            str(fasta),
            "--annotation",
            str(genes),
            "--info-style",
            "spliceai",
            "--splice-distance",
            "50",
            *(["--threads", str(threads)] if threads else []),
            "-o",
            str(out),
            "-q",
        ]

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    veff_all = veff_start = 0.0
    for k, (vcf, fasta, genes) in enumerate(sets):
        veff_all += _run(veff_cmd(vcf, fasta, genes, tmp / f"veff{k}.vcf"), env)
        one = _first_record(vcf, tmp / f"one{k}.vcf")
        veff_start += _run(veff_cmd(one, fasta, genes, tmp / f"veff_one{k}.vcf"), env)
    res["veff_s"] = veff_all
    res["veff_alleles_per_s"] = n / veff_all
    if cli is None:
        res["cli"] = "not installed"
        return res
    cli_all = cli_start = 0.0
    for k, (vcf, fasta, genes) in enumerate(sets):
        plain = _plain(fasta, tmp)
        for src, out in ((vcf, f"cli{k}.vcf"), (tmp / f"one{k}.vcf", f"cli_one{k}.vcf")):
            t = _run(
                [cli, "-I", str(src), "-O", str(tmp / out), "-R", str(plain), "-A", str(genes), "-D", "50"]
            )
            if out.startswith("cli_one"):
                cli_start += t
            else:
                cli_all += t
    res["cli_s"] = cli_all
    res["cli_alleles_per_s"] = n / cli_all
    res["ratio_end_to_end"] = cli_all / veff_all
    loaded_veff, loaded_cli = max(veff_all - veff_start, 1e-9), max(cli_all - cli_start, 1e-9)
    res["ratio_loaded"] = loaded_cli / loaded_veff
    got = [e for k in range(len(sets)) for e in _entries(tmp / f"veff{k}.vcf")]
    want = [e for k in range(len(sets)) for e in _entries(tmp / f"cli{k}.vcf")]
    res["entries_identical"] = f"{sum(a == b for a, b in zip(got, want, strict=False))}/{len(want)}"
    return res
