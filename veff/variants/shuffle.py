"""Dinucleotide shuffles and the null windows of ``--null dinuc-shuffle:N``.

:func:`dinuc_shuffle` draws, for every row of a batch, a uniformly random sequence with exactly
the dinucleotide counts of the row (and its first and last base), by the Euler-path method of
Altschul and Erickson (1985) in the form of Kandel et al. (1996):

1. the row is a walk through a multigraph whose vertices are the letters and whose edges are its
   ``m - 1`` consecutive pairs;
2. every edge gets a uniform random key; for each vertex the edge with the largest key is its
   *last exit*. The last exits must form a tree directed to the row's last letter (otherwise a
   walk would get stuck before using every edge); rows where they do not are drawn again
   (rejection keeps the choice uniform over such trees);
3. the walk starts at the first letter and leaves each vertex through its edges in key order,
   which uses every edge once (an Euler path) and ends at the last letter.

All rows of a batch are walked together, one numpy step per position. Letters are ``A``, ``C``,
``G``, ``T``; any other code is treated as (and written back as) ``N``.

:func:`null_windows` builds the null windows of scored ALTs: the bases left and right of a central
core (the REF allele with ``(K-1)//2`` bases before it and ``K//2`` after it, ``K`` =
``core``) are joined into one sequence (the right flank running on past the window by the bases a
deletion's alt window reads there), dinucleotide-shuffled and cut back into a left and a right flank,
so the bases next to the core are drawn too. The joined flanks keep their dinucleotide counts
exactly; the window as a whole differs from the reference window by at most the three
dinucleotides at the two core boundaries and at the junction. The REF and the ALT allele are then
placed in the same shuffled background. Every ALT gets its own generator, seeded
from the run's seed and the ALT's key, so the nulls of a variant do not depend on how the VCF is
cut into chunks or shards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from itertools import groupby

import numpy as np

from veff.errors import InputError

__all__ = ["DEFAULT_NULL_CORE", "dinuc_shuffle", "null_windows", "parse_null", "variant_rng"]

DEFAULT_NULL_CORE = 3  # the variant and one base either side
_N_LETTERS = 5  # A, C, G, T, N
_BLOCK_BASES = 1 << 22  # bases shuffled at once (bounds the memory of long windows)
_TO_INDEX = np.full(256, 4, dtype=np.int8)
for _k, _b in enumerate(b"ACGT"):
    _TO_INDEX[_b] = _k
_TO_CODE = np.frombuffer(b"ACGTN", dtype=np.uint8)


def parse_null(spec: str | None) -> int:
    """The number of null windows per ALT that ``spec`` asks for (0 for None).

    Examples
    --------
    >>> parse_null("dinuc-shuffle:100")
    100
    """
    if spec is None:
        return 0
    kind, _, count = str(spec).partition(":")
    if kind != "dinuc-shuffle" or not count.isdigit() or int(count) < 1:
        msg = f"null model {spec!r}: expected dinuc-shuffle:N with N >= 1 (e.g. dinuc-shuffle:100)"
        raise InputError(msg)
    return int(count)


def variant_rng(seed: int, key: str) -> np.random.Generator:
    """A generator seeded from ``seed`` and a variant key (``chrom:pos:ref:alt``)."""
    digest = hashlib.sha256(f"{int(seed)}\t{key}".encode()).digest()
    return np.random.default_rng(np.frombuffer(digest[:16], dtype=np.uint32).tolist())


def _letters(codes: np.ndarray) -> np.ndarray:
    return _TO_INDEX[np.asarray(codes, dtype=np.uint8)]


def _last_exit_ok(last_dst: np.ndarray, has_out: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Whether, per row, every vertex with out-edges reaches ``last`` through last exits.

    ``last_dst`` (B, 5): target of each vertex's last exit; ``has_out`` (B, 5) bool; ``last`` (B,).
    """
    cur = np.broadcast_to(np.arange(_N_LETTERS), last_dst.shape).copy()
    rows = np.arange(len(cur))[:, None]
    for _ in range(_N_LETTERS):
        at_end = cur == last[:, None]
        cur = np.where(at_end, cur, last_dst[rows, cur])
    return np.all(~has_out | (cur == last[:, None]), axis=1)


