"""Command line: one module per command group, shared options in :mod:`veff.cli.options`.

Each command parses its options, calls one library function, and turns a
:class:`~veff.errors.VeffError` into one line on stderr and exit code 1.
"""

from __future__ import annotations

from veff.cli.main import main

__all__ = ["main"]
