"""Command line: a thin click shell over the Python API.

Each command parses its options into typed values, calls one library function, and turns a
:class:`~veff.errors.VeffError` into one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from veff import __version__
from veff._cli_options import profile_options
from veff.errors import VeffError

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def split_list(values: tuple[str, ...]) -> list[str]:
    """Flatten repeated, comma-separated option values: ``("a,b", "c") -> ["a", "b", "c"]``."""
    return [item.strip() for v in values for item in v.split(",") if item.strip()]


def parse_json_list(values: tuple[str, ...], option: str) -> list[dict[str, Any]]:
    """Parse each value as a JSON object or a path to a JSON file."""
    out = []
    for text in values:
        source = Path(text).read_text() if Path(text).is_file() else text
        try:
            obj = json.loads(source)
        except json.JSONDecodeError as exc:
            msg = f"{option}: not valid JSON ({exc.msg} at char {exc.pos}): {text!r}"
            raise click.BadParameter(msg) from None
        if not isinstance(obj, dict):
            msg = f'{option}: expected a JSON object such as \'{{"rc_merging": "max"}}\', got {text!r}'
            raise click.BadParameter(msg)
        out.append(obj)
    return out


def _fail(exc: Exception) -> None:
    click.echo(f"veff: error: {exc}", err=True)
    sys.exit(1)


# options that change how a run is carried out, not its output (a sharded run writes the same bytes)
_NOT_RECORDED = frozenset({"quiet", "workers", "scheduler", "work_dir", "shard_records"})


def _command_line() -> str:
    """Rebuild the invoked command from click's parsed parameters (for the output header)."""
    ctx = click.get_current_context()
    parts = ["veff", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value in (None, (), False) or param.name in _NOT_RECORDED:
            continue
        if isinstance(param, click.Argument):
            parts.append(shlex.quote(str(value)))
            continue
        flag = max(param.opts, key=len)
        if value is True:
            parts.append(flag)
            continue
        for item in value if isinstance(value, tuple) else (value,):
            parts += [flag, shlex.quote(str(item))]
    return " ".join(parts)


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:  # other libraries' INFO (Dask's) stays out
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.split(".")[0] in ("veff", "py"))
    logging.captureWarnings(capture=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="veff")
def main() -> None:
    """veff: variant effect prediction with deep-learning sequence models."""


def _score_choices() -> list[str]:
    from veff.scores import SCORES, _load_plugins

    _load_plugins()
    return sorted(SCORES)


def _model_score_labels(model: str) -> list[str]:
    """Score labels a Kipoi model directory declares (read from its yaml), else []."""
    path = Path(model)
    if not (path / "model.yaml").is_file():
        return []
    from veff.models.kipoi import describe_model

    return [s for s in describe_model(path)["available_scores"] if s not in _score_choices()]


@main.command("score-variants")
@click.argument("model")
@click.option(
    "--vcf",
    "vcf",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Input VCF, VCF.gz or BCF.",
)
@click.option(
    "--fasta",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Reference FASTA (plain or bgzipped).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Annotated output: .vcf, .vcf.gz (bgzip + tabix) or .bcf "
    "(required unless --table or --dump-sequences).",
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
@click.option(
    "--score-kwargs",
    multiple=True,
    help='JSON object (or file) per --scores entry, e.g. \'{"rc_merging": "max"}\'.',
)
@click.option(
    "--rc/--no-rc", default=None, help="Also score reverse complements (default: as the model declares)."
)
@click.option(
    "--restriction-bed",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Windows must lie inside an interval of this BED.",
)
@click.option("--seq-length", type=click.IntRange(min=1), help="Window length L (default: the model's).")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Sequences per forward call, the last one padded (default: about 2**18 bases, 32..4096).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads of the model's framework (also per --workers worker; default: all cores, "
    "shared among the workers).",
)
@click.option("--model-outputs", multiple=True, help="Output labels or indices to keep (comma-separated).")
@click.option("--output-labels", multiple=True, help="Names of the model outputs (comma-separated).")
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
@click.option("--info-style", type=click.Choice(["veff", "kipoi"]), default="veff", show_default=True)
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
@profile_options
@click.option("--input-layout", help='Per-sequence input layout, e.g. "4,L" or "L,1,4".')
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="State dict for MODEL given as FILE.py::Class.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N] (PyTorch).")
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
def score_variants_cmd(**opts: Any) -> None:
    """Score the variants of a VCF with MODEL and write an annotated VCF and/or a table.

    MODEL is a Keras .h5/.keras file, a TorchScript or pickled PyTorch .pt file, FILE.py::Class
    (with --weights), a Kipoi model directory or a model name on $VEFF_MODEL_PATH.
    """
    _setup_logging(opts["quiet"])
    from veff.pipeline import score_variants

    if not (opts["output"] or opts["table"] or opts["dump_sequences"]):
        msg = "give -o/--output, --table or --dump-sequences"
        raise click.UsageError(msg)
    try:
        scores = split_list(opts["scores"])
        choices = _score_choices() + _model_score_labels(opts["model"])
        unknown = [s for s in scores if s not in choices]
        if unknown:
            msg = f"unknown score {unknown[0]!r}; choose from {', '.join(choices)}"
            raise click.BadParameter(msg, param_hint="--scores")
        summary = score_variants(
            opts["model"],
            opts["vcf"],
            opts["fasta"],
            opts["output"],
            scores=scores or None,
            score_kwargs=parse_json_list(opts["score_kwargs"], "--score-kwargs") or None,
            rc=opts["rc"],
            seq_length=opts["seq_length"],
            restriction_bed=opts["restriction_bed"],
            batch_size=opts["batch_size"],
            threads=opts["threads"],
            model_outputs=split_list(opts["model_outputs"]) or None,
            output_labels=split_list(opts["output_labels"]) or None,
            aggregate=list(opts["aggregate"]) or None,
            output_offset=opts["output_offset"],
            rc_swap_tasks=opts["rc_swap_tasks"],
            centering=opts["centering"],
            ref_mismatch=opts["ref_mismatch"],
            max_indel_length=opts["max_indel_length"],
            info_prefix=opts["info_prefix"],
            info_style=opts["info_style"],
            info_aggregate=opts["info_aggregate"],
            table=opts["table"],
            dump_sequences=opts["dump_sequences"],
            progress=not opts["quiet"],
            command=_command_line(),
            model_kwargs={
                "input_layout": opts["input_layout"],
                "weights": opts["weights"],
                "device": opts["device"],
                "precision": opts["precision"],
            },
            dataloader_args=list(opts["dataloader_args"]) or None,
            workers=opts["workers"],
            scheduler=opts["scheduler"],
            work_dir=opts["work_dir"],
            shard_records=opts["shard_records"],
        )
    except VeffError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo("veff: interrupted; no output written", err=True)
        sys.exit(130)
    if opts["summary_json"]:
        opts["summary_json"].write_text(json.dumps(summary.to_dict(), indent=2) + "\n")  # type: ignore[union-attr]


from veff.cli_models import models  # noqa: E402
from veff.cli_mutation_map import create_mutation_map_cmd, plot_mutation_map_cmd  # noqa: E402

main.add_command(models)
main.add_command(create_mutation_map_cmd)
main.add_command(plot_mutation_map_cmd)


if __name__ == "__main__":  # pragma: no cover
    main()
