"""Run a Kipoi model directory's own dataloader (``dataloader.py``) and read back its samples.

A local dataloader is the class (or function) named by dataloader.yaml ``defined_as``. veff
imports it from the dataloader directory (with stand-ins for ``kipoi.data`` / ``kipoi.metadata``
when kipoi is not installed), builds it with the user's arguments and reads its samples according
to the yaml ``type``:

- ``Dataset`` (the default): ``len(ds)`` and ``ds[i]``, one sample each;
- ``SampleIterator`` / ``SampleGenerator``: iterating yields samples;
- ``BatchIterator`` / ``BatchGenerator`` / ``BatchDataset``: iterating (or indexing) yields batches,
  which are split into samples;
- ``PreloadedDataset``: one call returns every sample as one batch.

A sample is ``{"inputs": ..., "metadata": {...}}``; the DNA input's ``associated_metadata`` field
(a ``GenomicRanges``: an object or a dict with ``chr``, ``start`` (0-based), ``end``, ``id``,
``strand``) says where its sequence lies on the genome.

Arguments
---------
:func:`read_dataloader_args` reads ``--dataloader-args``: a JSON object, a path to a JSON or YAML
file holding one, or ``key=value`` tokens. Relative paths among the values are resolved against
the current directory (the dataloader runs with the dataloader directory as working directory,
as kipoi ran it). :func:`open_dataloader` fills an argument called ``fasta_file`` with veff's
``--fasta`` when the user does not give one, and rejects an unknown argument with a one-line error
naming the arguments the dataloader accepts.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from veff.errors import InputError, ModelError
from veff.models.kipoi._compat import import_object, in_directory, kipoi_stand_ins
from veff.models.kipoi.dataloader import DataloaderSpec

__all__ = ["SampleRange", "iter_samples", "open_dataloader", "read_dataloader_args", "sample_range"]

_BATCH_KINDS = ("BatchIterator", "BatchGenerator", "BatchDataset", "PreloadedDataset")


@dataclass(frozen=True)
class SampleRange:
    """Where a sample's sequence lies: 0-based half-open ``[start, end)`` on ``chrom``.

    ``strand`` is ``-`` when the dataloader reverse-complemented the sequence, else ``+``/``.``/``*``.
    """

    chrom: str
    start: int
    end: int
    strand: str = "."
    id: str = ""


def _resolve_paths(args: dict[str, Any], base: Path) -> dict[str, Any]:
    out = {}
    for key, value in args.items():
        if isinstance(value, str) and value and not Path(value).is_absolute() and (base / value).exists():
            value = str((base / value).resolve())
        out[str(key)] = value
    return out


def read_dataloader_args(value: str | Path | dict[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """Read ``--dataloader-args`` into a dict; relative paths among the values become absolute.

    Parameters
    ----------
    value
        None; a dict; a JSON object string; a path to a ``.json`` / ``.yaml`` / ``.yml`` file
        holding an object; or ``key=value`` tokens (a string or a sequence of them). Values of
        ``key=value`` tokens are read as YAML scalars (``5`` is an int, ``true`` a bool).

    Raises
    ------
    InputError
        When the text or file does not hold a mapping.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return _resolve_paths(value, Path.cwd())
    tokens = [str(value)] if isinstance(value, (str, Path)) else [str(v) for v in value]
    if len(tokens) == 1 and tokens[0].lstrip().startswith("{"):
        try:
            data = json.loads(tokens[0])
        except json.JSONDecodeError as exc:
            msg = f"--dataloader-args: not valid JSON ({exc.msg} at char {exc.pos}): {tokens[0]!r}"
            raise InputError(msg) from None
    elif len(tokens) == 1 and "=" not in tokens[0]:
        path = Path(tokens[0]).expanduser()
        if not path.is_file():
            msg = f"--dataloader-args: {tokens[0]!r} is neither a JSON object, key=value pairs nor a file"
            raise InputError(msg)
        try:
            data = yaml.safe_load(path.read_text())  # YAML reads JSON too
        except yaml.YAMLError as exc:
            msg = f"{path}: not valid JSON or YAML ({str(exc).splitlines()[0]})"
            raise InputError(msg) from None
        if not isinstance(data, dict):
            msg = f"{path}: expected a mapping of dataloader arguments, found {type(data).__name__}"
            raise InputError(msg)
    else:
        data = {}
        for tok in (t for text in tokens for t in text.split()):
            key, sep, raw = tok.partition("=")
            if not sep or not key:
                msg = f"--dataloader-args: expected key=value, got {tok!r}"
                raise InputError(msg)
            data[key] = yaml.safe_load(raw) if raw else ""
    if not isinstance(data, dict):
        msg = f"--dataloader-args: expected a JSON object, found {type(data).__name__}"
        raise InputError(msg)
    return _resolve_paths(data, Path.cwd())


