"""Building blocks of mutation maps: window tiling, mutant tables, score jobs, variant lookup.

See :mod:`veff.mutation_map.compute` for the rules these implement.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from veff.errors import InputError, VeffWarning
from veff.io.bed import read_regions
from veff.io.fasta import Fasta
from veff.io.vcf import VcfReader
from veff.types import Region, Variant

__all__ = [
    "VariantIndex",
    "check_query",
    "group_variant_windows",
    "mutant_table",
    "mutate",
    "query_tiles",
    "read_bound_regions",
    "read_placed_variants",
    "resolve_contig",
    "tile_region",
]

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_BASE_INDEX = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(b"ACGT"):
    _BASE_INDEX[_c] = _BASE_INDEX[_c + 32] = _i


def tile_region(region: Region, length: int) -> list[Region]:
    """Cover ``region`` with windows of exactly ``length``.

    A region ``[s, e)`` of ``n = e - s >= length`` bases gets windows starting at ``s, s + L,
    s + 2L, ...`` while they fit, plus one window ``[e - L, e)`` when ``n`` is not a multiple of
    L (it overlaps the one before); every window lies inside the region. A shorter region gets one
    window centred on it, starting at ``s - (L - n) // 2`` (a single base lands at index
    ``(L - 1) // 2``, as ``--centering exact`` places variants).

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
    """Return copies of ``ref_codes`` (L,) with base ``base[k]`` at ``pos[k]``: uint8 (K, L)."""
    out = np.repeat(ref_codes[None, :], len(pos), axis=0)
    out[np.arange(len(pos)), pos] = _ACGT[base]
    return out


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
        """Return the variants starting in ``[start, end)`` of ``chrom``."""
        starts, vs = self._data.get(chrom, (np.empty(0, np.int64), []))
        lo, hi = np.searchsorted(starts, [start, end])
        return vs[lo:hi]


def read_bound_regions(
    src: str | os.PathLike[str] | Sequence[Region] | None, length: int
) -> list[Region] | None:
    """The regions a model is bound to (a BED file or Regions), each checked to be ``length`` bp."""
    if src is None:
        return None
    regions = read_regions(src) if isinstance(src, (str, os.PathLike)) else list(src)
    for r in regions:
        if len(r) != length:
            msg = (
                f"bound region {r.chrom}:{r.start}-{r.end} is {len(r)} bp; "
                f"every bound region must be exactly L = {length} bp"
            )
            raise InputError(msg)
    return regions


def read_placed_variants(path: str | os.PathLike[str], fasta: Fasta) -> list[tuple[str, Variant]]:
    """Read a VCF's variants with their FASTA contig name.

    Variants on contigs the FASTA lacks are skipped with a :class:`~veff.errors.VeffWarning`
    naming those contigs.
    """
    reader = VcfReader(path)
    placed: list[tuple[str, Variant]] = []
    missing: set[str] = set()
    try:
        for v, _ in reader:
            chrom = fasta.resolve(v.chrom)
            if chrom is None:
                missing.add(v.chrom)
            else:
                placed.append((chrom, v))
    finally:
        reader.close()
    if missing:
        warnings.warn(
            f"{path}: variants on contigs missing from the reference were skipped: "
            f"{', '.join(sorted(missing))}",
            VeffWarning,
            stacklevel=3,
        )
    return placed


def group_variant_windows(
    placed: list[tuple[str, Variant]], windows_of: Callable[[str, Variant], list[Region]]
) -> list[tuple[Region, str, list[tuple[int, int]]]]:
    """Group variants by the windows they are mapped in.

    Returns ``(window, name, spans)`` in order of first use: ``name`` joins the variant IDs
    (``chrom:pos:ref>alt`` when missing), ``spans`` are the variants' 0-based REF spans.
    """
    windows: dict[tuple[str, int, int, str], list[tuple[str, tuple[int, int]]]] = {}
    for chrom, v in placed:
        for w in windows_of(chrom, v):
            label = v.id if v.id != "." else f"{v.chrom}:{v.pos}:{v.ref}>{','.join(v.alts)}"
            windows.setdefault((w.chrom, w.start, w.end, w.strand), []).append(
                (label, (v.start, v.start + len(v.ref)))
            )
    return [
        (
            Region(c, s, e, st),  # type: ignore[arg-type]
            ",".join(dict.fromkeys(lab for lab, _ in found)),
            [span for _, span in found],
        )
        for (c, s, e, st), found in windows.items()
    ]


def query_tiles(
    fasta: Fasta, length: int, bound: list[Region] | None, regions: Iterable[Region]
) -> Iterator[tuple[Region, str, list[tuple[int, int]]]]:
    """Windows of region queries: ``(window, query name, [query span])``.

    Without ``bound`` regions the query is tiled (:func:`tile_region`); with them, the bound
    regions overlapping the query are used as they are.

    Raises
    ------
    InputError
        For a contig missing from the FASTA, or an empty query or one outside its contig.
    """
    for q in regions:
        name = q.name or f"{q.chrom}:{q.start + 1}-{q.end}"
        chrom = resolve_contig(fasta, q.chrom)
        if bound is not None:
            for b in bound:
                if fasta.resolve(b.chrom) == chrom and b.start < q.end and q.start < b.end:
                    yield b, name, [(q.start, q.end)]
            continue
        check_query(fasta, q)
        for w in tile_region(q, length):
            yield w, name, [(q.start, q.end)]


def check_query(fasta: Fasta, q: Region, where: str = "") -> None:
    """Raise InputError unless ``q`` is a non-empty region inside a contig of ``fasta``.

    ``where`` (e.g. ``regions.bed, interval 3``) starts the message.
    """
    prefix = f"{where}: " if where else ""
    try:
        chrom = resolve_contig(fasta, q.chrom)
    except InputError as exc:
        msg = f"{prefix}{exc}"
        raise InputError(msg) from None
    size = fasta.lengths[chrom]
    if q.start < 0 or q.end > size or q.start >= q.end:
        msg = (
            f"{prefix}query region {q.chrom}:{q.start + 1}-{q.end} (1-based; 0-based [{q.start}, {q.end})) "
            f"is empty or outside the contig {chrom} (1-{size})"
        )
        raise InputError(msg)


def resolve_contig(fasta: Fasta, chrom: str) -> str:
    """Return the FASTA name of ``chrom`` (``chr``/no-``chr`` tolerant) or raise InputError."""
    name = fasta.resolve(chrom)
    if name is None:
        shown = ", ".join(list(fasta.lengths)[:10])
        msg = f"contig {chrom!r} not in the reference {fasta.path} (contigs: {shown})"
        raise InputError(msg)
    return name
