"""What veff understands of a Kipoi model directory, from its yaml files alone.

:func:`plan_model` turns a :class:`~veff.models.kipoi.spec.ModelSpec` into a :class:`ModelPlan`: which
input holds the DNA and in which layout, the sequence length, the output labels, the scores, the
region mode, the N value, and whether veff can run the model (with the reason when it cannot).
:func:`describe_model` returns the same as a JSON-ready dict; it never needs the weights.

Region modes
------------
``centred``
    veff builds the variant-centred windows and the model input itself (kipoiseq ``SeqIntervalDl`` /
    ``StringSeqIntervalDl`` dataloaders, or no dataloader).
``bed_input``
    The model has its own dataloader that takes a BED of regions (``bed_input``). veff writes the
    variant-centred (or restricted) windows to a BED, runs the dataloader on it and mutates what it
    returns (:mod:`veff.models.kipoi.windows`).
``overlap``
    The model's own dataloader chooses the regions (no ``bed_input``): veff runs it on the user's
    dataloader arguments and scores every variant inside a returned region.

Supported
---------
veff runs a model directory when its kind is supported (Keras, PyTorch, scikit-learn, TensorFlow,
custom Python class), exactly one input holds DNA (``seq_input``, else ``special_type: DNASeq`` /
``DNAStringSeq``, else a single input whose shape has one axis of 4, else an (L, 4 + k) input
documented as DNA plus signal channels) in a layout veff can build, an input documented or named
as its reverse complement is rebuilt from it (``DnaInput.rc_twin``),
every other input comes from the model's local dataloader (which veff runs), and every target is
at most two-dimensional per sample: (T,) or a position-resolved (P, T) track (see
:mod:`veff.engine.outputs`; kipoi-veff refused the latter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from veff.errors import ModelError
from veff.models.base import Model
from veff.models.kipoi.inputs import (
    DnaInput,
    Unsupported,
    dna_arrays,
    dna_input,
    layout_of,
    special_type,
)
from veff.models.kipoi.scores import ModelScore, score_table
from veff.models.kipoi.spec import KipoiSpecError, ModelSpec, UseRc, read_model_spec

__all__ = [
    "KIPOISEQ_N_VALUE",
    "SUPPORTED_KINDS",
    "DnaInput",
    "ModelPlan",
    "describe_model",
    "plan_model",
]

SUPPORTED_KINDS = ("keras", "pytorch", "sklearn", "tensorflow", "custom")
KIPOISEQ_N_VALUE = 0.25
"""One-hot value of N in kipoiseq's encoding (every channel); veff's own default is 0."""

RegionMode = Literal["centred", "bed_input", "overlap"]


@dataclass(frozen=True)
class ModelPlan:
    """How veff runs a Kipoi model directory (see the module docstring)."""

    spec: ModelSpec
    dna: DnaInput | None
    other_inputs: tuple[str, ...]
    region_mode: RegionMode
    n_value: float
    use_rc: UseRc
    labels: tuple[str, ...] | None
    scores: tuple[ModelScore, ...]
    default_scores: tuple[str, ...]
    supported: bool
    reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _region_mode(spec: ModelSpec) -> RegionMode:
    dl = spec.dataloader
    if dl is None or dl.source == "kipoiseq":
        return "centred"
    return "bed_input" if dl.bed_input else "overlap"


def _check_targets(spec: ModelSpec) -> None:
    for target in spec.targets:
        if target.shape is not None and sum(1 for d in target.shape if d != 1) > 2:
            msg = (
                f"target {target.name!r} has shape {target.shape_text}: more than a (positions, tasks) "
                "track per sequence is not supported"
            )
            raise Unsupported(msg)


def plan_model(spec: ModelSpec) -> ModelPlan:
    """Work out how veff runs a model directory; never raises for a readable spec."""
    notes = list(spec.notes)
    ve = spec.variant_effects
    mode = _region_mode(spec)
    dl = spec.dataloader
    n_value = KIPOISEQ_N_VALUE if dl is not None and dl.source == "kipoiseq" else 0.0
    try:
        scores, defaults = score_table(ve)
    except KipoiSpecError as exc:
        scores, defaults, score_error = (), (), str(exc)
    else:
        score_error = ""
    labels = spec.column_labels()
    notes.extend(
        f"labels file {t.labels_file} not present; outputs are numbered"
        for t in spec.targets
        if t.labels_file and not spec.resolve(t.labels_file).is_file()
    )
    dna: DnaInput | None = None
    others: tuple[str, ...] = ()
    reason: str | None = None
    try:
        if spec.kind not in SUPPORTED_KINDS:
            cls = f" ({spec.model_class})" if spec.model_class and spec.model_class != spec.kind else ""
            msg = f"model kind {spec.kind!r}{cls} is not supported; veff runs {', '.join(SUPPORTED_KINDS)}"
            raise Unsupported(msg)
        arrays = dna_arrays(spec, notes)
        if not arrays:
            desc = (
                ", ".join(
                    f"{a.name} {a.shape_text or '?'} ({special_type(spec, a) or 'no special_type'})"
                    for a in spec.inputs
                )
                or "none"
            )
            msg = f"no DNA input veff can build (inputs: {desc})"
            raise Unsupported(msg)
        if len(arrays) > 1:
            msg = f"{len(arrays)} DNA inputs ({', '.join(a.name for a in arrays)}); veff runs models with one"
            raise Unsupported(msg)
        dna = dna_input(spec, arrays[0])
        others = tuple(
            a.name
            for a in spec.inputs
            if a.name not in (dna.name, dna.rc_twin) and spec.input_form != "single"
        )
        if (others or dna.tracks) and (spec.dataloader is None or spec.dataloader.source != "local"):
            made = (
                f"inputs {', '.join(others)} are not DNA"
                if others
                else f"the signal channels of {dna.name!r}"
            )
            msg = f"{made} and the model has no local dataloader.py to make them"
            raise Unsupported(msg)
        if dna.rc_twin:
            notes.append(
                f"input {dna.rc_twin!r} is the reverse complement of {dna.name!r}; veff builds both "
                "from the same mutated sequence"
            )
        if others:
            notes.append(
                f"inputs {', '.join(others)} come from the model's dataloader (veff runs it; give its "
                "arguments with --dataloader-args); only the DNA input is mutated"
            )
        _check_targets(spec)
        if score_error:
            raise Unsupported(score_error)
    except Unsupported as exc:
        reason = str(exc)
    if ve is None:
        notes.append("no variant_effects section: veff runs the model on its DNA input with diff/ref/alt")
    if mode == "bed_input" and reason is None:
        notes.append(
            "veff writes the variant-centred (or --restriction-bed) windows to a BED, runs the model's "
            "dataloader on it and mutates the sequences it returns"
            + (
                ""
                if others
                else "; for this DNA-only model only when --dataloader-args are given "
                "(else veff builds the windows itself)"
            )
        )
    if mode == "overlap" and reason is None:
        notes.append(
            "the model's dataloader chooses the regions (overlap mode): veff runs it on "
            "--dataloader-args and scores each variant in a region that contains it"
        )
    if dna is not None and dna.length is None and reason is None:
        notes.append("the model takes any sequence length: give --seq-length")
    return ModelPlan(
        spec=spec,
        dna=dna,
        other_inputs=others,
        region_mode=mode,
        n_value=n_value,
        use_rc=ve.use_rc if ve is not None else False,
        labels=labels,
        scores=scores,
        default_scores=defaults,
        supported=reason is None,
        reason=reason,
        notes=tuple(notes),
    )


def _input_rows(plan: ModelPlan) -> list[dict[str, Any]]:
    rows = []
    dna = plan.dna
    for arr in plan.spec.inputs:
        is_dna = dna is not None and arr.name in (dna.name, dna.rc_twin)
        layout = dna.layout if is_dna and dna is not None else layout_of(arr.shape)
        role = "other" if not is_dna else "dna_rc" if dna is not None and arr.name == dna.rc_twin else "dna"
        rows.append(
            {
                "name": arr.name,
                "special_type": special_type(plan.spec, arr),
                "shape": arr.shape_text or None,
                "role": role,
                "layout": ("string" if dna is not None and dna.string else str(layout))
                if is_dna or layout is not None
                else None,
                "length": dna.length if is_dna and dna is not None else None,
                "tracks": dna.tracks if is_dna and dna is not None else 0,
            }
        )
    return rows


def describe_model(path: str | Path) -> dict[str, Any]:
    """Describe a Kipoi model directory from its yaml files (weights are not needed).

    Parameters
    ----------
    path
        The model directory (or its model.yaml), or a model name on the search path.

    Returns
    -------
    dict
        ``name``, ``path``, ``framework``, ``model_class``, ``inputs`` (name, special_type, shape,
        role, layout, length), ``outputs`` (``labels``, ``count``), ``rc``, ``variant_effects`` (the
        yaml form, or None), ``available_scores``, ``default_scores``, ``region_mode``,
        ``dataloader``, ``n_value``, ``supported``, ``unsupported_reason`` and ``notes``.

    Raises
    ------
    ModelError
        When ``path`` is not a model directory (no model.yaml). A model.yaml that cannot be read
        gives ``supported: False`` with the reason instead.
    """
    p = Path(path)
    if not p.exists():
        from veff.models import resolve_model

        found = resolve_model(str(path))
        if isinstance(found, Model):
            return found.describe()
        p = found
    is_yaml = p.is_file() and p.suffix in (".yaml", ".yml")
    model_dir = p.parent if is_yaml else p
    if not is_yaml and not (model_dir / "model.yaml").is_file():
        msg = f"{p}: not a Kipoi model directory (no model.yaml)"
        raise ModelError(msg)
    try:
        plan = plan_model(read_model_spec(p if is_yaml else model_dir))
    except KipoiSpecError as exc:
        return {
            "name": model_dir.name,
            "path": str(model_dir),
            "framework": None,
            "model_class": None,
            "inputs": [],
            "outputs": {"labels": None, "count": None},
            "rc": False,
            "variant_effects": None,
            "available_scores": [],
            "default_scores": [],
            "region_mode": None,
            "dataloader": None,
            "n_value": 0.0,
            "supported": False,
            "unsupported_reason": str(exc),
            "notes": [],
        }
    spec = plan.spec
    dl = spec.dataloader
    return {
        "name": spec.name,
        "path": str(spec.path),
        "framework": spec.kind,
        "model_class": spec.model_class,
        "inputs": _input_rows(plan),
        "outputs": {
            "labels": list(plan.labels) if plan.labels is not None else None,
            "count": len(plan.labels) if plan.labels is not None else None,
        },
        "rc": plan.use_rc,
        "variant_effects": spec.variant_effects.form if spec.variant_effects is not None else None,
        "available_scores": [s.label for s in plan.scores],
        "default_scores": list(plan.default_scores),
        "region_mode": plan.region_mode,
        "dataloader": None
        if dl is None
        else {
            "source": dl.source,
            "defined_as": dl.defined_as,
            "bed_input": list(dl.bed_input),
        },
        "n_value": plan.n_value,
        "supported": plan.supported,
        "unsupported_reason": plan.reason,
        "notes": list(plan.notes),
    }
