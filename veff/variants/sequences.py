"""DNA codes, one-hot encoding, reverse complement, allele checks and alt windows.

Sequences travel as ``uint8`` arrays of upper-case ASCII letters, shape (n, L), until they are
one-hot encoded to float32 (n, L, 4) with channels in ``A, C, G, T`` order. Letters other than
ACGT (N, IUPAC codes, padding past a contig end) encode as ``n_value`` in every channel: 0 by
default, 0.25 for kipoiseq-style models.

Fixed-length alt windows
------------------------
For an allele ``REF -> ALT`` whose REF starts at index ``o`` of a reference window of length L,
the alt window is::

    window[:o] + ALT + genome[after REF ...]   cut to length L

Bases left of the variant are identical in both windows; right of it, a deletion pulls in
reference bases from the right flank and an insertion pushes bases out of the window's right end.
Example, L = 7, o = 3, genome ``ACGTACGTAC`` with REF ``TA`` at index 3 and ALT ``T``::

    ref window  ACG TA CG      ->  ACGTACG
    alt window  ACG T  CGT     ->  ACGTCGT   (one base pulled in from the right flank)

For an SNV this is the reference window with one base replaced.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from veff.types import Status

if TYPE_CHECKING:
    from veff.io.fasta import Contig

__all__ = [
    "COMPLEMENT",
    "allele_status",
    "codes_to_str",
    "normalize_allele",
    "one_hot",
    "reverse_complement",
    "reverse_complement_codes",
    "str_to_codes",
]

COMPLEMENT = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTNacgtnRYKMSWBDHVrykmswbdhv", b"TGCANtgcanYRMKSWVHDByrmkswvhdb", strict=True):
    COMPLEMENT[_a] = _b

_BASE_INDEX = {ord("A"): 0, ord("C"): 1, ord("G"): 2, ord("T"): 3}
_DNA = re.compile(r"^[ACGT]+$")


def _lut(n_value: float) -> np.ndarray:
    lut = np.full((256, 4), n_value, dtype=np.float32)
    for code, idx in _BASE_INDEX.items():
        lut[code] = 0.0
        lut[code, idx] = 1.0
        lut[code + 32] = lut[code]  # lower case
    return lut


_LUTS: dict[float, np.ndarray] = {}


def one_hot(codes: np.ndarray, n_value: float = 0.0) -> np.ndarray:
    """One-hot encode uint8 codes.

    Parameters
    ----------
    codes
        uint8 ASCII codes, shape (..., L).
    n_value
        Value of every channel for a base other than A/C/G/T.

    Returns
    -------
    numpy.ndarray
        float32, shape (..., L, 4), channels A, C, G, T.

    Examples
    --------
    >>> one_hot(str_to_codes("ACN"))
    array([[1., 0., 0., 0.],
           [0., 1., 0., 0.],
           [0., 0., 0., 0.]], dtype=float32)
    >>> one_hot(str_to_codes("N"), n_value=0.25)
    array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
    """
    lut = _LUTS.get(n_value)
    if lut is None:
        lut = _LUTS[n_value] = _lut(n_value)
    return np.take(lut, codes, axis=0)  # several times faster than ``lut[codes]``


def reverse_complement(x: np.ndarray) -> np.ndarray:
    """Reverse-complement one-hot sequences of shape (..., L, 4) (a view; ACGT order assumed).

    Examples
    --------
    >>> x = one_hot(str_to_codes("AAC"))
    >>> bool((reverse_complement(x) == one_hot(str_to_codes("GTT"))).all())
    True
    """
    return x[..., ::-1, ::-1]


def reverse_complement_codes(codes: np.ndarray) -> np.ndarray:
    """Reverse-complement uint8 codes of shape (..., L); IUPAC codes keep their meaning.

    Examples
    --------
    >>> codes_to_str(reverse_complement_codes(str_to_codes("AACGRN")))
    'NYCGTT'
    """
    return np.take(COMPLEMENT, codes[..., ::-1])  # faster than ``COMPLEMENT[...]``


def str_to_codes(seq: str) -> np.ndarray:
    """Return the upper-case uint8 codes of a DNA string.

    Examples
    --------
    >>> str_to_codes("acgT")
    array([65, 67, 71, 84], dtype=uint8)
    """
    return np.frombuffer(seq.upper().encode("ascii"), dtype=np.uint8)


def codes_to_str(codes: np.ndarray) -> str:
    """Return the string of uint8 codes."""
    return np.ascontiguousarray(codes, dtype=np.uint8).tobytes().decode("ascii")


def allele_status(ref: str, alt: str) -> Status | None:
    """Return why ``ref -> alt`` cannot be scored as a DNA change, or None when it can.

    Symbolic alleles (``<DEL>``), breakends, ``*``, missing ``.`` and IUPAC letters other than
    A/C/G/T are ``unsupported_allele``.

    Examples
    --------
    >>> allele_status("A", "AT") is None
    True
    >>> allele_status("A", "<DEL>")
    <Status.UNSUPPORTED_ALLELE: 'unsupported_allele'>
    """
    if not _DNA.match(alt) or not _DNA.match(ref):
        return Status.UNSUPPORTED_ALLELE
    return None


def normalize_allele(contig: np.ndarray | Contig, start: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim shared bases and left-align an allele in repeats, as ``bcftools norm`` does.

    Parameters
    ----------
    contig
        The whole contig as uint8 codes, or the FASTA's :class:`~veff.io.fasta.Contig` (REF
        must match it at ``start``).
    start
        0-based start of ``ref``.
    ref, alt
        Upper-case DNA alleles.

    Returns
    -------
    tuple
        ``(start, ref, alt)`` normalised; unchanged for SNVs and for ``ref == alt``.

    Examples
    --------
    >>> g = str_to_codes("GCAAAAT")
    >>> normalize_allele(g, 4, "AA", "A")  # deletion of one A in the homopolymer
    (1, 'CA', 'C')
    """
    if ref == alt or (len(ref) == 1 and len(alt) == 1):
        return start, ref, alt
    while True:
        changed = False
        if ref and alt and ref[-1] == alt[-1]:
            ref, alt = ref[:-1], alt[:-1]
            changed = True
        if (not ref or not alt) and start > 0:
            start -= 1
            base = chr(contig[start])
            ref, alt = base + ref, base + alt
            changed = True
        if not changed or not ref or not alt:
            break
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt, start = ref[1:], alt[1:], start + 1
    return start, ref, alt
