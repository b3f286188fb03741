"""Click options shared by ``score-variants`` and ``create-mutation-map``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["profile_options"]

F = TypeVar("F", bound=Callable[..., Any])


def profile_options(f: F) -> F:
    """Add ``--aggregate``, ``--output-offset`` (position-resolved outputs) and ``--rc-swap-tasks``."""
    f = click.option(
        "--rc-swap-tasks",
        metavar="A:B[,C:D]",
        help="Strand-specific tasks (labels or 0-based indices) that trade places on the reverse "
        "complement, e.g. BPNet's 'Oct4/profile.0:Oct4/profile.1'; used with --rc.",
    )(f)
    f = click.option(
        "--output-offset",
        type=click.IntRange(min=0),
        help="Input index seen by output position 0 of position-resolved outputs (default: centred crop).",
    )(f)
    return click.option(
        "--aggregate",
        multiple=True,
        metavar="SPEC",
        help="How position-resolved outputs become one value per task: a reducer "
        "max_abs|max|min|mean|sum (default max_abs) and a scope all|at_variant|window:K, e.g. "
        "--aggregate 'window:50 max_abs'.",
    )(f)
