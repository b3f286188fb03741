"""The model's default dataloader, read from model.yaml ``default_dataloader`` and dataloader.yaml.

Three sources are told apart: the kipoiseq dataloaders ``SeqIntervalDl`` / ``StringSeqIntervalDl``
(named in model.yaml or aliased by a dataloader.yaml; veff builds their output itself, with their
shape following from ``auto_resize_len``, ``alphabet_axis`` and ``dummy_axis``), a local
dataloader.yaml with its Python file (``default_dataloader: .``, ``..``, ``../other``), and a dotted
name veff cannot see. ``postprocessing.variant_effects.bed_input`` (any of the three yaml forms)
names the arguments that take a BED of regions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from veff.models.kipoi.spec import ArraySpec, find_variant_effects, load_yaml, names_of, parse_arrays, text_of

__all__ = ["KIPOISEQ_DATALOADERS", "DataloaderSpec", "kipoiseq_input_shape", "parse_dataloader"]

KIPOISEQ_DATALOADERS = ("SeqIntervalDl", "StringSeqIntervalDl")


@dataclass(frozen=True)
class DataloaderSpec:
    """The model's default dataloader.

    Attributes
    ----------
    source
        ``kipoiseq`` (SeqIntervalDl / StringSeqIntervalDl, which veff replaces by its own sequence
        builder), ``local`` (a dataloader.yaml + Python file in or near the model directory) or
        ``python`` (a dotted name veff cannot see).
    defined_as
        As written: ``kipoiseq.dataloaders.SeqIntervalDl``, ``dataloader.py::SeqDataset``...
    path
        Directory of dataloader.yaml (local dataloaders), else None.
    default_args
        ``default_args`` (kipoiseq) or the ``default`` values of the declared args.
    arg_names
        Names of the declared arguments.
    bed_input
        Arguments that take a BED file of regions (``postprocessing.variant_effects.bed_input``).
    inputs
        ``output_schema.inputs`` (derived from ``default_args`` for kipoiseq dataloaders).
    kind
        dataloader.yaml ``type``: ``Dataset`` (the default), ``PreloadedDataset``,
        ``SampleIterator``, ``SampleGenerator``, ``BatchIterator``, ``BatchGenerator``,
        ``BatchDataset``.
    """

    source: Literal["kipoiseq", "local", "python"]
    defined_as: str
    path: Path | None = None
    default_args: dict[str, Any] = field(default_factory=dict)
    arg_names: tuple[str, ...] = ()
    bed_input: tuple[str, ...] = ()
    inputs: tuple[ArraySpec, ...] = ()
    kind: str = "Dataset"

    @property
    def kipoiseq_class(self) -> str | None:
        """``SeqIntervalDl`` or ``StringSeqIntervalDl`` for kipoiseq dataloaders, else None."""
        if self.source != "kipoiseq":
            return None
        tail = re.split(r"[.:]", self.defined_as)[-1]
        return tail if tail in KIPOISEQ_DATALOADERS else None


def kipoiseq_input_shape(
    length: int | None, alphabet_axis: int = 1, dummy_axis: int | None = None, alphabet_size: int = 4
) -> tuple[int | None, ...]:
    """Per-sample shape of kipoiseq ``SeqIntervalDl`` output (``ReorderedOneHot.get_output_shape``)."""
    shape: tuple[int | None, ...] = (length, alphabet_size)
    existing = 2 if dummy_axis is not None and dummy_axis < 2 else 1
    target = None if existing == alphabet_axis else alphabet_axis
    if dummy_axis is not None:
        shape = (*shape[:dummy_axis], 1, *shape[dummy_axis:])
    if target is not None:
        lst = list(shape)
        lst[target], lst[existing] = lst[existing], lst[target]
        shape = tuple(lst)
    return shape


def _kipoiseq_dataloader(defined_as: str, default_args: dict[str, Any], path: Path | None) -> DataloaderSpec:
    cls = re.split(r"[.:]", defined_as)[-1]
    length = default_args.get("auto_resize_len")
    if not (isinstance(length, int) or (isinstance(length, str) and length.isdigit())):
        length = None
    length = int(length) if length is not None else None
    if cls == "StringSeqIntervalDl":
        inp = ArraySpec("seq", (), "()", "DNAStringSeq", ("ranges",))
    else:
        try:
            shape = kipoiseq_input_shape(
                length,
                int(default_args.get("alphabet_axis", 1)),
                None if default_args.get("dummy_axis") is None else int(default_args["dummy_axis"]),
                len(default_args.get("alphabet") or "ACGT"),
            )
        except (TypeError, ValueError):
            shape = None
        inp = ArraySpec("seq", shape, str(shape), "DNASeq", ("ranges",))
    return DataloaderSpec(
        source="kipoiseq",
        defined_as=defined_as,
        path=path,
        default_args=dict(default_args),
        arg_names=("intervals_file", "fasta_file", *default_args),
        bed_input=("intervals_file",),
        inputs=(inp,),
    )


def parse_dataloader(model_dir: Path, value: Any) -> tuple[DataloaderSpec | None, list[str]]:
    """Resolve model.yaml ``default_dataloader`` into a :class:`DataloaderSpec` (plus notes)."""
    notes: list[str] = []
    if isinstance(value, dict):
        defined_as = text_of(value.get("defined_as"))
        default_args = value.get("default_args") or {}
        if not isinstance(default_args, dict):
            default_args = {}
        if defined_as.startswith("kipoiseq"):
            return _kipoiseq_dataloader(defined_as, default_args, None), notes
        return DataloaderSpec("python", defined_as, default_args=dict(default_args)), notes
    text = text_of(value) or "."
    dl_dir = model_dir if text in (".", "./") else model_dir / text
    if not text.startswith("kipoiseq") and (dl_dir / "dataloader.yaml").is_file():
        return _local_dataloader(dl_dir), notes
    if text.startswith("kipoiseq"):
        return _kipoiseq_dataloader(text, {}, None), notes
    notes.append(f"default_dataloader {text!r}: no dataloader.yaml found")
    return None, notes


def _local_dataloader(dl_dir: Path) -> DataloaderSpec:
    data = load_yaml(dl_dir / "dataloader.yaml")
    where = str(dl_dir / "dataloader.yaml")
    defined_as = text_of(data.get("defined_as"))
    args = data.get("args") or {}
    args = args if isinstance(args, dict) else {}
    defaults = {
        str(k): v["default"] for k, v in args.items() if isinstance(v, dict) and v.get("default") is not None
    }
    if isinstance(data.get("default_args"), dict):
        defaults.update(data["default_args"])
    if defined_as.startswith("kipoiseq"):
        return _kipoiseq_dataloader(defined_as, defaults, dl_dir)
    schema = data.get("output_schema") or {}
    _, inputs = parse_arrays(schema.get("inputs") if isinstance(schema, dict) else None, "seq", where)
    raw, _ = find_variant_effects(data)
    return DataloaderSpec(
        source="local",
        defined_as=defined_as,
        path=dl_dir,
        default_args=defaults,
        arg_names=tuple(str(k) for k in args),
        bed_input=names_of((raw or {}).get("bed_input")),
        inputs=inputs,
        kind=text_of(data.get("type")) or "Dataset",
    )