def _shuffle_letters(x: np.ndarray, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Dinucleotide-shuffle rows of letter indices ``x`` (B, m), row ``b`` drawn with ``rngs[b]``."""
    n, m = x.shape
    if m <= 2 or n == 0:
        return x.copy()
    src, dst = x[:, :-1].astype(np.int64), x[:, 1:].astype(np.int64)
    last = x[:, -1].astype(np.int64)
    rows = np.arange(n)
    counts = np.stack([(src == v).sum(axis=1) for v in range(_N_LETTERS)], axis=1)  # (B, 5) out-degree
    has_out = (counts > 0) & (np.arange(_N_LETTERS) != last[:, None])
    keys = np.empty((n, m - 1))
    todo = rows
    while len(todo):
        # rows that share a generator (the shuffles of one ALT) draw their keys in one call
        for _, run in groupby(todo.tolist(), key=lambda b: id(rngs[b])):
            block = list(run)
            keys[block] = rngs[block[0]].random((len(block), m - 1))
        # the last exit of vertex v is its edge with the largest key
        s_todo, k_todo = src[todo], keys[todo]
        exit_edge = np.stack(
            [np.where(s_todo == v, k_todo, -1.0).argmax(axis=1) for v in range(_N_LETTERS)], axis=1
        )  # (b, 5)
        last_dst = np.take_along_axis(dst[todo], exit_edge, axis=1)
        ok = _last_exit_ok(last_dst, has_out[todo], last[todo])
        todo = todo[~ok]
    order = np.argsort(src * 2.0 + keys, axis=1, kind="stable")  # by vertex, then key
    targets = np.take_along_axis(dst, order, axis=1)
    start = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(counts, axis=1)[:, :-1]], axis=1)
    # flat indices: (row, vertex) -> row * 5 + vertex; (row, edge) -> row * (m - 1) + edge
    nxt = (start + rows[:, None] * (m - 1)).ravel()  # next unused edge of each (row, vertex)
    flat_targets = targets.ravel()
    out = np.empty_like(x)
    cur = x[:, 0].astype(np.int64)
    out[:, 0] = cur
    base = rows * _N_LETTERS
    for i in range(1, m):
        at = base + cur
        edge = nxt[at]
        nxt[at] = edge + 1
        cur = flat_targets[edge]
        out[:, i] = cur
    return out


def dinuc_shuffle(codes: np.ndarray, rng: np.random.Generator | Sequence[np.random.Generator]) -> np.ndarray:
    """Shuffle each row of ``codes`` keeping its dinucleotide counts, first and last base.

    Parameters
    ----------
    codes
        uint8 ASCII codes, shape (B, m) (or (m,) for one sequence).
    rng
        One generator for all rows, or one per row (rows then do not depend on each other).

    Returns
    -------
    numpy.ndarray
        uint8, the shape of ``codes``; letters other than A/C/G/T come back as ``N``.

    Examples
    --------
    >>> seq = np.frombuffer(b"AACGTTACGGA", np.uint8)
    >>> out = dinuc_shuffle(seq, np.random.default_rng(0))
    >>> sorted(zip(out[:-1], out[1:])) == sorted(zip(seq[:-1], seq[1:]))
    True
    """
    arr = np.asarray(codes, dtype=np.uint8)
    flat = arr.reshape(-1, arr.shape[-1]) if arr.ndim > 1 else arr.reshape(1, -1)
    rngs = [rng] * len(flat) if isinstance(rng, np.random.Generator) else list(rng)
    if len(rngs) != len(flat):
        msg = f"dinuc_shuffle: {len(rngs)} generators for {len(flat)} rows"
        raise ValueError(msg)
    return _TO_CODE[_shuffle_letters(_letters(flat), rngs)].reshape(arr.shape)


def _core(geometry: np.ndarray, core: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Core bounds ``[c0, c1)`` of each ALT's window; geometry (n, 3): offset, len(ref), len(alt)."""
    off, r = geometry[:, 0], geometry[:, 1]
    c0 = np.clip(off - (core - 1) // 2, 0, length)
    c1 = np.clip(off + r + core // 2, 0, length)
    return c0, np.maximum(c1, c0)


def null_windows(
    ref_codes: np.ndarray,
    alt_codes: np.ndarray,
    geometry: np.ndarray,
    keys: Sequence[str],
    n_null: int,
    *,
    seed: int = 0,
    core: int = DEFAULT_NULL_CORE,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and alt windows of each ALT placed in ``n_null`` dinucleotide-shuffled backgrounds.

    Parameters
    ----------
    ref_codes, alt_codes
        uint8, shape (n, L): each scored ALT's reference window (repeated per ALT) and alt window.
    geometry
        int, shape (n, 3): REF index in the window, REF length, ALT length
        (:attr:`veff.variants.windows.WindowSet.alt_geometry`).
    keys
        n variant keys ``chrom:pos:ref:alt``, which seed each ALT's shuffles with ``seed``.
    n_null
        Shuffles per ALT.
    seed
        Seed of the run's shuffles.
    core
        Bases kept in place around the variant (see the module docstring).

    Returns
    -------
    tuple of numpy.ndarray
        uint8 reference and alt null windows, each of shape (n * n_null, L), ALT-major (the
        nulls of ALT ``i`` are rows ``i * n_null`` to ``(i + 1) * n_null - 1``).
    """
    n, length = ref_codes.shape
    geometry = np.asarray(geometry, dtype=np.int64).reshape(n, 3)
    c0, c1 = _core(geometry, core, length)
    r, a = geometry[:, 1], geometry[:, 2]
    extra = np.maximum(r - a, 0)  # a deletion's alt window reads this many bases past the window
    rngs = [variant_rng(seed, k) for k in keys]
    # the flanks, joined, with the bases a deletion's alt window reads past the window at the end
    flanks = [
        np.concatenate(
            [
                ref_codes[i, : c0[i]],
                ref_codes[i, c1[i] :],
                alt_codes[i, length - extra[i] :] if extra[i] else [],
            ]
        ).astype(np.uint8)
        for i in range(n)
    ]
    shuffled = _shuffled_list(flanks, rngs, n_null)
    null_ref = np.empty((n * n_null, length), np.uint8)
    null_alt = np.empty((n * n_null, length), np.uint8)
    for i in range(n):
        rows = slice(i * n_null, (i + 1) * n_null)
        lo, hi = int(c0[i]), int(c1[i])
        # the alt window holds ref[lo:off] + ALT + ref[off + r : hi] from index lo on
        core_alt = alt_codes[i, lo : min(length, hi - int(r[i]) + int(a[i]))]
        left, right = shuffled[i][:, :lo], shuffled[i][:, lo:]
        null_ref[rows, :lo] = left
        null_ref[rows, lo:hi] = ref_codes[i, lo:hi]
        null_ref[rows, hi:] = right[:, : length - hi]
        end = lo + len(core_alt)
        null_alt[rows, :lo] = left
        null_alt[rows, lo:end] = core_alt
        null_alt[rows, end:] = right[:, : length - end]
    return null_ref, null_alt


def _shuffled_list(seqs: list[np.ndarray], rngs: list[np.random.Generator], n_null: int) -> list[np.ndarray]:
    """``n_null`` shuffles of each sequence, (n_null, len(seq)) each; equal lengths are shuffled together."""
    out: list[np.ndarray] = [np.empty((n_null, len(s)), np.uint8) for s in seqs]
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(seqs):
        by_length.setdefault(len(s), []).append(i)
    for m, same in by_length.items():
        step = max(1, _BLOCK_BASES // max(1, m * n_null))  # sequences shuffled at once
        for lo in range(0, len(same) if m else 0, step):
            idx = same[lo : lo + step]
            block = np.repeat(np.stack([np.asarray(seqs[i], np.uint8) for i in idx]), n_null, axis=0)
            row_rngs = [rngs[i] for i in idx for _ in range(n_null)]
            shuffled = dinuc_shuffle(block, row_rngs).reshape(len(idx), n_null, m)
            for k, i in enumerate(idx):
                out[i] = shuffled[k]
    return out
