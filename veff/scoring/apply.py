"""Apply the scores of a run to paired predictions: scalar heads directly, profile heads track by track.

How a profile becomes one value per task (see docs/scores.md, "Position-resolved models"):

1. reverse-complement predictions are flipped back to forward orientation;
2. the alt track is aligned to the reference track (:func:`align_alt`): reference positions
   deleted by the variant have no alt value (NaN, left out), inserted positions are dropped;
3. a per-position score (``diff``, ``logit``, ...) is computed and merged over strands, or a
   profile score (``logfc``, ``jsd``) is computed per strand and merged;
4. per-position values are reduced over the positions the :class:`Aggregation` selects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from veff.engine.outputs import OutputSpec
from veff.scoring.registry import ScoreJob
from veff.scoring.tracks import Aggregation, align_alt, unflip_rc

__all__ = ["score_predictions"]


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
        (:attr:`veff.variants.windows.WindowSet.alt_geometry`).

    Returns
    -------
    dict
        Score name -> float32 (N, T_total), one column per task of every head.
    """
    n = len(alt)
    cols = spec.rc_columns if ref_rc is not None else None
    if cols is not None:
        ref_rc, alt_rc = ref_rc[:, cols], None if alt_rc is None else alt_rc[:, cols]  # type: ignore[index]
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
                    out[j.name].append(j.compute(r[:, None], a[:, None], _expand(rr), _expand(ar), mask=mask))
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
