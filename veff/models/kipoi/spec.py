"""Read a Kipoi model directory (``model.yaml`` + ``dataloader.yaml``) into frozen dataclasses.

Nothing here imports a deep-learning framework or runs code from the model directory; the files are
read as YAML only, so a directory without its weights (a fresh clone of the model zoo) can be read.

What is read
------------
model.yaml
    ``type`` / ``defined_as`` (the model kind), ``args`` (paths stay relative to the model directory
    until :meth:`ModelSpec.resolve` resolves them), ``schema.inputs`` and ``schema.targets`` (a single
    array, a list or a dict of arrays, each with ``shape``, ``special_type``, ``associated_metadata``,
    ``column_labels``, ``doc``), ``default_dataloader`` and the variant-effect settings in all three
    historic forms: ``postprocessing: {variant_effects: ...}`` (2018-2021),
    ``postprocessing: [{type: variant_effects, args: ...}]`` (early 2018) and a top-level
    ``variant_effects:`` section.
dataloader.yaml
    ``defined_as`` (a local ``dataloader.py::Class`` / ``dataloader.Class`` or a kipoiseq dataloader),
    ``args``, ``default_args``, ``output_schema.inputs`` and ``postprocessing.variant_effects.bed_input``.
    The kipoiseq dataloaders ``SeqIntervalDl`` / ``StringSeqIntervalDl`` may also be named directly in
    model.yaml (``default_dataloader: {defined_as: kipoiseq.dataloaders.SeqIntervalDl, default_args:
    {...}}``); their input shape follows from ``auto_resize_len``, ``alphabet_axis`` and ``dummy_axis``.

Unexpanded Jinja templates (kipoi model groups: ``model-template.yaml`` + ``models.tsv``) are
recognised and rejected with :class:`KipoiSpecError`.

Layout
------
This module holds :class:`ModelSpec` and :func:`read_model_spec`; the parts live in private modules
and are re-exported here: yaml reading and :class:`KipoiSpecError` in :mod:`~veff.models.kipoi._yaml`,
the array schema (:class:`ArraySpec`, :func:`parse_shape`) in :mod:`~veff.models.kipoi._schema`, the
variant-effect section (:class:`VariantEffectSpec`, scoring functions, :data:`UseRc`) in
:mod:`~veff.models.kipoi._variant_effects`, and the dataloader in :mod:`~veff.models.kipoi.dataloader`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veff.models.kipoi._schema import ArraySpec, Form, parse_arrays, parse_shape, read_labels_file
from veff.models.kipoi._variant_effects import (
    BUILTIN_SCORES,
    ScoringArgSpec,
    ScoringFunctionSpec,
    VariantEffectSpec,
    parse_variant_effects,
)
from veff.models.kipoi._variant_effects import UseRc as UseRc
from veff.models.kipoi._variant_effects import find_variant_effects as find_variant_effects
from veff.models.kipoi._yaml import KipoiSpecError, load_yaml, text_of
from veff.models.kipoi._yaml import names_of as names_of

if TYPE_CHECKING:
    from veff.models.kipoi.dataloader import DataloaderSpec

__all__ = [
    "BUILTIN_SCORES",
    "ArraySpec",
    "KipoiSpecError",
    "ModelSpec",
    "ScoringArgSpec",
    "ScoringFunctionSpec",
    "VariantEffectSpec",
    "parse_shape",
    "read_model_spec",
]

_KIND_BY_TYPE = {
    "keras": "keras",
    "pytorch": "pytorch",
    "sklearn": "sklearn",
    "tensorflow": "tensorflow",
    "custom": "custom",
}
_KIND_BY_CLASS = {
    "kipoi.model.KerasModel": "keras",
    "kipoi.model.PyTorchModel": "pytorch",
    "kipoi.model.OldPyTorchModel": "pytorch",
    "kipoi.model.SklearnModel": "sklearn",
    "kipoi.model.TensorFlowModel": "tensorflow",
    "kipoi.model.TensorFlowSavedModel": "tensorflow",
}


@dataclass(frozen=True)
class ModelSpec:
    """Everything veff reads from a Kipoi model directory.

    Attributes
    ----------
    path
        The model directory.
    name
        Its name (the directory name).
    kind
        ``keras``, ``pytorch``, ``sklearn``, ``tensorflow``, ``custom``, or the unsupported kind as
        written (for example ``xgboost``).
    model_class
        ``type`` or ``defined_as`` as written.
    args
        ``args`` as written (resolve paths with :meth:`resolve`).
    inputs, input_form
        Model inputs and whether the schema is a single array, a list or a dict.
    targets, target_form
        Model outputs, likewise.
    variant_effects
        The variant-effect section, or None.
    dataloader
        The default dataloader, or None.
    doc, license
        From ``info``.
    notes
        Things veff noticed while reading (shown by ``veff models info``).
    """

    path: Path
    name: str
    kind: str
    model_class: str
    args: dict[str, Any]
    inputs: tuple[ArraySpec, ...]
    input_form: Form
    targets: tuple[ArraySpec, ...]
    target_form: Form
    variant_effects: VariantEffectSpec | None = None
    dataloader: DataloaderSpec | None = None
    doc: str = ""
    license: str = ""
    notes: tuple[str, ...] = ()

    def resolve(self, rel: str | Path) -> Path:
        """Resolve a path from model.yaml relative to the model directory."""
        p = Path(rel).expanduser()
        return p if p.is_absolute() else self.path / p

    def input(self, name: str) -> ArraySpec | None:
        """The model input called ``name`` (a single-array schema answers to any name)."""
        for spec in self.inputs:
            if spec.name == name:
                return spec
        if self.input_form == "single" and len(self.inputs) == 1:
            return self.inputs[0]
        return None

    def column_labels(self) -> tuple[str, ...] | None:
        """Output labels, flattened as kipoi-veff did (reference section 4.4).

        A single target gives its ``column_labels`` (inline or from a labels file), else ``0..n-1``.
        A list or dict of targets gives ``<name>.<label>`` per target (dict keys sorted). Returns None
        when a size is unknown (variable axis) or a labels file is missing.
        """
        targets = self.targets
        if self.target_form == "dict":
            targets = tuple(sorted(targets, key=lambda t: t.name))
        out: list[str] = []
        for target in targets:
            labels = self._target_labels(target)
            if labels is None:
                return None
            if self.target_form == "single":
                out.extend(labels)
            else:
                out.extend(f"{target.name}.{label}" for label in labels)
        return tuple(out) if targets else None

    def _target_labels(self, target: ArraySpec) -> tuple[str, ...] | None:
        labels = target.column_labels
        if target.labels_file is not None:
            labels = read_labels_file(self.resolve(target.labels_file))
        size = target.size
        if labels is not None and (size is None or len(labels) == size):
            return labels
        return tuple(str(i) for i in range(size)) if size is not None else None


def model_kind(data: dict[str, Any]) -> tuple[str, str]:
    """Return ``(kind, model_class)`` from ``type`` / ``defined_as``.

    ``defined_as`` naming a file or a local module (``model.py::Class``, ``model.Class``) is a
    ``custom`` model; an unknown ``kipoi.model.*`` class or ``type`` is returned as written.
    """
    defined_as = text_of(data.get("defined_as"))
    mtype = text_of(data.get("type"))
    if defined_as:
        if defined_as in _KIND_BY_CLASS:
            return _KIND_BY_CLASS[defined_as], defined_as
        if defined_as.startswith("kipoi.model."):
            return defined_as.rsplit(".", 1)[-1], defined_as
        return "custom", defined_as
    if mtype:
        return _KIND_BY_TYPE.get(mtype.lower(), mtype), mtype
    return "unknown", ""


def read_model_spec(path: str | Path) -> ModelSpec:
    """Read a model directory (or its model.yaml) into a :class:`ModelSpec`.

    Raises
    ------
    KipoiSpecError
        When the directory has no model.yaml, a yaml file is invalid or a Jinja template, or the
        schema breaks the contract.
    """
    p = Path(path)
    model_dir = p.parent if p.is_file() else p
    yaml_path = p if p.is_file() else p / "model.yaml"
    if not yaml_path.is_file():
        msg = f"{model_dir}: no model.yaml (not a Kipoi model directory)"
        raise KipoiSpecError(msg)
    data = load_yaml(yaml_path)
    where = str(yaml_path)
    kind, model_class = model_kind(data)
    args = data.get("args") or {}
    if not isinstance(args, dict):
        msg = f"{where}: args must be a mapping, found {args!r}"
        raise KipoiSpecError(msg)
    schema = data.get("schema")
    if not isinstance(schema, dict):
        msg = f"{where}: no schema section"
        raise KipoiSpecError(msg)
    input_form, inputs = parse_arrays(schema.get("inputs"), "seq", where)
    target_form, targets = parse_arrays(schema.get("targets"), "targets", where)
    from veff.models.kipoi.dataloader import parse_dataloader

    dataloader, notes = parse_dataloader(model_dir, data.get("default_dataloader"))
    info_node = data.get("info")
    info: dict[str, Any] = info_node if isinstance(info_node, dict) else {}
    name = model_dir.resolve().name if str(model_dir) in ("", ".") else model_dir.name
    return ModelSpec(
        path=model_dir,
        name=name,
        kind=kind,
        model_class=model_class,
        args=dict(args),
        inputs=inputs,
        input_form=input_form,
        targets=targets,
        target_form=target_form,
        variant_effects=parse_variant_effects(data, where),
        dataloader=dataloader,
        doc=text_of(info.get("doc")),
        license=text_of(info.get("license")),
        notes=tuple(notes),
    )
