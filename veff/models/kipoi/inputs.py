"""Which input of a Kipoi model holds the DNA, and how veff builds it (from the yaml files).

Rules, in order: ``variant_effects.seq_input``; inputs with ``special_type: DNASeq`` /
``DNAStringSeq``; the only untyped input whose shape has one axis of 4 (kipoi-veff's default);
an (L, 4 + k) input documented as the DNA sequence plus other channels or tracks (FactorNet's
convention: channels 0-3 are one-hot A, C, G, T, the k others signal tracks from the dataloader).
An input that is the reverse complement of the DNA input (same shape; named ``<name>_rc``, located
by ``<metadata>_rc``, or documented as reverse-complemented) is its twin, rebuilt by veff, not a
second DNA input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from veff.errors import ModelError
from veff.models.base import InputLayout
from veff.models.kipoi.spec import ArraySpec, ModelSpec

__all__ = ["DnaInput", "StringShape", "Unsupported", "dna_arrays", "dna_input", "layout_of", "special_type"]

StringShape = Literal["scalar", "wrapped", "chars"]


class Unsupported(Exception):
    """A model veff cannot run; the message says why."""


@dataclass(frozen=True)
class DnaInput:
    """The model input veff builds from the (mutated) sequence.

    Attributes
    ----------
    name
        Input name in the model schema.
    string
        Whether it takes strings (``DNAStringSeq``) rather than one-hot arrays.
    string_shape
        ``scalar`` (one string per sample, shape ``()``), ``wrapped`` (shape ``(1,)``) or ``chars``
        (an array of characters, shape ``(L,)``); None for one-hot inputs.
    layout
        Layout of a one-hot input (None for strings).
    length
        Sequence length L, or None when the model takes any length.
    channel_order
        Indices into A, C, G, T giving the model's alphabet order (None for ACGT).
    dtype
        numpy dtype name the dataloader would produce (None: float32).
    tracks
        Channels after the four DNA channels on the last axis (signal tracks such as DNase or
        mappability, made by the dataloader and passed through); 0 for a plain one-hot input.
    rc_twin
        Name of an input that holds the reverse complement of this one (positions reversed,
        DNA channels complemented, track channels reversed), built by veff from the same
        mutated sequence; None when there is none.
    """

    name: str
    string: bool = False
    string_shape: StringShape | None = None
    layout: InputLayout | None = None
    length: int | None = None
    channel_order: tuple[int, ...] | None = None
    dtype: str | None = None
    tracks: int = 0
    rc_twin: str | None = None


def dl_input_of(spec: ModelSpec, arr: ArraySpec) -> ArraySpec | None:
    """The dataloader's output-schema entry for a model input (same name, or both single)."""
    dl = spec.dataloader
    if dl is None:
        return None
    for other in dl.inputs:
        if other.name == arr.name:
            return other
    return dl.inputs[0] if len(dl.inputs) == 1 and len(spec.inputs) == 1 else None


def special_type(spec: ModelSpec, arr: ArraySpec) -> str | None:
    """``special_type`` from model.yaml, else from dataloader.yaml (kipoi-veff read the latter)."""
    if arr.special_type:
        return arr.special_type
    other = dl_input_of(spec, arr)
    return other.special_type if other is not None else None


def layout_of(shape: tuple[int | None, ...] | None) -> InputLayout | None:
    """The one-hot layout of a schema shape, or None when it is not one (no axis of 4...)."""
    if shape is None:
        return None
    try:
        return InputLayout.parse(shape)
    except ModelError:
        return None


def dna_arrays(spec: ModelSpec, notes: list[str]) -> list[ArraySpec]:
    """The inputs holding DNA, by the rules of the module docstring (notes say which rule applied)."""
    ve = spec.variant_effects
    if ve is not None and ve.seq_input:
        found = []
        for name in ve.seq_input:
            arr = spec.input(name)
            typed = [a for a in spec.inputs if special_type(spec, a) in ("DNASeq", "DNAStringSeq")]
            if arr is None and len(ve.seq_input) == 1 and len(typed) == 1:
                notes.append(
                    f"seq_input {name!r} is not a model input; using the DNA input {typed[0].name!r}"
                )
                arr = typed[0]
            if arr is None:
                names = ", ".join(a.name for a in spec.inputs) or "none"
                msg = f"seq_input {name!r} is not a model input (inputs: {names})"
                raise Unsupported(msg)
            found.append(arr)
        return found
    typed = [a for a in spec.inputs if special_type(spec, a) in ("DNASeq", "DNAStringSeq")]
    typed = _without_twins(spec, typed)
    if typed:
        return typed
    untyped = [a for a in spec.inputs if special_type(spec, a) is None and layout_of(a.shape) is not None]
    single = _without_twins(spec, untyped)
    if len(single) == 1 and len(spec.inputs) == len(untyped):
        notes.append(f"input {single[0].name!r} has no special_type; read as DNASeq (kipoi-veff's default)")
        return single
    tracked = [a for a in spec.inputs if _track_channels(spec, a) and not _REVERSED_DOC.match(a.doc)]
    if len(tracked) == 1:
        arr = tracked[0]
        notes.append(
            f"input {arr.name!r} {arr.shape_text}: DNA one-hot (A, C, G, T) in channels 0-3 and "
            f"{_track_channels(spec, arr)} signal channels from the dataloader (read from its doc)"
        )
    return tracked


