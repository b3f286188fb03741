"""Model outputs: their structure (heads, position axes) and how variant scores are computed from them.

A model returns one array or several named arrays ("heads", e.g. BPNet's profile and counts).
Each head is either

* a **scalar head**, shape (N, T): one value per task, or
* a **profile head**, shape (N, P, T): a track of ``P`` output positions per task (SpliceAI,
  BPNet, keras_dna target windows).

The prediction engine (:mod:`veff.predict`) keeps every batch as one flat float32 array of shape
(N, F), the heads flattened and concatenated in order; :class:`OutputSpec` knows how to split it
back. Scores always come out as (N, T_total) with one column per task of every head, so writers
never see positions.

Output position ``j`` of a profile head looks at input position ``j + offset``; the offset is
``(L - P) // 2`` (a centred crop, as SpliceAI's context on each side) unless the model or the user
(``--output-offset``) says otherwise.

How a profile becomes one value per task (see docs/scores.md, "Position-resolved models"):

1. reverse-complement predictions are flipped back to forward orientation;
2. the alt track is aligned to the reference track (:func:`align_alt`): reference positions
   deleted by the variant have no alt value (NaN, left out), inserted positions are dropped;
3. a per-position score (``diff``, ``logit``, ...) is computed and merged over strands, or a
   profile score (``logfc``, ``jsd``) is computed per strand and merged;
4. per-position values are reduced over the positions the :class:`Aggregation` selects.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veff.errors import InputError, ModelError
from veff.scores import ScoreJob

__all__ = [
    "AGGREGATE_REDUCERS",
    "Aggregation",
    "OutputHead",
    "OutputSpec",
    "align_alt",
    "flatten_output",
    "score_predictions",
    "select_columns",
    "unflip_rc",
]

AGGREGATE_REDUCERS = ("max_abs", "max", "min", "mean", "sum")


def _heads_of(out: Any) -> list[tuple[str, np.ndarray]]:
    """Return the named arrays of one raw model output (array, list/tuple or dict)."""
    if isinstance(out, dict):
        return [(str(k), np.asarray(v, dtype=np.float32)) for k, v in out.items()]
    if isinstance(out, (list, tuple)):
        return [(str(k), np.asarray(v, dtype=np.float32)) for k, v in enumerate(out)]
    return [("", np.asarray(out, dtype=np.float32))]


def flatten_output(out: Any, n: int) -> np.ndarray:
    """Flatten a raw model output for a batch of ``n`` sequences to float32 (n, F).

    Raises
    ------
    ModelError
        When an output's first axis is not the batch.
    """
    arrays = []
    for name, arr in _heads_of(out):
        if arr.ndim == 0 or arr.shape[0] != n:
            label = f"output {name!r} has" if name else "model returned"
            msg = f"{label} shape {arr.shape} for a batch of {n} sequences"
            raise ModelError(msg)
        arrays.append(arr.reshape(n, -1))
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=1)


@dataclass(frozen=True)
class OutputHead:
    """One model output.

    Attributes
    ----------
    name
        Head name ("" for a model with a single unnamed output).
    tasks
        Number of tasks T (last axis).
    positions
        Output positions P of a profile head, or None for a scalar head.
    """

    name: str
    tasks: int
    positions: int | None = None

    @property
    def size(self) -> int:
        """Flat width of the head, ``P * T``."""
        return self.tasks * (self.positions or 1)


@dataclass(frozen=True)
class OutputSpec:
    """The heads of a model's output and where profile positions sit in the input window.

    Attributes
    ----------
    heads
        The heads, in flat order.
    input_length
        Model input length L.
    offset
        Input index of output position 0 for every profile head, or None for a centred crop.
    """

    heads: tuple[OutputHead, ...]
    input_length: int
    offset: int | None = None

    @classmethod
    def from_output(
        cls,
        out: Any,
        input_length: int,
        *,
        offset: int | None = None,
        profile_heads: Sequence[str] = (),
    ) -> OutputSpec:
        """Learn the heads from one raw model output of a batch of 1.

        Arrays of shape (1, P, T) are profile heads; (1, T) are scalar heads unless named in
        ``profile_heads`` (then (1, P) is a one-task profile). Larger ranks are refused.
        """
        heads = []
        for name, arr in _heads_of(out):
            shape = arr.shape[1:]
            if len(shape) == 0:
                heads.append(OutputHead(name, 1))
            elif len(shape) == 1:
                if name in profile_heads or (name == "" and "" in profile_heads):
                    heads.append(OutputHead(name, 1, int(shape[0])))
                else:
                    heads.append(OutputHead(name, int(shape[0])))
            elif len(shape) == 2:
                heads.append(OutputHead(name, int(shape[1]), int(shape[0])))
            else:
                label = f"output {name!r}" if name else "the model output"
                msg = f"{label} has per-sequence shape {shape}; expected (T,) or (positions, T)"
                raise ModelError(msg)
        spec = cls(tuple(heads), int(input_length), offset)
        for h in spec.heads:
            off = spec.head_offset(h)
            if h.positions is not None and (off < 0 or off + h.positions > input_length):
                msg = (
                    f"{h.positions} output positions from input index {off} do not fit an input of "
                    f"{input_length}; check --output-offset"
                )
                raise InputError(msg)
        return spec

    @property
    def is_profile(self) -> bool:
        """Whether any head has a position axis."""
        return any(h.positions is not None for h in self.heads)

    @property
    def width(self) -> int:
        """Flat width F of a prediction row."""
        return sum(h.size for h in self.heads)

    @property
    def tasks(self) -> int:
        """Number of score columns (tasks of every head)."""
        return sum(h.tasks for h in self.heads)

    def head_offset(self, head: OutputHead) -> int:
        """Input index of output position 0 of a profile head."""
        if self.offset is not None:
            return self.offset
        return (self.input_length - (head.positions or self.input_length)) // 2

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        """Split flat predictions (N, F) into per-head arrays (N, T) or (N, P, T)."""
        out, lo = [], 0
        for h in self.heads:
            part = flat[:, lo : lo + h.size]
            lo += h.size
            out.append(part if h.positions is None else part.reshape(len(flat), h.positions, h.tasks))
        return out

    def labels(self, given: Sequence[str] | None = None) -> list[str]:
        """One label per score column.

        ``given`` (the model's or the user's labels) is used when it has one label per column;
        otherwise columns are numbered, as ``<head>.<k>`` when there are several heads.
        """
        if given is not None:
            if len(given) != self.tasks:
                msg = f"model has {self.tasks} outputs but {len(given)} output labels were given"
                raise InputError(msg)
            return [str(x) for x in given]
        if len(self.heads) == 1:
            return [str(k) for k in range(self.tasks)]
        return [f"{h.name}.{k}" for h in self.heads for k in range(h.tasks)]


def select_columns(labels: list[str], wanted: Sequence[str | int] | None) -> np.ndarray | None:
    """Return the column indices of ``wanted`` output labels or indices (None keeps all).

    Examples
    --------
    >>> select_columns(["a", "b", "c"], ["c", 0]).tolist()
    [2, 0]
    """
    if not wanted:
        return None
    picked = []
    for item in wanted:
        text = str(item)
        if text in labels:
            picked.append(labels.index(text))
        elif text.lstrip("-").isdigit() and -len(labels) <= int(text) < len(labels):
            picked.append(int(text) % len(labels))
        else:
            msg = f"model output {text!r} not found; outputs are {labels[:20]}"
            raise InputError(msg)
    return np.array(picked, dtype=np.int64)


@dataclass(frozen=True)
class Aggregation:
    """How a per-position score is reduced to one value per task.

    Attributes
    ----------
    reducer
        ``max_abs`` (the signed value of largest magnitude), ``max``, ``min``, ``mean`` or ``sum``.
    scope
        ``all`` positions, ``at_variant`` (the output position of the variant's first REF base),
        or ``window`` (positions within ``k`` of the REF span).
    k
        Half-width of ``window``.
    """

    reducer: str = "max_abs"
    scope: str = "all"
    k: int = 0

    @classmethod
    def parse(cls, spec: str | Sequence[str] | Aggregation | None) -> Aggregation:
        """Parse ``"max_abs"``, ``"window:50 max_abs"``, ``"at_variant"``, ``"window:10,sum"``...

        Examples
        --------
        >>> Aggregation.parse("window:50 max_abs")
        Aggregation(reducer='max_abs', scope='window', k=50)
        """
        if spec is None:
            return cls()
        if isinstance(spec, Aggregation):
            return spec
        tokens = spec.replace(",", " ").split() if isinstance(spec, str) else [
            t for s in spec for t in str(s).replace(",", " ").split()
        ]
        reducer, scope, k = "max_abs", "all", 0
        seen_reducer = seen_scope = False
        for tok in tokens:
            if tok in AGGREGATE_REDUCERS and not seen_reducer:
                reducer, seen_reducer = tok, True
            elif tok in ("all", "at_variant") and not seen_scope:
                scope, seen_scope = tok, True
            elif tok.startswith("window:") and not seen_scope and tok[7:].isdigit():
                scope, k, seen_scope = "window", int(tok[7:]), True
            else:
                msg = (
                    f"bad aggregate {spec!r} at {tok!r}: expected at most one of "
                    f"{'|'.join(AGGREGATE_REDUCERS)} and at most one of all|at_variant|window:K"
                )
                raise InputError(msg)
        return cls(reducer, scope, k)

    def __str__(self) -> str:
        scope = f"window:{self.k}" if self.scope == "window" else self.scope
        return scope if self.scope == "at_variant" else f"{scope} {self.reducer}"

    def mask(self, geometry: np.ndarray, positions: int, offset: int) -> np.ndarray:
        """Select output positions per row.

        Parameters
        ----------
        geometry
            int, shape (N, 3): REF index ``o`` in the input window, REF length, ALT length.
        positions
            P, output positions of the head.
        offset
            Input index of output position 0.

        Returns
        -------
        numpy.ndarray
            bool, shape (N, P).
        """
        j = np.arange(positions)[None, :] + offset
        o = geometry[:, :1]
        if self.scope == "all":
            return np.ones((len(geometry), positions), dtype=bool)
        if self.scope == "at_variant":
            return j == o
        last = o + np.maximum(geometry[:, 1:2], 1) - 1
        return (j >= o - self.k) & (j <= last + self.k)

    def reduce(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Reduce (N, P, T) over positions where ``mask`` (N, P) holds and values are not NaN.

        Rows with no selected finite position give NaN.
        """
        vals = np.where(mask[:, :, None], values, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if self.reducer == "max_abs":
                mag = np.abs(vals)
                empty = np.all(np.isnan(mag), axis=1)
                idx = np.nanargmax(np.where(np.isnan(mag), -1.0, mag), axis=1)
                out = np.take_along_axis(vals, idx[:, None, :], axis=1)[:, 0, :]
                out[empty] = np.nan
                return out
            if self.reducer == "sum":
                empty = np.all(np.isnan(vals), axis=1)
                out = np.nansum(vals, axis=1)
                out[empty] = np.nan
                return out
            if self.reducer == "max":
                return np.nanmax(vals, axis=1)
            if self.reducer == "min":
                return np.nanmin(vals, axis=1)
            return np.nanmean(vals, axis=1)


def unflip_rc(track: np.ndarray, input_length: int, offset: int) -> np.ndarray:
    """Put the profile of a reverse-complemented window back in forward orientation.

    Forward output position ``j`` sees input ``j + offset``, which is input ``L - 1 - j - offset``
    of the reversed window, i.e. its output ``L - 1 - 2 * offset - j``. With a centred crop of
    even margin that is a plain flip; positions with no counterpart get NaN.

    Parameters
    ----------
    track
        (N, P, T) predictions of reverse-complemented windows.
    """
    p = track.shape[1]
    src = input_length - 1 - 2 * offset - np.arange(p)
    if np.array_equal(src, np.arange(p)[::-1]):
        return track[:, ::-1, :]
    valid = (src >= 0) & (src < p)
    out = np.full_like(track, np.nan)
    out[:, valid, :] = track[:, src[valid], :]
    return out


def align_alt(alt: np.ndarray, geometry: np.ndarray, offset: int) -> np.ndarray:
    """Align alt-window tracks to the reference track, position by position.

    The alt window is ``ref[:o] + ALT + ref[o + len(REF):]`` (see docs/coordinates.md). With
    ``m = min(len(REF), len(ALT))`` and ``d = len(ALT) - len(REF)``, reference input ``i`` is
    matched with alt input ``i`` when ``i < o + m``, has no alt counterpart when
    ``o + m <= i < o + len(REF)`` (deleted bases: NaN), and is matched with alt input ``i + d``
    after the REF. Alt positions of inserted bases are dropped. SNVs and MNVs are unchanged.

    Parameters
    ----------
    alt
        (N, P, T) alt-window profiles (forward orientation).
    geometry
        int (N, 3): REF index ``o`` in the input window, REF length, ALT length.
    offset
        Input index of output position 0.

    Returns
    -------
    numpy.ndarray
        (N, P, T) float32, alt values on the reference positions.

    Examples
    --------
    A 2-base deletion after an anchor at input 3 (window and output both 8 long):

    >>> alt = np.arange(8, dtype=np.float32).reshape(1, 8, 1)
    >>> align_alt(alt, np.array([[3, 3, 1]]), 0)[0, :, 0].tolist()
    [0.0, 1.0, 2.0, 3.0, nan, nan, 4.0, 5.0]
    """
    o, r, a = (geometry[:, k : k + 1] for k in range(3))
    d = a - r
    if not d.any():
        return alt
    p = alt.shape[1]
    i_ref = np.arange(p)[None, :] + offset
    m = np.minimum(r, a)
    i_alt = np.where(i_ref < o + m, i_ref, i_ref + d)
    j_alt = i_alt - offset
    valid = ~((i_ref >= o + m) & (i_ref < o + r)) & (j_alt >= 0) & (j_alt < p)
    out = np.take_along_axis(alt, np.clip(j_alt, 0, p - 1)[:, :, None], axis=1).astype(np.float32)
    out[~valid] = np.nan
    return out


def _profile_scores(
    job: ScoreJob,
    tracks: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
    mask: np.ndarray,
    agg: Aggregation,
) -> np.ndarray:
    ref, alt, ref_rc, alt_rc = tracks
    if job.score.positional:
        return job.compute(ref, alt, ref_rc, alt_rc, mask=mask)
    return agg.reduce(job.compute(ref, alt, ref_rc, alt_rc), mask)


def score_predictions(
    jobs: Sequence[ScoreJob],
    spec: OutputSpec,
    agg: Aggregation,
    ref: np.ndarray,
    alt: np.ndarray,
    ref_rc: np.ndarray | None,
    alt_rc: np.ndarray | None,
    geometry: np.ndarray,
) -> dict[str, np.ndarray]:
    """Compute every score job on paired predictions.

    Parameters
    ----------
    jobs
        The scores of the run.
    spec
        Output structure of the model.
    agg
        Reduction of profile heads.
    ref, alt, ref_rc, alt_rc
        Flat predictions (N, F), reference rows repeated to pair with the alt rows; the rc pair
        is None when reverse complements are off.
    geometry
        int (N, 3): REF index in the input window, REF length, ALT length
        (:attr:`veff.windows.WindowSet.alt_geometry`).

    Returns
    -------
    dict
        Score name -> float32 (N, T_total), one column per task of every head.
    """
    n = len(alt)
    if not spec.is_profile and not any(j.score.positional for j in jobs):
        return {j.name: j.apply(ref, alt, ref_rc, alt_rc) for j in jobs}
    split = [spec.split(a) if a is not None else None for a in (ref, alt, ref_rc, alt_rc)]
    out: dict[str, list[np.ndarray]] = {j.name: [] for j in jobs}
    for k, head in enumerate(spec.heads):
        r, a = split[0][k], split[1][k]  # type: ignore[index]
        rr = None if split[2] is None else split[2][k]
        ar = None if split[3] is None else split[3][k]
        if head.positions is None:
            for j in jobs:
                if j.score.positional:
                    mask = np.ones((n, 1), dtype=bool)
                    out[j.name].append(
                        j.compute(r[:, None], a[:, None], _expand(rr), _expand(ar), mask=mask)
                    )
                else:
                    out[j.name].append(j.apply(r, a, rr, ar))
            continue
        off = spec.head_offset(head)
        a = align_alt(a, geometry, off)
        if rr is not None and ar is not None:
            rr = unflip_rc(rr, spec.input_length, off)
            ar = align_alt(unflip_rc(ar, spec.input_length, off), geometry, off)
        mask = agg.mask(geometry, head.positions, off)
        for j in jobs:
            out[j.name].append(_profile_scores(j, (r, a, rr, ar), mask, agg))
    return {
        name: np.concatenate([np.asarray(p, np.float32).reshape(n, -1) for p in parts], axis=1)
        for name, parts in out.items()
    }


def _expand(x: np.ndarray | None) -> np.ndarray | None:
    return None if x is None else x[:, None]
