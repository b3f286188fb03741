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
from typing import TYPE_CHECKING, Any, Literal, cast

from veff.engine.outputs import select_columns
from veff.errors import InputError
from veff.io.fasta import Fasta
from veff.io.vcf_regions import RegionSet
from veff.pipeline import execute
from veff.run.hooks import LocalHook
from veff.run.options import RunOptions
from veff.run.stages import preflight
from veff.scoring.calibration import DEFAULT_QUANTILES, Calibration, build_calibration
from veff.scoring.tracks import Aggregation
from veff.variants.background import RandomSnv
from veff.variants.background import random_snvs as draw_snvs
from veff.variants.regions import Centering
from veff.writers.calibration import write_calibration

if TYPE_CHECKING:
    import pandas as pd

    from veff.engine.outputs import OutputSpec
    from veff.models import Model

__all__ = ["calibrate"]


def calibrate(
    model: Any,
    fasta: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    vcf: str | os.PathLike[str] | None = None,
    random_snvs: int | None = None,
    regions: str | Sequence[str] | None = None,
    regions_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
    n_quantiles: int = DEFAULT_QUANTILES,
    scores: Sequence[str | Callable[..., Any]] | None = None,
    score_kwargs: Sequence[dict[str, Any]] | None = None,
    rc: bool | None = None,
    seq_length: int | None = None,
    batch_size: int | Literal["tune"] | None = None,
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
    regions, regions_file
        The background is what lies in these regions, as for :func:`veff.score_variants`
        (``-r/--regions`` text ``CHR``, ``CHR:POS``, ``CHR:START-END`` or ``CHR:START-``, 1-based
        inclusive, comma-separated or a list; or a file: BED when named ``.bed``/``.bed.gz``, else
        ``CHROM POS`` / ``CHROM START END``, 1-based): with ``vcf``, its records overlapping them;
        with ``random_snvs``, SNVs drawn only at positions inside them.
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
    where = _check_regions(regions, regions_file)
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
            background = f"the {{n}} scored ALTs of {Path(vcf).name}{where}"
            drawn: dict[str, Any] = {"vcf": str(vcf), "regions": regions, "regions_file": _str(regions_file)}
            source = Path(vcf)
            kwargs |= {"regions": regions, "regions_file": regions_file}
        else:
            ref = Fasta(fasta)
            try:
                chosen = RegionSet.from_options(regions, regions_file)
                inside = None if chosen is None else chosen.intervals()
                snvs = draw_snvs(ref, int(random_snvs or 0), seed=seed, regions=inside)
                source = _write_vcf(Path(tmp) / "background.vcf", snvs, ref)
            finally:
                ref.close()
            background = f"{{n}} random SNVs (seed {seed}) of {Path(fasta).name}{where}"
            drawn = {
                "random_snvs": random_snvs,
                "seed": seed,
                "regions": regions,
                "regions_file": _str(regions_file),
            }
        run = RunOptions(model=model, vcf=source, fasta=fasta, **kwargs)
        preflight(run)
        hook = _OutputsChecked(model_outputs)  # a bad --model-outputs fails before the background is scored
        preds = cast("dict[str, pd.DataFrame]", execute(run, hook))  # return_predictions=True
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


class _OutputsChecked(LocalHook):
    """A run in one process that checks ``model_outputs`` against the model's outputs when probed."""

    def __init__(self, model_outputs: Sequence[str | int] | None) -> None:
        self.model_outputs = model_outputs

    def probe(self, model: Model, length: int, offset: int | None) -> OutputSpec:
        """Probe the model, then resolve ``model_outputs`` among its labels (one-line error)."""
        spec = super().probe(model, length, offset)
        select_columns(spec.labels(model.output_labels), self.model_outputs)
        return spec


def _check_regions(regions: str | Sequence[str] | None, regions_file: str | os.PathLike[str] | None) -> str:
    """Check the background's regions (one-line errors); returns `` inside ...`` for its description."""
    texts = [] if regions is None else [regions] if isinstance(regions, str | os.PathLike) else list(regions)
    for text in texts:
        if (
            isinstance(text, os.PathLike)
            or str(text).lower().endswith((".bed", ".bed.gz"))
            or Path(text).is_file()
        ):
            msg = (
                f"--regions {text}: expected region text CHR, CHR:POS, CHR:START-END or CHR:START- "
                f"(comma-separated, as score-variants -r); give a file with -R/--regions-file {text}"
            )
            raise InputError(msg)
    RegionSet.from_options([str(t) for t in texts] or None, regions_file)  # parses: one-line errors
    if regions_file is not None:
        return f" inside {Path(regions_file).name}"
    return f" inside {','.join(map(str, texts))}" if texts else ""


def _str(path: str | os.PathLike[str] | None) -> str | None:
    return None if path is None else str(path)


def _write_vcf(path: Path, snvs: list[RandomSnv], fasta: Fasta) -> Path:
    """A minimal sorted VCF of ``snvs`` (contig lines from the FASTA)."""
    with open(path, "w") as fh:
        fh.write("##fileformat=VCFv4.2\n")
        for name, length in fasta.lengths.items():
            fh.write(f"##contig=<ID={name},length={length}>\n")
        fh.write("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        fh.writelines(f"{v.chrom}\t{v.pos}\t.\t{v.ref}\t{v.alt}\t.\t.\t.\n" for v in snvs)
    return path
