"""``veff models``: inspect model directories and the model search path.

``veff models info MODEL [--json]`` prints what veff understands of a model (a Kipoi model
directory is read from its yaml files only, so it works without the weights); ``veff models list``
prints the models found on ``$VEFF_MODEL_PATH`` and through ``veff.models`` entry points. Errors
are one line ``veff: error: ...`` on stderr and exit code 1.
"""

from __future__ import annotations

import json
from typing import Any

import click

from veff.cli.options import fail, trust_model_option
from veff.errors import VeffError

__all__ = ["models"]

_MAX_LABELS = 12


@click.group("models")
def models() -> None:
    """Inspect models: what veff reads from a model directory, and which models it can find."""


def _info(
    model: str, seq_length: int | None = None, trust_model: bool = False, output_layout: str | None = None
) -> dict[str, Any]:
    from veff.engine.describe import describe_model

    return describe_model(model, seq_length, trust_model=trust_model, output_layout=output_layout)


def _labels_text(labels: list[str] | None, count: int | None) -> str:
    if labels is None:
        return "unknown until the model runs"
    shown = ", ".join(labels[:_MAX_LABELS])
    more = f", ... ({count} in all)" if len(labels) > _MAX_LABELS else ""
    return f"{shown}{more}"


def _print_info(info: dict[str, Any]) -> None:
    yes_no = "yes" if info["supported"] else f"no: {info['unsupported_reason']}"
    rows = [
        ("model", info["name"]),
        ("path", info.get("path")),
        ("framework", f"{info.get('framework')} ({info.get('model_class')})"),
    ]
    for inp in info.get("inputs") or []:
        layout = inp.get("layout") or "-"
        length = inp.get("length") if inp.get("length") is not None else "any"
        rows.append(
            (
                f"input {inp['name']}",
                f"{inp['role']}, {inp.get('special_type') or '-'}, "
                f"shape {inp.get('shape')}, layout {layout}, length {length}"
                + (f", +{inp['tracks']} signal channels" if inp.get("tracks") else ""),
            )
        )
    outputs = info.get("outputs") or {}
    rows.append(("outputs", _labels_text(outputs.get("labels"), outputs.get("count"))))
    for head in outputs.get("heads") or []:
        tasks = f"{head['tasks']} task{'s' if head['tasks'] != 1 else ''}"
        shape = (
            f"{tasks} x {head['positions']} positions, output 0 = input {head['offset']}"
            if head["positions"] is not None
            else tasks
        )
        rows.append((f"output {head['name'] or 'head'}", shape))
    if any(head["positions"] is not None for head in outputs.get("heads") or []):
        rows.append(("output layout", outputs.get("layout") or "positions_first (not declared)"))
    rows += [
        ("rc", str(info.get("rc"))),
        ("variant effects", info.get("variant_effects") or "not declared"),
        ("scores", ", ".join(info.get("available_scores") or []) or "-"),
        ("default scores", ", ".join(info.get("default_scores") or []) or "-"),
        ("region mode", info.get("region_mode")),
        ("N value", str(info.get("n_value"))),
        ("supported", yes_no),
    ]
    rows += [("note", note) for note in info.get("notes") or []]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


@models.command("info")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
@click.option(
    "--seq-length",
    type=click.IntRange(min=1),
    help="Input length for models that take any length (to report their outputs).",
)
@click.option(
    "--output-layout",
    type=click.Choice(["positions_first", "tasks_first"]),
    help="Read position-resolved outputs as (N, P, T) or (N, T, P) (default: as the model declares).",
)
@trust_model_option
def info_cmd(
    model: str, as_json: bool, seq_length: int | None, output_layout: str | None, trust_model: bool
) -> None:
    """Show what veff understands of MODEL (a directory, a model file or a name on the search path).

    A model file is run once on an all-N window to report its outputs (with --seq-length when
    the model takes any length).
    """
    try:
        info = _info(model, seq_length, trust_model, output_layout)
    except VeffError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        _print_info(info)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_cmd(as_json: bool) -> None:
    """List the models on $VEFF_MODEL_PATH and from installed packages (entry points veff.models)."""
    from veff.models import list_models

    try:
        found = list_models()
    except VeffError as exc:
        fail(exc)
        return
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo(
            "no models found: set $VEFF_MODEL_PATH (colon-separated folders) or install a package "
            "providing 'veff.models' entry points",
            err=True,
        )
        return
    width = max(len(m["name"]) for m in found)
    for m in found:
        click.echo(f"{m['name']:<{width}}  {m['kind']:<11}  {m['path'] or m['source']}")
