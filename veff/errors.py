"""Exceptions and warnings raised by veff.

Every error a user can cause derives from :class:`VeffError`; the command line turns it into
one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

__all__ = ["InputError", "ModelError", "OutputError", "VeffError", "VeffWarning"]


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
