"""Building blocks of mutation maps: window tiling, mutant tables, score jobs, variant lookup.

See :mod:`veff.mutation_map` for the rules these implement.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from veff._types import Region, Variant
from veff.errors import InputError
from veff.predict import Predictions
from veff.scores import Score, get_score

__all__ = ["ScoreJob", "VariantIndex", "mutant_table", "mutate", "progress_bar", "score_jobs",
           "tile_region"]

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_BASE_INDEX = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(b"ACGT"):
    _BASE_INDEX[_c] = _BASE_INDEX[_c + 32] = _i


def tile_region(region: Region, length: int) -> list[Region]:
    """Cover ``region`` with windows of exactly ``length`` (the tiling rule of :mod:`veff.mutation_map`).

    Examples
    --------
    >>> [(w.start, w.end) for w in tile_region(Region("c", 100, 125), 10)]
    [(100, 110), (110, 120), (115, 125)]
    >>> [(w.start, w.end) for w in tile_region(Region("c", 100, 101), 5)]
    [(98, 103)]
    """
    if length < 1:
        msg = f"window length must be at least 1, got {length}"
        raise InputError(msg)
    n = region.end - region.start
    if n <= 0:
        msg = f"empty query region {region.chrom}:{region.start}-{region.end}"
        raise InputError(msg)
    if n < length:
        starts = [region.start - (length - n) // 2]
    else:
        starts = list(range(region.start, region.end - length + 1, length))
        if starts[-1] + length < region.end:
            starts.append(region.end - length)
    return [Region(region.chrom, s, s + length, region.strand, region.name) for s in starts]


def mutant_table(ref_codes: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """List the single-base mutants of a window.

    Parameters
    ----------
    ref_codes
        uint8 codes of the reference window, shape (L,).
    valid
        bool, shape (L,): positions that may be mutated (default: all).

    Returns
    -------
    tuple of numpy.ndarray
        ``(positions, bases)``, int64, shape (M,), sorted by position; bases index ``ACGT``.
        The reference base is skipped; positions whose reference is not A/C/G/T get all 4.
    """
    length = len(ref_codes)
    ref_idx = _BASE_INDEX[ref_codes]
    pos = np.repeat(np.arange(length, dtype=np.int64), 4)
    base = np.tile(np.arange(4, dtype=np.int64), length)
    keep = base != ref_idx[pos]
    if valid is not None:
        keep &= valid[pos]
    return pos[keep], base[keep]


def mutate(ref_codes: np.ndarray, pos: np.ndarray, base: np.ndarray) -> np.ndarray:
    out = np.repeat(ref_codes[None, :], len(pos), axis=0)
    out[np.arange(len(pos)), pos] = _ACGT[base]
    return out


@dataclass(frozen=True)
class ScoreJob:
    name: str
    score: Score
    kwargs: dict[str, Any]

    def __call__(self, p: Predictions) -> np.ndarray:
        try:
            out = self.score(p.ref, p.alt, p.ref_rc, p.alt_rc, **self.kwargs)
        except TypeError as exc:
            msg = f"score {self.name!r} rejected its arguments {self.kwargs}: {exc}"
            raise InputError(msg) from exc
        return np.asarray(out, dtype=np.float32).reshape(len(p.alt), -1)


def score_jobs(
    scores: Sequence[str | Callable[..., Any]],
    score_kwargs: Sequence[dict[str, Any]] | dict[str, Any] | None,
) -> list[ScoreJob]:
    if isinstance(scores, str):
        scores = [scores]
    if not scores:
        msg = "no score selected"
        raise InputError(msg)
    kws = [score_kwargs] if isinstance(score_kwargs, dict) else list(score_kwargs or [])
    if len(kws) not in (0, 1, len(scores)):
        msg = f"{len(kws)} score_kwargs given for {len(scores)} scores; give one per score"
        raise InputError(msg)
    jobs = []
    for k, s in enumerate(scores):
        sc = get_score(s)
        kw = kws[k if len(kws) > 1 else 0] if kws else {}
        if not isinstance(kw, dict):
            msg = f"score_kwargs for {sc.name!r} must be a dict, got {kw!r}"
            raise InputError(msg)
        jobs.append(ScoreJob(sc.name.replace("/", "_"), sc, dict(kw)))
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        msg = f"score names repeat: {names}"
        raise InputError(msg)
    return jobs


class VariantIndex:
    """Query variants by FASTA contig and 0-based start, to list those inside a window."""

    def __init__(self, variants: list[tuple[str, Variant]]) -> None:
        by: dict[str, list[Variant]] = {}
        for chrom, v in variants:
            by.setdefault(chrom, []).append(v)
        self._data = {}
        for chrom, vs in by.items():
            vs.sort(key=lambda v: v.start)
            self._data[chrom] = (np.array([v.start for v in vs], dtype=np.int64), vs)

    def within(self, chrom: str, start: int, end: int) -> list[Variant]:
        starts, vs = self._data.get(chrom, (np.empty(0, np.int64), []))
        lo, hi = np.searchsorted(starts, [start, end])
        return vs[lo:hi]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, total: int | None) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=" windows", file=sys.stderr, dynamic_ncols=True)
