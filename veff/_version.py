"""The version of veff (read by the build backend and by ``veff --version``)."""

from __future__ import annotations

__version__ = "0.1.0"
