"""Where a variant's model input window lies on the genome.

A window is a :class:`~veff.types.Region` of the model's input length ``L`` (0-based,
half-open). Two centring conventions place the variant's first REF base at index ``c``:

* ``exact`` (default): ``c = (L - 1) // 2`` -- the centre for odd L, one left of it for even L.
* ``kipoi``: ``c = L // 2 - 1`` -- kipoi-veff's arithmetic, one base left of centre for odd L.

Example: L = 5, variant at POS 11 (0-based start 10): ``exact`` gives c = 2 and the window
``[8, 13)``; ``kipoi`` gives c = 1 and ``[9, 14)``.

Restricted mode (``--restriction-bed``) keeps windows inside a BED interval that contains the
whole REF allele: the window is centred as above, then shifted by the least amount that fits it
inside the interval. Intervals shorter than L cannot host a window.
"""

from __future__ import annotations

from typing import Literal

from veff.types import Region

__all__ = ["Centering", "centre_index", "restricted_window", "window_start"]

Centering = Literal["exact", "kipoi"]
CENTERINGS: tuple[str, ...] = ("exact", "kipoi")


def centre_index(length: int, centering: Centering = "exact") -> int:
    """Return the index of the variant's first base in a window of ``length``.

    Examples
    --------
    >>> centre_index(101), centre_index(100), centre_index(101, "kipoi")
    (50, 49, 49)
    """
    if centering == "exact":
        return (length - 1) // 2
    if centering == "kipoi":
        return max(length // 2 - 1, 0)
    msg = f"unknown centering {centering!r}; expected one of {CENTERINGS}"
    raise ValueError(msg)


def window_start(variant_start: int, length: int, centering: Centering = "exact") -> int:
    """Return the 0-based start of the variant-centred window."""
    return variant_start - centre_index(length, centering)


def restricted_window(
    intervals: list[Region],
    variant_start: int,
    length: int,
    centering: Centering = "exact",
    *,
    extent: int | None = None,
) -> Region | None:
    """Choose a window of ``length`` inside one of ``intervals``, or None.

    Parameters
    ----------
    intervals
        BED intervals containing the variant's REF allele.
    variant_start
        0-based start of the REF allele.
    length
        Window length L.
    centering
        Where the variant sits before shifting.
    extent
        Genome span the window needs (L, or more for deletions that pull in flanking bases).

    Returns
    -------
    Region or None
        The window needing the smallest shift; ties go to the first interval in BED order.
    """
    need = length if extent is None else max(extent, length)
    ideal = window_start(variant_start, length, centering)
    best: tuple[int, Region] | None = None
    for iv in intervals:
        if iv.end - iv.start < need:
            continue
        start = min(max(ideal, iv.start), iv.end - need)
        shift = abs(start - ideal)
        if best is None or shift < best[0]:
            best = (shift, Region(iv.chrom, start, start + length, iv.strand, iv.name))
    return None if best is None else best[1]
