"""Parse the array schema of a Kipoi model: ``schema.inputs`` / ``schema.targets`` into :class:`ArraySpec`.

A schema is a single array, a list or a dict of arrays (nested dicts are flattened to
``outer/inner``), each with ``shape``, ``special_type``, ``associated_metadata``, ``column_labels``
(inline, or a labels file relative to the model directory) and ``doc``. The same parser reads a
dataloader's ``output_schema.inputs``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from veff.models.kipoi._yaml import KipoiSpecError, names_of, text_of

__all__ = ["ArraySpec", "Form", "parse_arrays", "parse_shape", "read_labels_file"]

Form = Literal["single", "list", "dict", "none"]


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


def read_labels_file(path: Path) -> tuple[str, ...] | None:
    """Read one label per line (trailing whitespace stripped); None when the file is absent."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    while lines and not lines[-1].strip():
        lines.pop()
    return tuple(line.rstrip() for line in lines)


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
            if (
                isinstance(value, dict)
                and "shape" not in value
                and value
                and all(isinstance(v, dict) for v in value.values())
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
