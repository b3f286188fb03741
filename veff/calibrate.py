"""``calibrate``: score a background with a model and write its calibration file.

The background is a VCF (for example a population's common variants) or ``random_snvs`` SNVs
drawn from the reference (:mod:`veff.variants.background`), written to a temporary VCF and scored
by :func:`veff.score_variants` with the options given here, which the file records; a run with
``calibration=`` checks them (see :mod:`veff.scoring.calibration`, docs/scores.md).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from veff.engine.outputs import select_columns
from veff.errors import InputError
from veff.io.bed import read_regions
from veff.io.fasta import Fasta
from veff.pipeline import execute
from veff.run.options import RunOptions
from veff.scoring.calibration import DEFAULT_QUANTILES, Calibration, build_calibration
from veff.scoring.tracks import Aggregation
from veff.variants.background import RandomSnv
from veff.variants.background import random_snvs as draw_snvs
from veff.variants.regions import Centering
from veff.writers.calibration import write_calibration

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["calibrate"]


def calibrate(
    model: Any,
    fasta: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    vcf: str | os.PathLike[str] | None = None,
    random_snvs: int | None = None,
    regions: str | os.PathLike[str] | None = None,
    seed: int = 0,
    n_quantiles: int = DEFAULT_QUANTILES,
    scores: Sequence[str | Callable[..., Any]] | None = None,
    score_kwargs: Sequence[dict[str, Any]] | None = None,
    rc: bool | None = None,
    seq_length: int | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
    output_labels: Sequence[str] | None = None,
    model_outputs: Sequence[str | int] | None = None,
    aggregate: str | Sequence[str] | Aggregation | None = None,
    output_offset: int | None = None,
    rc_swap_tasks: str | Sequence[Sequence[str | int]] | None = None,
    centering: Centering | None = None,
    max_indel_length: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
) -> Calibration:
    """Score a background and write the calibration file ``output``.

    Parameters
    ----------
    model
        A path or model object, as for :func:`veff.score_variants`.
    fasta
        Reference FASTA.
    output
        The calibration file to write (``.calib.h5`` by convention; HDF5, see
        :mod:`veff.writers.calibration`).
    vcf
        Background variants (every scored ALT counts once), or None with ``random_snvs``.
    random_snvs
        Draw this many random SNVs from ``fasta`` instead (uniform over its A/C/G/T bases).
    regions
        BED file: draw the random SNVs only inside its intervals.
    seed
        Seed of the random SNVs.
    n_quantiles
        Points of the quantile grids (10,001: percentiles to 1e-4 of the range).
    scores, score_kwargs, rc, seq_length, batch_size, threads, output_labels, aggregate
        As for :func:`veff.score_variants`.
    model_outputs
        The outputs (labels or 0-based indices) that the VCFs of the runs using the calibration
        carry (their ``model_outputs``): each background ALT's largest ``|score|`` is taken over
        them, for the percentile of the numeric tag ``<TAG>_VALUE`` (``<TAG>_VALUE_PCTL``); None:
        all outputs. The per-output grids cover every output either way.
    output_offset, rc_swap_tasks, centering, max_indel_length, model_kwargs, progress
        As for :func:`veff.score_variants` (a run that uses the calibration must give the same
        scores, ``rc``, length, aggregation, centring, offset and rc task pairs).

    Returns
    -------
    Calibration
        What was written.
    """
    if (vcf is None) == (random_snvs is None):
        msg = "give a background: either a VCF (--vcf) or a number of random SNVs (--random-snvs)"
        raise InputError(msg)
    if regions is not None and vcf is not None:
        msg = "regions (--regions) choose where random SNVs are drawn; give them with --random-snvs"
        raise InputError(msg)
    out = Path(output)
    if not out.parent.is_dir():
        msg = f"{out}: output folder {out.parent} does not exist"
        raise InputError(msg)
    kwargs: dict[str, Any] = {
        "scores": scores,
        "score_kwargs": score_kwargs,
        "rc": rc,
        "seq_length": seq_length,
        "batch_size": batch_size,
        "threads": threads,
        "output_labels": output_labels,
        "aggregate": aggregate,
        "output_offset": output_offset,
        "rc_swap_tasks": rc_swap_tasks,
        "centering": centering,
        "model_kwargs": model_kwargs,
        "progress": progress,
        "return_predictions": True,
        "record_options": True,
    }
    if max_indel_length is not None:
        kwargs["max_indel_length"] = max_indel_length
    with tempfile.TemporaryDirectory(prefix=".veff-calibrate-", dir=out.parent) as tmp:
        if vcf is not None:
            background = f"the {{n}} scored ALTs of {Path(vcf).name}"
            drawn: dict[str, Any] = {"vcf": str(vcf)}
            source = Path(vcf)
        else:
            ref = Fasta(fasta)
            try:
                beds = read_regions(regions) if regions is not None else None
                snvs = draw_snvs(ref, int(random_snvs or 0), seed=seed, regions=beds)
                source = _write_vcf(Path(tmp) / "background.vcf", snvs, ref)
            finally:
                ref.close()
            inside = f" inside {Path(regions).name}" if regions is not None else ""
            background = f"{{n}} random SNVs (seed {seed}) of {Path(fasta).name}{inside}"
            drawn = {"random_snvs": random_snvs, "seed": seed, "regions": str(regions) if regions else None}
        run = RunOptions(model=model, vcf=source, fasta=fasta, **kwargs)
        preds = cast("dict[str, pd.DataFrame]", execute(run))  # return_predictions=True
    frames = list(preds.values())
    options = dict(frames[0].attrs.get("veff_run_options", {})) if frames else {}
    labels = [str(c) for c in frames[0].columns] if frames else []
    n_scored = len(frames[0]) if frames else 0
    picked = select_columns(labels, model_outputs) if labels else None
    options["background"] = drawn | {"fasta": Path(fasta).name}
    cal = build_calibration(
        {s: df.to_numpy() for s, df in preds.items()},
        labels,
        background=background.format(n=n_scored),
        options=options,
        n_quantiles=n_quantiles,
        max_abs_labels=None if picked is None else [labels[k] for k in picked.tolist()],
    )
    write_calibration(cal, out)
    cal.path = out
    return cal


def _write_vcf(path: Path, snvs: list[RandomSnv], fasta: Fasta) -> Path:
    """A minimal sorted VCF of ``snvs`` (contig lines from the FASTA)."""
    with open(path, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        for name, length in fasta.lengths.items():
            fh.write(f"##contig=<ID={name},length={length}>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        fh.writelines(f"{v.chrom}\t{v.pos}\t.\t{v.ref}\t{v.alt}\t.\t.\t.\n" for v in snvs)
    return path
