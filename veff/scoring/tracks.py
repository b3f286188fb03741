"""Operations on profile tracks: flip back, align around indels, reduce over positions.

Reverse-complement tracks are flipped back to forward orientation, alt tracks are aligned to the
reference around indels, and positions are reduced to one value per task.

Tracks are (N, P, T) arrays: N rows, P output positions, T tasks. See :mod:`veff.engine.outputs` for how
they are used and docs/scores.md ("Position-resolved models") for the rules.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from veff.errors import InputError

__all__ = ["AGGREGATE_REDUCERS", "Aggregation", "align_alt", "unflip_rc"]

AGGREGATE_REDUCERS = ("max_abs", "max", "min", "mean", "sum")


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
        tokens = (
            spec.replace(",", " ").split()
            if isinstance(spec, str)
            else [t for s in spec for t in str(s).replace(",", " ").split()]
        )
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
