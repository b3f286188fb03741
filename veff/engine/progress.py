"""Progress bars on stderr (tqdm), or a silent stand-in."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["progress_bar"]


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(enabled: bool, *, unit: str, total: int | None = None) -> Any:
    """Return a tqdm bar counting ``unit`` (with rate), or a no-op bar when disabled."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit=f" {unit}", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
