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
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from veff.errors import ModelError

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

Form = Literal["single", "list", "dict", "none"]
UseRc = bool | Literal["seq_only"]

BUILTIN_SCORES = ("ref", "alt", "diff", "logit_ref", "logit_alt", "logit", "deepsea_effect")
_SCORE_ALIASES = {"deepsea_scr": "deepsea_effect"}
_KIND_BY_TYPE = {
    "keras": "keras", "pytorch": "pytorch", "sklearn": "sklearn",
    "tensorflow": "tensorflow", "custom": "custom",
}
_KIND_BY_CLASS = {
    "kipoi.model.KerasModel": "keras",
    "kipoi.model.PyTorchModel": "pytorch",
    "kipoi.model.OldPyTorchModel": "pytorch",
    "kipoi.model.SklearnModel": "sklearn",
    "kipoi.model.TensorFlowModel": "tensorflow",
    "kipoi.model.TensorFlowSavedModel": "tensorflow",
}
_JINJA = re.compile(r"\{\{|\{%")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KipoiSpecError(ModelError):
    """A model.yaml / dataloader.yaml cannot be read or breaks the Kipoi contract."""


def parse_shape(value: Any) -> tuple[int | None, ...] | None:
    """Parse a schema shape such as ``"(101, 4)"``, ``"(None,4)"``, ``"()"`` or ``[4, 1, 1000]``.

    Returns the per-sample shape (None for a variable axis), or None when it cannot be read.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (list, tuple)):
        items: list[Any] = list(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith(("(", "[")) and text.endswith((")", "]")):
            text = text[1:-1]
        items = [t.strip() for t in text.split(",") if t.strip()]
    else:
        return None
    out: list[int | None] = []
    for item in items:
        if item is None or (isinstance(item, str) and item.lower() in ("none", "null", "-1")):
            out.append(None)
        elif isinstance(item, int) and not isinstance(item, bool) and item >= 0:
            out.append(item)
        elif isinstance(item, str) and item.isdigit():
            out.append(int(item))
        else:
            return None
    return tuple(out)


@dataclass(frozen=True)
class ArraySpec:
    """One input or target array of a schema.

    Attributes
    ----------
    name
        Array name (the key of a dict schema, ``name`` of a list/single one).
    shape
        Per-sample shape, None axes are variable; None when the yaml gives none or an unreadable one.
    shape_text
        The shape as written in the yaml.
    special_type
        ``DNASeq``, ``DNAStringSeq``, ``bigwig``... or None.
    associated_metadata
        Names of the metadata fields (GenomicRanges) that locate this array.
    column_labels
        Inline labels, or None.
    labels_file
        A labels file (one label per line, relative to the model directory), or None.
    doc
        Free text.
    """

    name: str
    shape: tuple[int | None, ...] | None
    shape_text: str = ""
    special_type: str | None = None
    associated_metadata: tuple[str, ...] = ()
    column_labels: tuple[str, ...] | None = None
    labels_file: str | None = None
    doc: str = ""

    @property
    def size(self) -> int | None:
        """Number of values per sample, or None when an axis is variable or the shape unknown."""
        if self.shape is None or any(d is None for d in self.shape):
            return None
        return math.prod(d for d in self.shape if d is not None)


@dataclass(frozen=True)
class ScoringArgSpec:
    """An argument of a custom scoring function, as declared in model.yaml."""

    name: str
    default: Any = None
    optional: bool = False
    doc: str = ""


@dataclass(frozen=True)
class ScoringFunctionSpec:
    """One entry of ``variant_effects.scoring_functions``.

    ``type`` is a built-in score name (``deepsea_scr`` is read as ``deepsea_effect``) or ``custom``.
    """

    type: str
    name: str = ""
    default: bool = False
    defined_as: str = ""
    args: tuple[ScoringArgSpec, ...] = ()


@dataclass(frozen=True)
class VariantEffectSpec:
    """The variant-effect section of model.yaml.

    Attributes
    ----------
    seq_input
        Names of the model inputs that hold DNA and get mutated.
    use_rc
        Whether reverse complements are scored: a bool, or ``"seq_only"`` (reverse-complement the
        DNA inputs only, pass other inputs unchanged).
    scoring_functions
        The declared scoring functions, in yaml order.
    form
        Where it was found: ``postprocessing``, ``postprocessing-list`` or ``top-level``.
    """

    seq_input: tuple[str, ...]
    use_rc: UseRc = False
    scoring_functions: tuple[ScoringFunctionSpec, ...] = ()
    form: str = "postprocessing"


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


def read_labels_file(path: Path) -> tuple[str, ...] | None:
    """Read one label per line (trailing whitespace stripped); None when the file is absent."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    while lines and not lines[-1].strip():
        lines.pop()
    return tuple(line.rstrip() for line in lines)


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a yaml file into a dict; reject unexpanded Jinja templates with a clear message."""
    try:
        text = path.read_text()
    except OSError as exc:
        msg = f"{path}: cannot read ({exc.strerror or exc})"
        raise KipoiSpecError(msg) from None
    if _JINJA.search(text):
        msg = (
            f"{path}: an unexpanded Jinja template (a kipoi model group); veff reads expanded "
            "model directories only"
        )
        raise KipoiSpecError(msg)
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"{path}: not valid YAML ({first})"
        raise KipoiSpecError(msg) from None
    if not isinstance(data, dict):
        msg = f"{path}: expected a mapping at the top level, found {type(data).__name__}"
        raise KipoiSpecError(msg)
    return data


def text_of(value: Any) -> str:
    return "" if value is None else str(value).strip()


def names_of(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value if v is not None)
    return (str(value),)


def _labels(value: Any) -> tuple[tuple[str, ...] | None, str | None]:
    """Split ``column_labels`` into inline labels or a labels file (a single ``*.txt``-like entry)."""
    items = names_of(value)
    if not items:
        return None, None
    if len(items) == 1 and re.search(r"\.(txt|tsv|csv|list)$", items[0], re.IGNORECASE):
        return None, items[0]
    return items, None


def _array(name: str, node: Any, where: str) -> ArraySpec:
    if not isinstance(node, dict):
        msg = f"{where}: array {name!r} must be a mapping with a shape, found {node!r}"
        raise KipoiSpecError(msg)
    labels, labels_file = _labels(node.get("column_labels"))
    return ArraySpec(
        name=str(node.get("name") or name),
        shape=parse_shape(node.get("shape")),
        shape_text=text_of(node.get("shape")),
        special_type=text_of(node.get("special_type")) or None,
        associated_metadata=names_of(node.get("associated_metadata")),
        column_labels=labels,
        labels_file=labels_file,
        doc=text_of(node.get("doc")),
    )


def parse_arrays(node: Any, default_name: str, where: str) -> tuple[Form, tuple[ArraySpec, ...]]:
    """Parse a schema's ``inputs`` or ``targets`` (single array, list or dict; nested dicts flattened)."""
    if node is None:
        return "none", ()
    if isinstance(node, dict) and "shape" in node:
        return "single", (_array(default_name, node, where),)
    if isinstance(node, dict):
        out: list[ArraySpec] = []
        for key, value in node.items():
            if isinstance(value, dict) and "shape" not in value and value and all(
                isinstance(v, dict) for v in value.values()
            ):
                out.extend(
                    _array(f"{key}/{sub}", {**v, "name": f"{key}/{sub}"}, where) for sub, v in value.items()
                )
            else:
                node_ = {**value, "name": key} if isinstance(value, dict) else value
                out.append(_array(str(key), node_, where))
        return "dict", tuple(out)
    if isinstance(node, list):
        return "list", tuple(_array(str(i), item, where) for i, item in enumerate(node))
    msg = f"{where}: expected an array, a list or a mapping of arrays, found {node!r}"
    raise KipoiSpecError(msg)


