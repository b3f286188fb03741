"""Mutation-map HDF5 files, format version 2 (written and read with h5py; version 1 is read too).

Layout (see ``docs/mutation_map.md`` for the full description)::

    /                       attrs: format="veff-mutation-map", format_version=1, veff_version,
                                   model, scores (str array), output_labels (str array),
                                   seq_length, rc, centering, query, alphabet="ACGT",
                                   coordinates="0-based half-open", n_entries,
                                   method (naive, fast, saliency, grad_x_input,
                                   integrated_gradients), method_note, method_requested
    /entries/<i>            attrs: chrom, start (0-based), end, strand, seq_input, ref_seq, name
    /entries/<i>/scores/<score>      float32 (L, 4, T): window position x base (A, C, G, T) x
                                     model output; NaN at the reference base (gzip). Gradient
                                     maps hold one array named after the method, all 4 bases set
    /entries/<i>/ref_prediction      float32 (T,): model output for the reference window
    /entries/<i>/variants/{chrom,pos,id,ref,alt}   query variants in the window (pos 1-based;
                                                   alt: ALT alleles joined by ",")

Version 2 added the ``method`` attributes and gradient maps; a version-1 file is read as a
``naive`` ISM map.

Files are written under a temporary name and renamed into place when complete, so a failed or
interrupted run never leaves a half-written map under the requested name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import h5py
import numpy as np

from veff._version import __version__
from veff.errors import InputError
from veff.types import Variant
from veff.writers._atomic import AtomicPath
from veff.writers.targets import check_outputs

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MapEntry",
    "MutationMapFile",
    "MutationMapWriter",
    "load_mutation_map",
]

FORMAT = "veff-mutation-map"
FORMAT_VERSION = 2
READ_VERSIONS = (1, 2)
_STR = h5py.string_dtype()
_VARIANT_FIELDS = ("chrom", "pos", "id", "ref", "alt")
_ENTRY_ATTRS = ("chrom", "start", "end", "ref_seq")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _texts(values: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in np.atleast_1d(values)) if values is not None else ()


@dataclass(frozen=True)
class MapEntry:
    """One window of a mutation map.

    Attributes
    ----------
    index
        Position in the file (``entries/<index>``).
    chrom, start, end
        Window on the genome, 0-based half-open; ``end - start == L``.
    strand
        ``+``, ``-`` or ``.``; on ``-`` the model saw the reverse complement, but positions, bases
        and ``ref_seq`` are always on the forward strand.
    seq_input
        Name of the model input that was mutated.
    name
        The query that produced the window (region string, BED name or variant IDs).
    ref_seq
        Forward-strand reference sequence of the window, length L.
    scores
        Score name -> float32 array of shape (L, 4, T); NaN at the reference base.
    labels
        The T output labels.
    variants
        Query variants whose first REF base lies in the window (``pos`` 1-based).
    ref_prediction
        float32, shape (T,): the model's output for the reference window.
    method
        The method that made the map (the file's ``method`` attribute).
    """

    index: int
    chrom: str
    start: int
    end: int
    strand: str
    seq_input: str
    name: str
    ref_seq: str
    scores: Mapping[str, np.ndarray]
    labels: tuple[str, ...]
    variants: tuple[Variant, ...] = ()
    ref_prediction: np.ndarray | None = None
    method: str = "naive"

    def __len__(self) -> int:
        return self.end - self.start

    def label_index(self, label: str | int | None) -> int:
        """Return the output column of ``label`` (a label or an index; None when T == 1)."""
        if label is None:
            if len(self.labels) == 1:
                return 0
            shown = ", ".join(self.labels[:20])
            msg = f"the map has {len(self.labels)} outputs ({shown}); choose one output label"
            raise InputError(msg)
        text = str(label)
        if text in self.labels:
            return self.labels.index(text)
        if text.lstrip("-").isdigit() and -len(self.labels) <= int(text) < len(self.labels):
            return int(text) % len(self.labels)
        msg = f"output label {text!r} not in the map; labels are {', '.join(self.labels[:20])}"
        raise InputError(msg)


@dataclass(frozen=True)
class _Entries(Sequence[MapEntry]):
    """Entries read from the file on access (one window at a time)."""

    path: Path
    n: int
    labels: tuple[str, ...]
    method: str = "naive"
    scores: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.n

    @overload
    def __getitem__(self, i: int) -> MapEntry: ...

    @overload
    def __getitem__(self, i: slice) -> list[MapEntry]: ...

    def __getitem__(self, i: int | slice) -> MapEntry | list[MapEntry]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self.n))]
        if not isinstance(i, (int, np.integer)):
            msg = f"entries are indexed by int or slice, got {type(i).__name__}"
            raise TypeError(msg)
        k = int(i) + self.n if i < 0 else int(i)
        if not 0 <= k < self.n:
            msg = f"entry {i} out of range; the map has {self.n} entries"
            raise IndexError(msg)
        try:
            with h5py.File(self.path, "r") as fh:
                group = fh["entries"].get(str(k))
                if not isinstance(group, h5py.Group):
                    raise _malformed(self.path, f"entry {k}", f"group entries/{k} is missing")
                return _read_entry(group, k, self.labels, self.method, self.path, self.scores)
        except OSError as exc:  # a damaged file (HDF5 reports it as an OSError)
            msg = f"{self.path}: cannot read entry {k} ({' '.join(str(exc).split())})"
            raise InputError(msg) from None

    def __iter__(self) -> Iterator[MapEntry]:
        for k in range(self.n):
            yield self[k]


@dataclass(frozen=True)
class MutationMapFile:
    """A mutation map file opened by :func:`load_mutation_map`.

    Attributes
    ----------
    path
        The file.
    format_version, veff_version
        Versions recorded in the file.
    model
        Model name.
    scores
        Score names, in the order they were computed.
    labels
        Output labels (the T axis of every score array).
    method
        The method that made the map: ``naive`` or ``fast`` ISM, ``saliency``,
        ``grad_x_input`` or ``integrated_gradients`` (``naive`` for version-1 files).
    attrs
        All root attributes.
    entries
        The windows, read from disk one at a time on access (memory does not grow with the file).
    """

    path: Path
    format_version: int
    veff_version: str
    model: str
    scores: tuple[str, ...]
    labels: tuple[str, ...]
    method: str
    attrs: dict[str, Any] = field(repr=False)
    entries: Sequence[MapEntry] = field(repr=False)

    def __len__(self) -> int:
        return len(self.entries)


def _malformed(path: Path | None, where: str, what: str) -> InputError:
    """The error for a map file that lacks what the format requires (see docs/mutation_map.md)."""
    return InputError(f"{path or 'mutation map'}: {where}: {what} (not a valid veff mutation map)")


def _check_entry(
    g: h5py.Group, index: int, labels: tuple[str, ...], path: Path | None, scores: tuple[str, ...] = ()
) -> None:
    """Raise InputError unless entry ``g`` has the format's attributes, arrays (``scores``) and shapes."""
    where = f"entry {index} (entries/{index})"
    absent = [k for k in _ENTRY_ATTRS if k not in g.attrs]
    if absent:
        raise _malformed(path, where, f"attribute {absent[0]!r} is missing")
    try:
        length = int(g.attrs["end"]) - int(g.attrs["start"])
    except (TypeError, ValueError):
        raise _malformed(path, where, "attributes 'start' and 'end' must be integers") from None
    if length < 1 or len(_text(g.attrs["ref_seq"])) != length:
        raise _malformed(path, where, f"ref_seq must be end - start = {length} bases long")
    held = g.get("scores")
    held = held if isinstance(held, h5py.Group) else {}
    absent = [name for name in scores if name not in held]
    if absent:
        raise _malformed(path, where, f"dataset scores/{absent[0]} is missing")
    for name, ds in held.items():
        want = (length, 4, len(labels))
        if not isinstance(ds, h5py.Dataset) or ds.shape != want:
            found = ds.shape if isinstance(ds, h5py.Dataset) else "a group"
            raise _malformed(path, where, f"scores/{name} must have shape {want} (L, 4, T), found {found}")
    v = g.get("variants")
    if v is not None:
        absent = [k for k in _VARIANT_FIELDS if not isinstance(v.get(k), h5py.Dataset)]
        if absent:
            raise _malformed(path, where, f"dataset variants/{absent[0]} is missing")
        if len({v[k].shape for k in _VARIANT_FIELDS}) != 1:
            raise _malformed(path, where, "the variants/ datasets must have one length")


def _read_entry(
    g: h5py.Group,
    index: int,
    labels: tuple[str, ...],
    method: str = "naive",
    path: Path | None = None,
    scores: tuple[str, ...] = (),
) -> MapEntry:
    _check_entry(g, index, labels, path, scores)
    a = g.attrs
    variants: list[Variant] = []
    if "variants" in g:
        v = g["variants"]
        cols = {k: v[k][()] for k in _VARIANT_FIELDS}
        for k in range(len(cols["pos"])):
            alt = _text(cols["alt"][k])
            variants.append(
                Variant(
                    _text(cols["chrom"][k]),
                    int(cols["pos"][k]),
                    _text(cols["ref"][k]),
                    tuple(alt.split(",")) if alt else (),
                    _text(cols["id"][k]),
                )
            )
    arrays = {name: ds[()] for name, ds in g["scores"].items()} if "scores" in g else {}
    return MapEntry(
        index=index,
        chrom=_text(a["chrom"]),
        start=int(a["start"]),
        end=int(a["end"]),
        strand=_text(a.get("strand", ".")),
        seq_input=_text(a.get("seq_input", "seq")),
        name=_text(a.get("name", "")),
        ref_seq=_text(a["ref_seq"]),
        scores=arrays,
        labels=labels,
        variants=tuple(variants),
        ref_prediction=g["ref_prediction"][()] if "ref_prediction" in g else None,
        method=method,
    )


def load_mutation_map(path: str | os.PathLike[str]) -> MutationMapFile:
    """Open a mutation map written by :class:`veff.MutationMap`.

    Parameters
    ----------
    path
        HDF5 file in the ``veff-mutation-map`` format.

    Returns
    -------
    MutationMapFile
        Metadata, plus ``entries`` read lazily: ``entries[i].scores[score]`` is an (L, 4, T)
        float32 array.

    Raises
    ------
    InputError
        When the file is missing, is not HDF5, is not a veff mutation map, or has a format
        version this veff cannot read.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"{p}: mutation map file not found"
        raise InputError(msg)
    if not h5py.is_hdf5(p):
        msg = f"{p}: not an HDF5 file (expected a veff mutation map)"
        raise InputError(msg)
    try:
        with h5py.File(p, "r") as fh:
            attrs = {k: fh.attrs[k] for k in fh.attrs}
            entries = fh.get("entries")
            n = len(entries) if isinstance(entries, h5py.Group) else -1
            finished = fh.attrs.get("n_entries")  # what the writer finished; a missing group is an error
    except OSError as exc:  # HDF5's signature, but a truncated or damaged file
        msg = f"{p}: cannot read the HDF5 file ({' '.join(str(exc).split())})"
        raise InputError(msg) from None
    fmt = _text(attrs.get("format", ""))
    if fmt != FORMAT:
        found = f"format={fmt!r}" if fmt else "no 'format' attribute"
        msg = f"{p}: not a veff mutation map (expected format={FORMAT!r}, found {found})"
        raise InputError(msg)
    raw = attrs.get("format_version", -1)
    try:
        version, shown = int(raw), str(int(raw))
    except (TypeError, ValueError):
        version, shown = -1, repr(_text(raw))
    if version not in READ_VERSIONS:
        msg = (
            f"{p}: mutation map format version {shown} is not supported by veff "
            f"{__version__} (it reads versions {', '.join(map(str, READ_VERSIONS))})"
        )
        raise InputError(msg)
    for key in ("output_labels", "scores"):
        if key not in attrs:
            raise _malformed(p, "the root", f"attribute {key!r} is missing")
    if n < 0:
        raise _malformed(p, "the root", "group 'entries' is missing")
    if finished is not None:
        try:
            n = max(n, int(np.asarray(finished).item()))
        except (TypeError, ValueError):
            raise _malformed(p, "the root", "attribute 'n_entries' must be an integer") from None
    labels = _texts(attrs.get("output_labels"))
    method = _text(attrs.get("method", "naive"))
    return MutationMapFile(
        path=p,
        format_version=version,
        veff_version=_text(attrs.get("veff_version", "")),
        model=_text(attrs.get("model", "")),
        scores=_texts(attrs.get("scores")),
        labels=labels,
        method=method,
        attrs=attrs,
        entries=_Entries(p, n, labels, method, _texts(attrs.get("scores"))),
    )


_TEARDOWN_UNSAFE = False


def teardown_unsafe() -> bool:
    """Whether a mutation-map file failed to close in this process (see :meth:`MutationMapWriter.abort`)."""
    return _TEARDOWN_UNSAFE


class MutationMapWriter:
    """Write a mutation map window by window (a context manager).

    Parameters
    ----------
    path
        Output ``.h5`` file; written under a temporary name and renamed on :meth:`close`.
    model
        Model name.
    scores
        Score names (one dataset each per entry).
    labels
        Output labels (length T).
    meta
        Further root attributes (``seq_length``, ``rc``, ``centering``, ``query``...).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        model: str,
        scores: Sequence[str],
        labels: Sequence[str],
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        check_outputs({"the mutation map": self.path}, files_only=("the mutation map",))
        self._atomic = AtomicPath(self.path)
        self.tmp = self._atomic.tmp
        self.scores = list(scores)
        self.n_labels = len(labels)
        self._fh = h5py.File(self.tmp, "w")
        try:
            a = self._fh.attrs
            a["format"] = FORMAT
            a["format_version"] = FORMAT_VERSION
            a["veff_version"] = __version__
            a["model"] = model
            a["scores"] = np.array(self.scores, dtype=object).astype(_STR)
            a["output_labels"] = np.array(list(labels), dtype=object).astype(_STR)
            a["alphabet"] = "ACGT"
            a["coordinates"] = "0-based half-open"
            for key, value in (meta or {}).items():
                a[key] = value
            self._entries = self._fh.create_group("entries")
        except BaseException:
            self.abort()
            raise
        self.n_entries = 0

    def add_entry(
        self,
        *,
        chrom: str,
        start: int,
        end: int,
        strand: str,
        seq_input: str,
        ref_seq: str,
        name: str,
        variants: Sequence[Variant] = (),
    ) -> h5py.Group:
        """Create ``entries/<i>`` with its score datasets (filled with NaN) and return it."""
        g = self._entries.create_group(str(self.n_entries))
        self.n_entries += 1
        for key, value in (
            ("chrom", chrom),
            ("start", int(start)),
            ("end", int(end)),
            ("strand", strand),
            ("seq_input", seq_input),
            ("ref_seq", ref_seq),
            ("name", name),
        ):
            g.attrs[key] = value
        length, t = end - start, self.n_labels
        rows = max(1, min(length, 2**20 // max(1, 16 * t)))
        sg = g.create_group("scores")
        for s in self.scores:
            sg.create_dataset(
                s,
                shape=(length, 4, t),
                dtype="f4",
                chunks=(rows, 4, t),
                compression="gzip",
                compression_opts=4,
                shuffle=True,
                fillvalue=np.float32(np.nan),
            )
        vg = g.create_group("variants")
        vg.create_dataset("chrom", data=np.array([v.chrom for v in variants], dtype=object), dtype=_STR)
        vg.create_dataset("pos", data=np.array([v.pos for v in variants], dtype=np.int64))
        for key in ("id", "ref"):
            vg.create_dataset(
                key, data=np.array([getattr(v, key) for v in variants], dtype=object), dtype=_STR
            )
        vg.create_dataset(
            "alt", data=np.array([",".join(v.alts) for v in variants], dtype=object), dtype=_STR
        )
        return g

    def set_method(self, method: str, note: str) -> None:
        """Record the method that made the map and why (root attributes ``method``, ``method_note``)."""
        self._fh.attrs["method"] = method
        self._fh.attrs["method_note"] = note

    def close(self) -> None:
        """Finish the file and move it into place (or remove it, when finishing fails)."""
        global _TEARDOWN_UNSAFE
        try:
            self._fh.attrs["n_entries"] = self.n_entries
            try:
                self._fh.close()
            except OSError:
                _TEARDOWN_UNSAFE = True
                raise
            self._atomic.commit()
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Close and delete the temporary file.

        When HDF5 cannot finish the file (a full disk fails its last flush), the library keeps a
        half-closed file that crashes its own clean-up at interpreter exit; :func:`teardown_unsafe`
        then says so, and the command line leaves without that clean-up.
        """
        global _TEARDOWN_UNSAFE
        try:
            self._fh.close()
        except OSError:
            _TEARDOWN_UNSAFE = True
            raise
        finally:
            self._atomic.discard()

    def __enter__(self) -> MutationMapWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
