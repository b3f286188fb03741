"""``veff score-variants``: score a VCF (a thin click shell over :func:`veff.score_variants`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from veff.cli.options import (
    BatchSize,
    command_line,
    fail,
    interrupted,
    log_options,
    profile_options,
    scoring_kwargs,
    setup_logging,
    shared_options,
    split_list,
)
from veff.errors import VeffError

__all__ = ["score_variants_cmd"]


@click.command("score-variants")
@click.argument("model", nargs=-1, required=True, metavar="MODEL")
@click.option(
    "--vcf",
    "vcf",
    required=True,
    type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path),
    help="Input VCF, VCF.gz or BCF; - reads standard input (as it comes; no index).",
)
@shared_options("fasta")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Annotated output: .vcf, .vcf.gz (bgzip + tabix) or .bcf; - writes uncompressed VCF to "
    "standard output (required unless --table or --dump-sequences).",
)
@click.option(
    "-O",
    "--output-type",
    type=click.Choice(["v", "z", "b", "u"]),
    help="Output type as bcftools -O: v VCF, z bgzipped VCF, b BCF, u uncompressed BCF "
    "(default: from the suffix of -o; - : v).",
)
@click.option(
    "--table",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every (record, ALT) and every model output to a table: "
    ".tsv, .tsv.gz, .parquet or .h5 (by suffix).",
)
@click.option(
    "--dump-sequences",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the model inputs (ref/alt/rc windows, model layout) to this .h5 file and run no model.",
)
@click.option(
    "--scores",
    "scores",
    multiple=True,
    help="Scores, comma-separated or repeated: "
    + ", ".join(["diff", "ref", "alt", "logit", "logit_ref", "logit_alt", "deepsea_effect"])
    + ", or a Kipoi model's own score labels (default: the model's default scores, else diff).",
)
@shared_options("score_kwargs")
@click.option(
    "--rc/--no-rc", default=None, help="Also score reverse complements (default: as the model declares)."
)
@click.option(
    "--restriction-bed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Windows must lie inside an interval of this BED.",
)
@click.option(
    "-r",
    "--regions",
    metavar="CHR:START-END[,...]",
    help="Score only records overlapping these regions (1-based, inclusive; CHR, CHR:POS, CHR:START-), "
    "as bcftools view -r; records outside are not written.",
)
@click.option(
    "-R",
    "--regions-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The same from a file: BED (.bed, .bed.gz) or CHROM POS / CHROM START END (1-based), "
    "as bcftools view -R.",
)
@shared_options("seq_length")
@click.option(
    "--batch-size",
    type=BatchSize(),
    help="Sequences per forward call, the last one padded (default: by device and model, see "
    "docs/performance.md); tune: time a few sizes on the first batches and use the fastest "
    "(outputs then not byte-stable; not with --workers/--scheduler).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads of the model's framework (also per --workers worker; default: all cores, "
    "shared among the workers; one for a small PyTorch model).",
)
@shared_options("model_outputs", "output_labels")
@click.option(
    "--centering",
    type=click.Choice(["exact", "kipoi"]),
    help="exact: variant at (L-1)//2; kipoi: at L//2-1 as kipoi-veff "
    "(default: kipoi for Kipoi model directories, else exact).",
)
@click.option(
    "--dataloader-args",
    multiple=True,
    help="Arguments of a Kipoi model's own dataloader: a JSON object, a JSON/YAML file, or key=value "
    "pairs (relative paths resolve against the current directory).",
)
@click.option("--info-prefix", help="INFO tag prefix (default VEFF_<model>).")
@click.option(
    "--info-style",
    type=click.Choice(["veff", "kipoi", "spliceai"]),
    default="veff",
    show_default=True,
    help="spliceai: SpliceAI's INFO key, fields and skips (needs --annotation; see docs/spliceai.md).",
)
@click.option(
    "--annotation",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Gene annotation for splice models: SpliceAI's gene table, a GTF or a GFF3 (plain or gzipped), "
    "or grch37 / grch38 for the installed spliceai package's tables; each variant is scored once per "
    "transcript that contains it (docs/spliceai.md).",
)
@click.option(
    "--transcripts",
    type=click.Choice(["canonical", "mane", "all"]),
    default="canonical",
    show_default=True,
    help="With a GTF/GFF3 --annotation: which transcripts are scored.",
)
@click.option(
    "--splice-distance",
    type=click.IntRange(0, 4999),
    default=50,
    show_default=True,
    help="With --annotation: positions scored on each side of the variant (SpliceAI's -D).",
)
@click.option(
    "--splice-mask",
    is_flag=True,
    help="With --annotation: zero gains at annotated sites and losses elsewhere (SpliceAI's -M 1).",
)
@click.option(
    "--splice-keras",
    is_flag=True,
    help="With --annotation: run SpliceAI-architecture .h5 files with Keras, not veff's PyTorch engine.",
)
@click.option(
    "--info-aggregate",
    type=click.Choice(["max_abs"]),
    help="VCF gets per score only the output with the largest magnitude and its label "
    "(ALLELE|value|label); --table keeps every output.",
)
@click.option(
    "--ref-mismatch",
    type=click.Choice(["skip", "score"]),
    default="skip",
    show_default=True,
    help="What to do with records whose REF disagrees with the FASTA.",
)
@click.option("--max-indel-length", type=click.IntRange(min=0), default=50, show_default=True)
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Calibration file (veff calibrate): add per score S the percentiles S_pctl (of |S|) and S_spctl "
    "(signed) among its background.",
)
@click.option(
    "--force-calibration", is_flag=True, help="Use a --calibration made with other options or another model."
)
@click.option(
    "--null",
    metavar="dinuc-shuffle:N",
    help="Also score each ALT in N dinucleotide-shuffled copies of its window: adds S_null_z and S_null_p "
    "(empirical two-sided p-value); about N+1 times the forward passes.",
)
@click.option("--null-seed", type=int, default=0, show_default=True, help="Seed of the --null shuffles.")
@click.option(
    "--null-core",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Bases kept around the variant in --null windows (the REF allele, (K-1)//2 before, K//2 after).",
)
@profile_options
@shared_options("input_layout", "weights", "device")
@click.option(
    "--precision", type=click.Choice(["float32", "bfloat16", "float16"]), default="float32", show_default=True
)
@click.option(
    "--summary-json", type=click.Path(dir_okay=False, path_type=Path), help="Write the run summary as JSON."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    metavar="N",
    help="Shard the VCF by region and score it on a local Dask cluster of N worker processes "
    "(loopback only; needs veff[distributed] and a sorted VCF). Same output as without.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Shard the VCF and score it on a running Dask cluster (e.g. tcp://host:8786); the files must "
    "be visible to its workers under the same paths.",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --workers/--scheduler: folder for the shards' part files, shared with the workers "
    "(default: beside the output).",
)
@click.option(
    "--shard-records",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --workers/--scheduler: records per shard (default: several shards per worker thread).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary line.")
@log_options
def score_variants_cmd(**opts: Any) -> None:
    """Score the variants of a VCF with MODEL and write an annotated VCF and/or a table.

    MODEL is a Keras .h5/.keras file, a TorchScript PyTorch .pt file (a pickled module only with
    --trust-model), FILE.py::Class (with --weights), a Kipoi model directory or a model name on
    $VEFF_MODEL_PATH. Several MODEL files form an ensemble whose outputs are averaged (SpliceAI's
    spliceai1.h5 ... spliceai5.h5).
    """
    setup_logging(opts["quiet"], verbose=opts["verbose"], level=opts["log_level"], log_file=opts["log_file"])
    from veff.pipeline import score_variants

    if not (opts["output"] or opts["table"] or opts["dump_sequences"]):
        msg = "give -o/--output, --table or --dump-sequences"
        raise click.UsageError(msg)
    models = list(opts["model"])
    opts["model"] = models[0] if len(models) == 1 else models
    if opts["annotation"] is not None or opts["info_style"] == "spliceai":
        _score_splice(opts)
        return
    if opts["batch_size"] == "tune" and (opts["workers"] or opts["scheduler"]):
        msg = (
            "--batch-size tune is not available with --workers/--scheduler "
            "(each shard would choose its own size); give a number"
        )
        raise click.UsageError(msg)
    try:
        scores = split_list(opts["scores"])
        score_variants(
            opts["model"],
            opts["vcf"],
            opts["fasta"],
            opts["output"],
            scores=scores or None,
            restriction_bed=opts["restriction_bed"],
            regions=opts["regions"],
            regions_file=opts["regions_file"],
            model_outputs=split_list(opts["model_outputs"]) or None,
            ref_mismatch=opts["ref_mismatch"],
            info_prefix=opts["info_prefix"],
            info_style=opts["info_style"],
            info_aggregate=opts["info_aggregate"],
            output_type=opts["output_type"],
            table=opts["table"],
            dump_sequences=opts["dump_sequences"],
            calibration=opts["calibration"],
            force_calibration=opts["force_calibration"],
            null=opts["null"],
            null_seed=opts["null_seed"],
            null_core=opts["null_core"],
            progress=not opts["quiet"],
            progress_interval=opts["progress_interval"],
            command=command_line(),
            dataloader_args=list(opts["dataloader_args"]) or None,
            workers=opts["workers"],
            scheduler=opts["scheduler"],
            work_dir=opts["work_dir"],
            shard_records=opts["shard_records"],
            summary_json=opts["summary_json"],
            **scoring_kwargs(opts),
        )
    except VeffError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        interrupted(exc)


def _score_splice(opts: dict[str, Any]) -> None:
    """Gene-aware splice scoring (:func:`veff.score_splice`) of ``score-variants --annotation``."""
    from veff.pipeline_splice import score_splice

    if opts["annotation"] is None:
        msg = "--info-style spliceai needs --annotation (SpliceAI's gene table, a GTF or a GFF3)"
        raise click.UsageError(msg)
    for flag, key in (("--dump-sequences", "dump_sequences"), ("-r/--regions", "regions")):
        if opts.get(key):
            msg = f"{flag} is not available with --annotation"
            raise click.UsageError(msg)
    if opts["batch_size"] == "tune":
        msg = "--batch-size tune is not available with --annotation; give a number"
        raise click.UsageError(msg)
    style = "veff" if opts["info_style"] == "veff" else opts["info_style"]
    if style == "kipoi":
        msg = "--info-style kipoi is not available with --annotation; use spliceai or veff"
        raise click.UsageError(msg)
    kwargs = {
        k: v
        for k, v in (
            ("input_layout", opts["input_layout"]),
            ("output_layout", opts["output_layout"]),
            ("weights", opts["weights"]),
            ("random_weights", opts["random_weights"] or None),
            ("trust_model", opts["trust_model"] or None),
            ("device", None if opts["device"] == "auto" else opts["device"]),
            ("precision", None if opts["precision"] == "float32" else opts["precision"]),
        )
        if v is not None
    }
    try:
        summary = score_splice(
            opts["model"],
            opts["vcf"],
            opts["fasta"],
            opts["output"],
            annotation=opts["annotation"],
            transcripts=opts["transcripts"],
            distance=opts["splice_distance"],
            mask=opts["splice_mask"],
            info_style="veff" if style == "veff" else "spliceai",
            info_prefix=opts["info_prefix"],
            table=opts["table"],
            batch_size=opts["batch_size"],
            threads=opts["threads"],
            max_indel_length=opts["max_indel_length"],
            progress=not opts["quiet"],
            command=command_line(),
            model_kwargs=kwargs or None,
            incremental=not opts["splice_keras"],
        )
    except VeffError as exc:
        fail(exc)
    except KeyboardInterrupt as exc:
        interrupted(exc)
    if opts["summary_json"]:
        import json

        opts["summary_json"].write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
