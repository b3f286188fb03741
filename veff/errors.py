"""Exceptions and warnings raised by veff.

Every error a user can cause derives from :class:`VeffError`; the command line turns it into
one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import numbers

__all__ = ["InputError", "ModelError", "OutputError", "VeffError", "VeffWarning", "check_int"]


class VeffError(ValueError):
    """Base class of all errors caused by bad input or configuration."""


class InputError(VeffError):
    """A file or argument given by the user cannot be used (names the file, line and expectation)."""


class ModelError(VeffError):
    """A model cannot be loaded or does not behave as veff expects."""


class OutputError(VeffError):
    """An output cannot be written (full disk, read-only file system, ...): ``cannot write OUT: why``."""


class VeffWarning(UserWarning):
    """Warnings emitted by veff (filter them with ``warnings.filterwarnings``)."""


def check_int(name: str, value: object, low: int, *, optional: bool = True) -> None:
    """Raise :class:`InputError` unless ``value`` is a whole number of at least ``low`` (or None).

    ``bool`` is refused (``True`` is not a count); numpy integers are accepted.

    Examples
    --------
    >>> check_int("batch_size", 16, 1)
    >>> check_int("batch_size", 1.5, 1)
    Traceback (most recent call last):
    ...
    veff.errors.InputError: batch_size must be a whole number (at least 1), got 1.5
    """
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        msg = f"{name} must be a whole number (at least {low}), got {value!r}"
        raise InputError(msg)
    if value < low:
        msg = f"{name} must be at least {low}, got {value}"
        raise InputError(msg)