_TRACKS_DOC = re.compile(r".*\bDNA sequence\b.*\b(channels?|tracks?)\b", re.IGNORECASE | re.DOTALL)
_REVERSED_DOC = re.compile(r"\s*reverse[- ]?complement", re.IGNORECASE)


def _track_channels(spec: ModelSpec, arr: ArraySpec) -> int:
    """Signal channels after the DNA in an (L, 4 + k) input whose doc says it holds both, else 0.

    This is FactorNet's convention (``DNA sequence and other big-wig channels``): the first four
    channels of the last axis are the one-hot DNA, the others come from bigwig files.
    """
    shape = arr.shape
    if special_type(spec, arr) is not None or shape is None or len(shape) != 2:
        return 0
    if shape[1] is None or shape[1] <= 4 or not _TRACKS_DOC.match(arr.doc):
        return 0
    return int(shape[1]) - 4


def _without_twins(spec: ModelSpec, arrays: list[ArraySpec]) -> list[ArraySpec]:
    """``arrays`` less those that are the reverse-complement twin of another one."""
    twins = {_rc_twin(spec, a) for a in arrays if not _REVERSED_DOC.match(a.doc)}
    return [a for a in arrays if a.name not in twins]


def _rc_twin(spec: ModelSpec, arr: ArraySpec) -> str | None:
    """The input holding the reverse complement of ``arr``, else None.

    It has the same shape and is named ``<name>_rc``, located by ``<metadata>_rc``, or documented
    as reverse-complemented.
    """
    metas = {f"{m}_rc" for m in arr.associated_metadata}
    for other in spec.inputs:
        if other.name == arr.name or other.shape != arr.shape:
            continue
        if (
            other.name == f"{arr.name}_rc"
            or metas & set(other.associated_metadata)
            or _REVERSED_DOC.match(other.doc)
        ):
            return other.name
    return None


def _channel_order(alphabet: Any) -> tuple[int, ...] | None:
    letters = [str(c).upper().replace("U", "T") for c in (alphabet if alphabet is not None else "ACGT")]
    if sorted(letters) != ["A", "C", "G", "T"]:
        msg = f"alphabet {alphabet!r} is not an order of A, C, G, T"
        raise Unsupported(msg)
    order = tuple("ACGT".index(c) for c in letters)
    return None if order == (0, 1, 2, 3) else order


def dna_input(spec: ModelSpec, arr: ArraySpec) -> DnaInput:
    """How veff builds DNA input ``arr``: strings or one-hot, layout, length, alphabet, tracks, twin.

    Raises
    ------
    Unsupported
        When its special type or shape is one veff cannot build.
    """
    dl_arr = dl_input_of(spec, arr)
    shape = arr.shape if arr.shape is not None else (dl_arr.shape if dl_arr is not None else None)
    special = special_type(spec, arr) or "DNASeq"
    dl = spec.dataloader
    args = dl.default_args if dl is not None else {}
    resize = args.get("auto_resize_len") if dl is not None and dl.source == "kipoiseq" else None
    if special == "DNAStringSeq":
        if shape is None or len(shape) == 0:
            kind: StringShape = "scalar"
        elif shape == (1,):
            kind = "wrapped"
        elif len(shape) == 1:
            kind = "chars"
        else:
            msg = (
                f"DNAStringSeq input {arr.name!r} has shape {arr.shape_text or shape}; "
                "expected (), (1,) or (L,)"
            )
            raise Unsupported(msg)
        length = shape[0] if kind == "chars" and shape else None
        return DnaInput(
            arr.name, string=True, string_shape=kind, length=length or (int(resize) if resize else None)
        )
    if special != "DNASeq":
        msg = f"DNA input {arr.name!r} has special_type {special!r}; expected DNASeq or DNAStringSeq"
        raise Unsupported(msg)
    tracks = _track_channels(spec, arr)
    layout = InputLayout(("L", "4")) if tracks else layout_of(shape)
    if layout is None:
        msg = (
            f"DNA input {arr.name!r} has shape {arr.shape_text or shape}; expected one axis of 4 "
            "(A, C, G, T), one sequence axis and dummy axes of 1"
        )
        raise Unsupported(msg)
    length = next((d for d, a in zip(shape or (), layout.axes, strict=False) if a == "L"), None)
    if length is None and dl_arr is not None and dl_arr.shape is not None:
        dl_layout = layout_of(dl_arr.shape)
        if dl_layout is not None:
            length = next((d for d, a in zip(dl_arr.shape, dl_layout.axes, strict=False) if a == "L"), None)
    kipoiseq = dl is not None and dl.source == "kipoiseq"
    dtype = args.get("dtype") if kipoiseq else None
    return DnaInput(
        arr.name,
        layout=layout,
        length=length or (int(resize) if resize else None),
        channel_order=_channel_order(args.get("alphabet")) if kipoiseq else None,
        dtype=str(dtype) if dtype else None,
        tracks=tracks,
        rc_twin=_rc_twin(spec, arr),
    )
