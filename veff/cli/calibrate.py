"""``veff calibrate``: score a background and write a calibration file (a shell over :func:`veff.calibrate`).

The scoring options are those of ``score-variants`` (the same click parameters), so a calibration
is made with exactly the options a later ``score-variants --calibration`` run checks.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import click

from veff.cli.options import fail, scoring_kwargs, setup_logging, split_list
from veff.cli.score import score_variants_cmd
from veff.errors import VeffError

__all__ = ["calibrate_cmd"]

# score-variants parameters that mean the same here
_SHARED = (
    "fasta",
    "scores",
    "score_kwargs",
    "rc",
    "seq_length",
    "batch_size",
    "threads",
    "output_labels",
    "centering",
    "max_indel_length",
    "aggregate",
    "output_offset",
    "output_layout",
    "rc_swap_tasks",
    "input_layout",
    "weights",
    "random_weights",
    "trust_model",
    "device",
    "precision",
)


@click.command("calibrate")
@click.argument("model")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Calibration file to write (HDF5, e.g. model.calib.h5).",
)
@click.option(
    "--vcf",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Background variants (e.g. common variants); every scored ALT counts once.",
)
@click.option(
    "--random-snvs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Background of N random SNVs drawn from the FASTA's A/C/G/T bases (ALT uniform among the others).",
)
@click.option(
    "-r",
    "--regions",
    metavar="CHR:START-END[,...]",
    help="The background is what lies in these regions (1-based, inclusive; CHR, CHR:POS, "
    "CHR:START-), as score-variants -r: the --vcf records overlapping them, or --random-snvs drawn "
    "only inside them.",
)
@click.option(
    "-R",
    "--regions-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The same from a file: BED (.bed, .bed.gz) or CHROM POS / CHROM START END (1-based), "
    "as score-variants -R.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random-snvs.")
@click.option(
    "--n-quantiles",
    type=click.IntRange(min=2),
    default=10_001,
    show_default=True,
    help="Points of each quantile grid (10001: percentiles to 1e-4 of the range).",
)
@click.option(
    "--model-outputs",
    multiple=True,
    metavar="LABELS",
    help="The outputs (labels or 0-based indices) that the VCFs of the later runs carry (their "
    "--model-outputs): each background ALT's largest |score| is taken over them, for the percentile "
    "of the numeric tags (<TAG>_VALUE_PCTL); default all. Every output is calibrated either way.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def calibrate_cmd(**opts: Any) -> None:
    """Score a background with MODEL and write the quantiles of its scores.

    Give the same scoring options as the score-variants runs that will use it
    (score-variants --calibration FILE refuses a calibration made with other options or another
    model file).
    """
    setup_logging(opts["quiet"])
    from veff.calibrate import calibrate

    try:
        cal = calibrate(
            opts["model"],
            opts["fasta"],
            opts["output"],
            vcf=opts["vcf"],
            random_snvs=opts["random_snvs"],
            regions=opts["regions"],
            regions_file=opts["regions_file"],
            seed=opts["seed"],
            n_quantiles=opts["n_quantiles"],
            model_outputs=split_list(opts["model_outputs"]) or None,
            scores=split_list(opts["scores"]) or None,
            **scoring_kwargs(opts),
            progress=not opts["quiet"],
        )
    except VeffError as exc:
        fail(exc)
    except KeyboardInterrupt:
        click.echo("veff: interrupted; no calibration written", err=True)
        sys.exit(130)
    if not opts["quiet"]:
        click.echo(f"veff: {opts['output']}: {cal.background}, {len(cal.scores)} score(s)", err=True)


calibrate_cmd.params[-1:-1] = [copy.copy(p) for p in score_variants_cmd.params if p.name in _SHARED]
for _p in calibrate_cmd.params:  # calibrate runs in one process: no --workers to mention
    if _p.name == "threads" and isinstance(_p, click.Option):
        _p.help = "CPU threads of the model's framework (default: all cores; one for a small PyTorch model)."
