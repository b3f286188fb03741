"""Per-variant null models: z-scores and empirical p-values of scores against shuffled backgrounds.

For ``--null dinuc-shuffle:N`` every scored ALT is also scored in N dinucleotide-shuffled copies of
its window (:func:`veff.variants.shuffle.null_windows`). With ``obs`` its score and ``null`` the N
null scores of one output:

``z = (obs - mean(null)) / std(null)``
    (``std`` with ``ddof=1``); NaN when the null scores do not vary (``std == 0``) or N < 2.
``p = (1 + #{|null| >= |obs|}) / (N + 1)``
    two-sided (on magnitudes), with the +1 correction, so ``p`` is never 0: its smallest value is
    ``1 / (N + 1)``. Ties count against the variant: a model whose outputs ignore the sequence gives
    ``obs == null == 0`` and ``p == 1`` (and NaN z), never a small p-value. NaN null scores are left
    out (N is then the number of finite ones); a NaN ``obs`` gives NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["null_statistics"]


def null_statistics(observed: np.ndarray, null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores and empirical two-sided p-values (see the module docstring).

    Parameters
    ----------
    observed
        float, shape (n, T): each ALT's score per output.
    null
        float, shape (n, N, T): the scores of each ALT in its N null windows.

    Returns
    -------
    tuple of numpy.ndarray
        float32 z and p, each (n, T).
    """
    obs = np.asarray(observed, dtype=np.float64)
    nul = np.asarray(null, dtype=np.float64)
    finite = ~np.isnan(nul)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(nul, axis=1) / n
        var = np.nansum((nul - mean[:, None]) ** 2, axis=1) / (n - 1)
        std = np.sqrt(var)
        z = np.where((n >= 2) & (std > 0), (obs - mean) / np.where(std > 0, std, 1.0), np.nan)
        hits = (finite & (np.abs(nul) >= np.abs(obs)[:, None])).sum(axis=1)
        p = (1.0 + hits) / (n + 1.0)
    p = np.where(np.isnan(obs), np.nan, p)
    return z.astype(np.float32), p.astype(np.float32)
