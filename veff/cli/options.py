"""What the commands share: option blocks, option parsing, the error line and logging set-up."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

import click

__all__ = [
    "command_line",
    "fail",
    "parse_json_list",
    "profile_options",
    "quiet_htslib",
    "setup_logging",
    "split_list",
    "trust_model_option",
    "weights_options",
]

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


def trust_model_option(f: F) -> F:
    """Add ``--trust-model``: allow a pickled PyTorch module, whose unpickling runs its code."""
    return click.option(
        "--trust-model",
        is_flag=True,
        help="Load a pickled PyTorch module (torch.save(model)): unpickling runs code from the file, "
        "so only for files from a trusted source (see docs/models.md, Trust).",
    )(f)


def weights_options(f: F) -> F:
    """Add ``--weights``, ``--random-weights`` and ``--trust-model`` (how a PyTorch model is loaded)."""
    f = trust_model_option(f)
    f = click.option(
        "--random-weights",
        is_flag=True,
        help="Score FILE.py::Class without --weights, with its initial (untrained) weights.",
    )(f)
    return click.option(
        "--weights",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="State dict for MODEL given as FILE.py::Class.",
    )(f)


def split_list(values: tuple[str, ...]) -> list[str]:
    """Flatten repeated, comma-separated option values: ``("a,b", "c") -> ["a", "b", "c"]``."""
    return [item.strip() for v in values for item in v.split(",") if item.strip()]


def parse_json_list(values: tuple[str, ...], option: str) -> list[dict[str, Any]]:
    """Parse each value as a JSON object or a path to a JSON file."""
    out = []
    for text in values:
        source = Path(text).read_text() if Path(text).is_file() else text
        try:
            obj = json.loads(source)
        except json.JSONDecodeError as exc:
            msg = f"{option}: not valid JSON ({exc.msg} at char {exc.pos}): {text!r}"
            raise click.BadParameter(msg) from None
        if not isinstance(obj, dict):
            msg = f'{option}: expected a JSON object such as \'{{"rc_merging": "max"}}\', got {text!r}'
            raise click.BadParameter(msg)
        out.append(obj)
    return out


def fail(exc: Exception) -> NoReturn:
    """Print ``veff: error: <exc>`` on stderr, as one line, and exit with code 1."""
    click.echo(f"veff: error: {' '.join(str(exc).split())}", err=True)
    sys.exit(1)


# options that change how a run is carried out, not its output (a sharded run writes the same bytes)
_NOT_RECORDED = frozenset({"quiet", "workers", "scheduler", "work_dir", "shard_records"})


def command_line() -> str:
    """Rebuild the invoked command from click's parsed parameters (for the output header)."""
    ctx = click.get_current_context()
    parts = ["veff", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value in (None, (), False) or param.name in _NOT_RECORDED:
            continue
        if isinstance(param, click.Argument):
            parts.append(shlex.quote(str(value)))
            continue
        flag = max(param.opts, key=len)
        if value is True:
            parts.append(flag)
            continue
        for item in value if isinstance(value, tuple) else (value,):
            parts += [flag, shlex.quote(str(item))]
    return " ".join(parts)


def setup_logging(quiet: bool) -> None:
    """Log veff's messages (INFO, or WARNING when quiet) as plain lines on stderr.

    Warnings, veff's (:class:`~veff.errors.VeffWarning`) and other libraries', print as one line
    ``veff: warning: ...``, not Python's two-line ``file:line: Category: ...`` form. htslib's own
    messages (``[W::bcf_hrec_check]``, ``[E::hts_idx_push]``, ...) are turned off: veff reports
    the cases it meets itself, as an error or a status.
    """
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        # other libraries' INFO (Dask's) stays out
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.split(".")[0] in ("veff", "py"))
        handler.setFormatter(_LineFormatter())
        root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    warnings.showwarning = _show_warning
    quiet_htslib()


class _StderrHandler(logging.StreamHandler):
    """Write to the ``sys.stderr`` of the moment (click's test runner swaps it per command)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _LineFormatter(logging.Formatter):
    """``%(message)s``, warnings and errors that do not start with ``veff:`` prefixed as veff's."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING and not text.startswith("veff:"):
            kind = "warning" if record.levelno == logging.WARNING else "error"
            text = f"veff: {kind}: {text}"
        return text


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    from veff.errors import VeffWarning

    text = " ".join(str(message).split())
    if not issubclass(category, VeffWarning):
        text = f"{category.__name__}: {text}"
    logging.getLogger("veff").warning("veff: warning: %s", text)


def quiet_htslib() -> None:
    """Turn off the messages htslib prints on stderr, in pysam's and in cyvcf2's copy of it."""
    import pysam
    from cyvcf2 import cyvcf2

    pysam.set_verbosity(0)
    cyvcf2.set_htslib_log_level(0)