def _use_rc(value: Any, where: str) -> UseRc:
    if isinstance(value, bool):
        return value
    text = text_of(value).lower()
    if text in ("", "none", "false", "no", "0"):
        return False
    if text in ("true", "yes", "1"):
        return True
    if text == "seq_only":
        return "seq_only"
    msg = f"{where}: use_rc must be true, false or seq_only, found {value!r}"
    raise KipoiSpecError(msg)


def _scoring_function(node: Any, where: str) -> ScoringFunctionSpec:
    if not isinstance(node, dict):
        msg = f"{where}: each scoring function must be a mapping, found {node!r}"
        raise KipoiSpecError(msg)
    kind = text_of(node.get("type")).lower()
    kind = _SCORE_ALIASES.get(kind, kind)
    if kind not in (*BUILTIN_SCORES, "custom"):
        msg = (
            f"{where}: unknown scoring function type {node.get('type')!r}; expected one of "
            f"{', '.join((*BUILTIN_SCORES, 'custom'))}"
        )
        raise KipoiSpecError(msg)
    args: list[ScoringArgSpec] = []
    raw_args = node.get("args") or {}
    if not isinstance(raw_args, dict):
        msg = f"{where}: scoring function args must be a mapping, found {raw_args!r}"
        raise KipoiSpecError(msg)
    for arg_name, arg in raw_args.items():
        arg = arg if isinstance(arg, dict) else {"default": arg}
        args.append(ScoringArgSpec(
            name=str(arg_name), default=arg.get("default"),
            optional=bool(arg.get("optional", False)), doc=text_of(arg.get("doc")),
        ))
    return ScoringFunctionSpec(
        type=kind, name=text_of(node.get("name")), default=bool(node.get("default", False)),
        defined_as=text_of(node.get("defined_as")), args=tuple(args),
    )


def find_variant_effects(data: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """Return the raw variant-effect section of a model or dataloader yaml and its form."""
    post = data.get("postprocessing")
    if isinstance(post, dict) and isinstance(post.get("variant_effects"), dict):
        return post["variant_effects"], "postprocessing"
    if isinstance(post, list):
        for item in post:
            kind = text_of(item.get("type")) if isinstance(item, dict) else ""
            if kind in ("variant_effects", "var_effect_prediction"):
                args = item.get("args")
                return (args if isinstance(args, dict) else {}), "postprocessing-list"
    if isinstance(data.get("variant_effects"), dict):
        return data["variant_effects"], "top-level"
    return None, ""


def parse_variant_effects(data: dict[str, Any], where: str) -> VariantEffectSpec | None:
    """Parse the variant-effect section of model.yaml in any of its three forms."""
    raw, form = find_variant_effects(data)
    if raw is None:
        return None
    funcs = raw.get("scoring_functions") or []
    if not isinstance(funcs, list):
        funcs = [funcs]
    return VariantEffectSpec(
        seq_input=names_of(raw.get("seq_input")),
        use_rc=_use_rc(raw.get("use_rc"), where),
        scoring_functions=tuple(_scoring_function(f, where) for f in funcs),
        form=form,
    )


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
        path=model_dir, name=name, kind=kind, model_class=model_class, args=dict(args),
        inputs=inputs, input_form=input_form, targets=targets, target_form=target_form,
        variant_effects=parse_variant_effects(data, where), dataloader=dataloader,
        doc=text_of(info.get("doc")), license=text_of(info.get("license")), notes=tuple(notes),
    )