def _accepted(obj: Any, dl: DataloaderSpec) -> tuple[list[str], list[str], bool]:
    """(accepted names, required names, takes **kwargs) of a dataloader class or function."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return list(dl.arg_names), [], True
    names, required, var_kw = [], [], False
    for p in params.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not inspect.Parameter.VAR_POSITIONAL and p.name != "self":
            names.append(p.name)
            if p.default is inspect.Parameter.empty:
                required.append(p.name)
    return names, required, var_kw


def open_dataloader(
    dl: DataloaderSpec, args: dict[str, Any], *, fasta: str | os.PathLike[str] | None = None
) -> Any:
    """Import the dataloader and build it with ``args`` (see the module docstring).

    Raises
    ------
    InputError
        For an argument the dataloader does not take or a required one that is missing (the
        message lists the accepted arguments).
    ModelError
        When the dataloader cannot be imported or fails while it is built.
    """
    if dl.source != "local" or dl.path is None:
        msg = f"dataloader {dl.defined_as!r} is not a local dataloader.py veff can run"
        raise ModelError(msg)
    obj = import_object(dl.defined_as, dl.path)
    names, required, var_kw = _accepted(obj, dl)
    given = dict(args)
    if fasta is not None and "fasta_file" in names and "fasta_file" not in given:
        given["fasta_file"] = str(Path(fasta).resolve())
    for key, value in _resolve_paths(dl.default_args, dl.path).items():
        if key in names and key not in given and key in required:
            given[key] = value
    accepted = ", ".join(names) or "none"
    unknown = [k for k in given if k not in names and not var_kw]
    if unknown:
        msg = f"dataloader {dl.defined_as}: unknown argument {unknown[0]!r}; it accepts {accepted}"
        raise InputError(msg)
    missing = [k for k in required if k not in given]
    if missing:
        msg = (
            f"dataloader {dl.defined_as}: argument {missing[0]!r} is required; give it with "
            f"--dataloader-args (accepted: {accepted})"
        )
        raise InputError(msg)
    try:
        with in_directory(dl.path), kipoi_stand_ins():
            return obj(**given)
    except (InputError, ModelError):
        raise
    except Exception as exc:
        msg = f"dataloader {dl.defined_as} failed to start: {type(exc).__name__}: {exc}"
        raise ModelError(msg.splitlines()[0]) from exc


def _split_batch(batch: Any, n: int | None = None) -> list[Any]:
    """Split a collated batch (nested dicts / lists of arrays) into ``n`` samples."""

    def length(x: Any) -> int | None:
        if isinstance(x, dict):
            return next((m for m in map(length, x.values()) if m is not None), None)
        if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (str, int, float)):
            return next((m for m in map(length, x) if m is not None), None)
        return len(x) if hasattr(x, "__len__") and not isinstance(x, str) else None

    def pick(x: Any, i: int) -> Any:
        if isinstance(x, dict):
            return {k: pick(v, i) for k, v in x.items()}
        if isinstance(x, (list, tuple)) and x and not isinstance(x[0], (str, int, float)):
            return [pick(v, i) for v in x]
        return x[i] if hasattr(x, "__getitem__") and not isinstance(x, str) else x

    size = n if n is not None else length(batch.get("inputs") if isinstance(batch, dict) else batch)
    return [pick(batch, i) for i in range(size or 0)]


def iter_samples(dl: DataloaderSpec, obj: Any) -> Iterator[dict[str, Any]]:
    """Yield the samples of a built dataloader (batches are split), in the dataloader's order.

    Raises
    ------
    ModelError
        When the dataloader fails while producing a sample.
    """
    try:
        if dl.kind in _BATCH_KINDS:
            batches = [obj] if dl.kind == "PreloadedDataset" and isinstance(obj, dict) else obj
            for batch in batches:
                yield from _split_batch(batch)
        elif hasattr(obj, "__getitem__") and hasattr(obj, "__len__") and not isinstance(obj, dict):
            for i in range(len(obj)):
                yield obj[i]
        else:
            yield from obj
    except (InputError, ModelError):
        raise
    except Exception as exc:
        msg = f"dataloader {dl.defined_as} failed: {type(exc).__name__}: {exc}"
        raise ModelError(msg.splitlines()[0]) from exc


def _field(meta: Any, *names: str) -> Any:
    for name in names:
        if isinstance(meta, dict) and name in meta:
            return meta[name]
        if not isinstance(meta, dict) and hasattr(meta, name):
            return getattr(meta, name)
    return None


def _scalar(x: Any) -> Any:
    arr = np.asarray(x)
    return arr.reshape(-1)[0] if arr.size else None


def sample_range(sample: dict[str, Any], field: str | None) -> SampleRange:
    """Read a sample's ``metadata[field]`` ranges (the first metadata field when ``field`` is None).

    Raises
    ------
    ModelError
        When the sample has no such metadata or it lacks ``chr`` / ``start`` / ``end``.
    """
    meta = sample.get("metadata") if isinstance(sample, dict) else None
    if not isinstance(meta, dict) or not meta:
        msg = "dataloader sample has no metadata; veff needs GenomicRanges to place variants"
        raise ModelError(msg)
    ranges = meta.get(field) if field is not None else next(iter(meta.values()))
    if ranges is None and field is not None and len(meta) == 1:
        ranges = next(iter(meta.values()))
    chrom, start, end = (_field(ranges, *n) for n in (("chr", "chrom"), ("start",), ("end", "stop")))
    if chrom is None or start is None or end is None:
        msg = f"dataloader sample metadata {field or ''!r} lacks chr/start/end: {ranges!r}"[:300]
        raise ModelError(msg)
    strand = _scalar(_field(ranges, "strand"))
    rid = _scalar(_field(ranges, "id"))
    return SampleRange(
        str(_scalar(chrom)),
        int(_scalar(start)),
        int(_scalar(end)),
        "." if strand is None else str(strand),
        "" if rid is None else str(rid),
    )
