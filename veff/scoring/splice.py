"""Delta scores of splice models: DS_AG, DS_AL, DS_DG, DS_DL and their positions DP_*.

Given the reference and alternative tracks of a variant (``2D + 1`` positions centred on it,
forward orientation, classes neither / acceptor / donor), SpliceAI defines

* ``DS_AG`` = max over positions of ``alt - ref`` of the acceptor class (acceptor gain),
* ``DS_AL`` = max of ``ref - alt`` (acceptor loss), ``DS_DG`` / ``DS_DL`` the same for donors,
* ``DP_*`` = offset of that maximum from the variant (negative: upstream on the forward strand);
  on ties the first (most upstream) position wins (``numpy.argmax``).

**Aligning an indel's alt track** (rule of :func:`align_alt`): with REF length ``R``, ALT length
``A`` and ``m = min(R, A)``, reference positions before the variant and the first ``m - 1``
shared positions compare with the same alt position; the last shared position compares with the
*maximum* over it and any inserted bases (SpliceAI's insertion rule); reference positions deleted by
the ALT compare with 0 (SpliceAI's deletion rule); positions after the REF compare with the alt
position shifted by ``A - R``. For SNVs and anchored indels this is exactly SpliceAI's rule;
MNVs compare position by position.

**Masking** (``--splice-mask``). ``spliceai``: as SpliceAI's ``-M 1``: a gain whose position is
the transcript's nearest exon boundary, and a loss whose position is not, are set to 0. ``veff``:
by site type: an acceptor gain at an annotated acceptor, a donor gain at an annotated donor, an
acceptor loss away from annotated acceptors and a donor loss away from annotated donors are 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["SPLICE_FIELDS", "MaskMode", "align_alt", "delta_scores"]

SPLICE_FIELDS = ("DS_AG", "DS_AL", "DS_DG", "DS_DL", "DP_AG", "DP_AL", "DP_DG", "DP_DL")
MaskMode = Literal["none", "spliceai", "veff"]


def align_alt(alt: np.ndarray, distance: int, ref_len: int, alt_len: int) -> np.ndarray:
    """Map an alt track onto the ``2D + 1`` reference positions (see the module docstring).

    Parameters
    ----------
    alt
        Alt track, shape (P, C), P >= 2D + 1 + max(0, alt_len - ref_len); position ``D`` is the
        first base of the ALT.
    distance
        ``D``.
    ref_len, alt_len
        Lengths of REF and ALT.

    Returns
    -------
    numpy.ndarray
        Shape (2D + 1, C): float32, or float64 for deletions (SpliceAI compares deleted positions
        with a float64 zero, which makes its whole deletion arithmetic float64).
    """
    cov, d = 2 * distance + 1, distance
    if ref_len == alt_len:
        return alt[:cov]
    m = min(ref_len, alt_len)
    last = d + m - 1
    parts = [alt[:last]]
    if alt_len > ref_len:
        parts.append(alt[last : d + alt_len].max(axis=0, keepdims=True))
    else:
        parts.append(alt[last : last + 1])
        parts.append(np.zeros((ref_len - alt_len, alt.shape[1]), np.float64))
    tail = d + ref_len
    parts.append(alt[tail + alt_len - ref_len : cov + alt_len - ref_len])
    out = np.concatenate(parts)[:cov]
    return out


def delta_scores(
    ref: np.ndarray,
    alt: np.ndarray,
    distance: int,
    *,
    mask: MaskMode = "none",
    boundary: int = 0,
    sites: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """DS and DP of one variant.

    Parameters
    ----------
    ref, alt
        Reference track and aligned alt track (:func:`align_alt`), shape (2D + 1, 3), classes
        neither / acceptor / donor.
    distance
        ``D``.
    mask
        ``none``, ``spliceai`` (needs ``boundary``) or ``veff`` (needs ``sites``).
    boundary
        Signed distance of the nearest exon boundary (SpliceAI's mask).
    sites
        int8, shape (2D + 1,): 1 annotated acceptor, 2 annotated donor, 0 none (veff's mask).

    Returns
    -------
    tuple of numpy.ndarray
        ``ds`` float64 (4,) ``[AG, AL, DG, DL]`` and ``dp`` int64 (4,).
    """
    gain_a, gain_d = alt[:, 1] - ref[:, 1], alt[:, 2] - ref[:, 2]
    diffs = (gain_a, ref[:, 1] - alt[:, 1], gain_d, ref[:, 2] - alt[:, 2])
    idx = np.array([int(np.argmax(x)) for x in diffs], dtype=np.int64)
    ds = np.array([float(x[k]) for x, k in zip(diffs, idx.tolist(), strict=True)], dtype=np.float64)
    dp = idx - distance
    if mask == "spliceai":
        at = dp == boundary
        keep = np.array([not at[0], at[1], not at[2], at[3]])
        ds = ds * keep
    elif mask == "veff" and sites is not None:
        kind = sites[idx]
        keep = np.array([kind[0] != 1, kind[1] == 1, kind[2] != 2, kind[3] == 2])
        ds = ds * keep
    return ds, dp
