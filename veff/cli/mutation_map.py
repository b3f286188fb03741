"""Command line for mutation maps: ``veff create-mutation-map`` and ``veff plot-mutation-map``.

The commands are plain click commands that :mod:`veff.cli.main` registers on its group.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from veff.cli.options import (
    fail,
    interrupted,
    log_options,
    model_kwargs,
    parse_json_list,
    profile_options,
    setup_logging,
    shared_options,
    split_list,
)
from veff.errors import InputError, VeffError
from veff.writers.targets import check_outputs, writing

__all__ = ["create_mutation_map_cmd", "parse_region", "plot_mutation_map_cmd"]

_REGION = re.compile(r"^(?P<chrom>.+):(?P<start>[\d,_]+)-(?P<end>[\d,_]+)$")
_VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def parse_region(text: str) -> tuple[str, int, int]:
    """Parse ``chrom:start-end`` (1-based, inclusive, as samtools) to 0-based half-open.

    Examples
    --------
    >>> parse_region("chr22:32,068,401-32,068,600")
    ('chr22', 32068400, 32068600)
    """
    m = _REGION.match(text.strip())
    if m is None:
        msg = f"--region: expected chrom:start-end (1-based, inclusive), got {text!r}"
        raise InputError(msg)
    start, end = (int(re.sub(r"[,_]", "", m[k])) for k in ("start", "end"))
    if start < 1 or end < start:
        msg = f"--region: expected 1 <= start <= end, got {text!r}"
        raise InputError(msg)
    return m["chrom"], start - 1, end


def _is_vcf(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(_VCF_SUFFIXES):
        return True
    if name.endswith((".bed", ".bed.gz")):
        return False
    with open(path, "rb") as fh:
        head = fh.read(16)
    return head.startswith((b"##fileformat=VCF", b"\x1f\x8b", b"BCF"))


@click.command("create-mutation-map")
@click.argument("model")
@shared_options("fasta")
@click.option(
    "--regions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="BED of regions to tile, or VCF/BCF of variants (one centred window each).",
)
@click.option("--region", "region", help="One region chrom:start-end (1-based, inclusive).")
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output HDF5 file."
)
@click.option(
    "--scores",
    "scores",
    multiple=True,
    default=("diff",),
    show_default=True,
    help="Scores, comma-separated or repeated.",
)
@shared_options("score_kwargs")
@click.option(
    "--rc/--no-rc", default=None, help="Also predict reverse complements (default: as the model declares)."
)
@shared_options("seq_length")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Sequences per forward call (default: automatic, by device and model; gradient maps: at "
    "most this many; see docs/mutation_map.md).",
)
@click.option(
    "--centering",
    type=click.Choice(["exact", "kipoi"]),
    default="exact",
    show_default=True,
    help="Variant placement for a VCF query, as in score-variants.",
)
@shared_options("model_outputs", "output_labels")
@click.option(
    "--bound-regions",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="BED of the L-bp regions the model is bound to; queries use those overlapping them.",
)
@click.option(
    "--dataloader-args",
    multiple=True,
    help="Arguments of a Kipoi model's own dataloader (JSON, JSON/YAML file or key=value); "
    "an overlap-mode model is bound to the regions it returns.",
)
@click.option(
    "--annotation-vcf",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="VCF whose variants are stored with the windows (for plots; BED/--region queries).",
)
@profile_options
@click.option(
    "--mutate-within",
    type=click.IntRange(min=0),
    metavar="K",
    help="Mutate only positions within K bases of the query region or variants (default: the whole window).",
)
@shared_options("input_layout", "weights", "device")
@click.option(
    "--method",
    type=click.Choice(["auto", "naive", "fast", "saliency", "grad_x_input", "integrated_gradients"]),
    default="auto",
    show_default=True,
    help="ISM (auto: fast receptive-field ISM for PyTorch models where it applies, else naive) "
    "or a gradient map.",
)
@click.option(
    "--gradient-outputs",
    type=click.Choice(["each", "sum"]),
    default="each",
    show_default=True,
    help="Gradient maps: one map per kept output, or one of their sum.",
)
@click.option(
    "--ig-steps",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Integration steps of integrated_gradients.",
)
@log_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def create_mutation_map_cmd(**opts: Any) -> None:
    """Score every single-base change of model-length windows with MODEL; write HDF5.

    Give either --regions (a BED file: windows tile each interval; or a VCF: one window centred
    on each variant) or --region chrom:start-end.
    """
    from veff.mutation_map.compute import MutationMap

    try:
        # -v: the method used and why (fast ISM's prefix, the self-check); -vv: layer by layer
        setup_logging(
            opts["quiet"], verbose=opts["verbose"], level=opts["log_level"], log_file=opts["log_file"]
        )
        if (opts["regions"] is None) == (opts["region"] is None):
            msg = "give exactly one of --regions FILE and --region chrom:start-end"
            raise InputError(msg)
        region = parse_region(opts["region"]) if opts["region"] else None
        check_outputs(
            {"the mutation map (-o)": opts["output"]},
            {
                "the FASTA": opts["fasta"],
                "the regions file": opts["regions"],
                "the annotation VCF": opts["annotation_vcf"],
            },
            files_only=("the mutation map (-o)",),
        )
        score_kwargs = parse_json_list(opts["score_kwargs"], "--score-kwargs") or None
        mm = MutationMap(
            opts["model"],
            opts["fasta"],
            scores=split_list(opts["scores"]),
            score_kwargs=score_kwargs,
            rc=opts["rc"],
            seq_length=opts["seq_length"],
            batch_size=opts["batch_size"],
            centering=opts["centering"],
            model_outputs=split_list(opts["model_outputs"]) or None,
            output_labels=split_list(opts["output_labels"]) or None,
            aggregate=list(opts["aggregate"]) or None,
            output_offset=opts["output_offset"],
            rc_swap_tasks=opts["rc_swap_tasks"],
            mutate_within=opts["mutate_within"],
            bound_regions=opts["bound_regions"],
            dataloader_args=list(opts["dataloader_args"]) or None,
            progress=not opts["quiet"],
            progress_interval=opts["progress_interval"],
            method=opts["method"],
            gradient_outputs=opts["gradient_outputs"],
            ig_steps=opts["ig_steps"],
            model_kwargs=model_kwargs(opts),
        )
        with mm, writing(opts["output"]):
            if region is not None:
                result = mm.query_region(*region, output=opts["output"], variants=opts["annotation_vcf"])
            elif _is_vcf(opts["regions"]):
                result = mm.query_vcf(opts["regions"], output=opts["output"])
            else:
                result = mm.query_bed(opts["regions"], output=opts["output"], variants=opts["annotation_vcf"])
    except (VeffError, click.BadParameter) as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        interrupted(exc)
    if not opts["quiet"]:
        click.echo(
            f"veff: {len(result.entries)} windows x {mm.length} bp, method {result.method}, scores "
            f"{', '.join(result.scores)}, {len(result.labels)} outputs -> {opts['output']}",
            err=True,
        )


@click.command("plot-mutation-map")
@click.argument("mutation_map", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--entry",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Window to plot (0-based index in the file).",
)
@click.option("--seq-input", help="Model input (default: the entry's only one).")
@click.option("--score", help="Score to plot (default: the only one in the file, else diff).")
@click.option("--output-label", help="Model output to plot (default: the only one).")
@click.option(
    "--limit-region-genomic",
    nargs=2,
    type=int,
    metavar="START END",
    help="Zoom to [START, END), 0-based half-open genomic coordinates.",
)
@click.option("--rc-plot", is_flag=True, help="Reverse-complement view.")
@click.option(
    "--bases-per-row",
    type=click.IntRange(min=1),
    help="Wrap long windows (default: one row up to 250 bases, else ~200 per row).",
)
@click.option("--dpi", type=click.IntRange(min=10), default=150, show_default=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Figure file: .png, .pdf or .svg.",
)
def plot_mutation_map_cmd(**opts: Any) -> None:
    """Plot one window of a mutation map (logo, heatmap, query variants)."""
    try:
        if opts["output"].suffix.lower() not in (".png", ".pdf", ".svg"):
            msg = f"{opts['output']}: unsupported figure format; use .png, .pdf or .svg"
            raise InputError(msg)
        check_outputs({"the figure (-o)": opts["output"]}, {"the mutation map": opts["mutation_map"]})
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from veff.mutation_map.plot import plot_mutation_map

        res = plot_mutation_map(
            opts["mutation_map"],
            entry=opts["entry"],
            seq_input=opts["seq_input"],
            score=opts["score"],
            output_label=opts["output_label"],
            limit_region_genomic=opts["limit_region_genomic"],
            rc=opts["rc_plot"],
            bases_per_row=opts["bases_per_row"],
            dpi=opts["dpi"],
            output=opts["output"],
        )
        plt.close(res.figure)
    except VeffError as exc:
        fail(exc)
