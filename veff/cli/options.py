"""What the commands share: option blocks, option parsing, the error line and logging set-up."""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO, TypeVar

import click

__all__ = [
    "BatchSize",
    "Terminated",
    "command_line",
    "fail",
    "log_options",
    "interrupted",
    "model_kwargs",
    "on_sigterm",
    "parse_json_list",
    "profile_options",
    "quiet_h5py_cleanup",
    "quiet_htslib",
    "scoring_kwargs",
    "setup_logging",
    "shared_options",
    "split_list",
    "trust_model_option",
    "weights_options",
]

F = TypeVar("F", bound=Callable[..., Any])


class BatchSize(click.ParamType):
    """``--batch-size``: a positive number of sequences, or ``tune``."""

    name = "N|tune"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        """The number, or ``"tune"``; anything else is a usage error naming what is expected."""
        if isinstance(value, int) and value >= 1:
            return value
        text = str(value).strip().lower()
        if text == "tune":
            return "tune"
        if text.isdigit() and int(text) >= 1:
            return int(text)
        self.fail(f"{value!r}: expected a positive number of sequences or 'tune'", param, ctx)


def profile_options(f: F) -> F:
    """Add the options of position-resolved outputs: aggregate, output offset and layout, rc task pairs."""
    f = click.option(
        "--output-layout",
        type=click.Choice(["positions_first", "tasks_first"]),
        help="Axes of position-resolved outputs: positions_first (N, P, T) or tasks_first (N, T, P), "
        "as bpnet-lite and OpenSpliceAI write them (default: as the model declares, else positions_first "
        "with a warning for a shape that looks tasks first).",
    )(f)
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


#: options that several commands take with the same meaning and help, by parameter name
#: (:func:`shared_options`); each use makes a fresh :class:`click.Option`
_SHARED: dict[str, Callable[[Any], Any]] = {
    "fasta": click.option(
        "--fasta",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Reference FASTA (plain or bgzipped).",
    ),
    "score_kwargs": click.option(
        "--score-kwargs",
        multiple=True,
        help='JSON object (or file) per --scores entry, e.g. \'{"rc_merging": "max"}\'.',
    ),
    "seq_length": click.option(
        "--seq-length", type=click.IntRange(min=1), help="Window length L (default: the model's)."
    ),
    "model_outputs": click.option(
        "--model-outputs", multiple=True, help="Output labels or indices to keep (comma-separated)."
    ),
    "output_labels": click.option(
        "--output-labels", multiple=True, help="Names of the model outputs (comma-separated)."
    ),
    "input_layout": click.option("--input-layout", help='Per-sequence input layout, e.g. "4,L" or "L,1,4".'),
    "weights": weights_options,
    "device": click.option(
        "--device", default="auto", show_default=True, help="auto, cpu or cuda[:N] (PyTorch)."
    ),
}


def shared_options(*names: str) -> Callable[[F], F]:
    """Add the shared options ``names`` (see :data:`_SHARED`), listed in ``--help`` in that order.

    ``weights`` adds ``--weights``, ``--random-weights`` and ``--trust-model`` (:func:`weights_options`).

    Examples
    --------
    >>> @click.command()
    ... @shared_options("seq_length", "device")
    ... def cmd(**opts): ...
    >>> [p.name for p in cmd.params]
    ['seq_length', 'device']
    """
    unknown = [n for n in names if n not in _SHARED]
    if unknown:
        msg = f"no shared option {unknown[0]!r}; there are {', '.join(_SHARED)}"
        raise ValueError(msg)

    def apply(f: F) -> F:
        for name in reversed(names):  # decorators apply bottom-up; --help lists top-down
            f = _SHARED[name](f)
        return f

    return apply


def model_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    """How the commands' model is loaded (``model_kwargs=`` of the API) from the shared model options."""
    return {
        "input_layout": opts["input_layout"],
        "output_layout": opts["output_layout"],
        "weights": opts["weights"],
        "random_weights": opts["random_weights"],
        "trust_model": opts["trust_model"],
        "device": opts["device"],
    }


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


def scoring_kwargs(opts: dict[str, Any]) -> dict[str, Any]:
    """The scoring options shared by ``score-variants`` and ``calibrate``, as API keyword arguments."""
    return {
        "score_kwargs": parse_json_list(opts["score_kwargs"], "--score-kwargs") or None,
        "rc": opts["rc"],
        "seq_length": opts["seq_length"],
        "batch_size": opts["batch_size"],
        "threads": opts["threads"],
        "output_labels": split_list(opts["output_labels"]) or None,
        "aggregate": list(opts["aggregate"]) or None,
        "output_offset": opts["output_offset"],
        "rc_swap_tasks": opts["rc_swap_tasks"],
        "centering": opts["centering"],
        "max_indel_length": opts["max_indel_length"],
        "model_kwargs": model_kwargs(opts) | {"precision": opts["precision"]},
    }


def fail(exc: Exception) -> NoReturn:
    """Print ``veff: error: <exc>`` on stderr, as one line, and exit with code 1."""
    click.echo(f"veff: error: {' '.join(str(exc).split())}", err=True)
    from veff.mutation_map.hdf5 import teardown_unsafe

    if teardown_unsafe():  # HDF5's exit-time clean-up would crash on the file it could not finish
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    sys.exit(1)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, SLURM's ``scancel``): raised in the main thread, and handled as Ctrl-C is."""


def on_sigterm() -> None:
    """Make SIGTERM end a command as Ctrl-C does: every output is aborted, every temp file removed.

    The first SIGTERM raises :class:`Terminated` where the main thread is; later ones are ignored
    while the run cleans up (a scheduler's SIGKILL still ends it).
    """

    def handler(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def quiet_h5py_cleanup() -> None:
    """Drop h5py's reports of errors while freeing its objects (after a failed write).

    When a disk fills while h5py writes, every h5py object freed afterwards reports the same
    failed write again on stderr (a traceback, then "Exception ignored in ... __dealloc__"); veff
    has reported it once, as ``cannot write OUT: ...``.
    """
    previous_unraisable, previous_except = sys.unraisablehook, sys.excepthook

    def from_h5py_dealloc(tb: Any) -> bool:
        while tb is not None:
            if "h5py" in tb.tb_frame.f_code.co_filename and "dealloc" in tb.tb_frame.f_code.co_name:
                return True
            tb = tb.tb_next
        return False

    def unraisable(args: Any) -> None:
        if "h5py" not in str(getattr(args, "object", "")):
            previous_unraisable(args)

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not from_h5py_dealloc(tb):
            previous_except(kind, value, tb)

    sys.unraisablehook, sys.excepthook = unraisable, excepthook


def interrupted(exc: KeyboardInterrupt) -> NoReturn:
    """End a command stopped by Ctrl-C (exit status 130) or SIGTERM (143) with one line."""
    if isinstance(exc, Terminated):
        click.echo("veff: terminated; no output written", err=True)
        sys.exit(143)
    click.echo("veff: interrupted; no output written", err=True)
    sys.exit(130)


# options that change how a run is carried out, not its output (a sharded run writes the same bytes)
_NOT_RECORDED = frozenset(
    {
        "quiet",
        "workers",
        "scheduler",
        "work_dir",
        "shard_records",
        "verbose",
        "log_level",
        "log_file",
        "progress_interval",
    }
)


def command_line() -> str:
    """Rebuild the invoked command from click's parsed parameters (for the output header)."""
    ctx = click.get_current_context()
    parts = ["veff", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value in (None, (), False) or param.name in _NOT_RECORDED:
            continue
        if isinstance(param, click.Argument):  # nargs=-1 (several model files) gives a tuple
            parts += [shlex.quote(str(item)) for item in (value if isinstance(value, tuple) else (value,))]
            continue
        flag = max(param.opts, key=len)
        if value is True:
            parts.append(flag)
            continue
        for item in value if isinstance(value, tuple) else (value,):
            parts += [flag, shlex.quote(str(item))]
    return " ".join(parts)


LOG_LEVELS = ("debug", "info", "warning", "error")


def log_options(f: F) -> F:
    """Add ``-v/--verbose``, ``--log-level``, ``--log-file`` and ``--progress-interval``."""
    f = click.option(
        "--progress-interval",
        type=click.FloatRange(min=0.1),
        default=10.0,
        show_default=True,
        metavar="SECONDS",
        help="When stderr is not a terminal: seconds between plain progress lines.",
    )(f)
    f = click.option(
        "--log-file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also write the log (with times and levels) to this file.",
    )(f)
    f = click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        help="Log level (default: warning, plus the summary line; -v: info, -vv: debug).",
    )(f)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        help="Log what the run uses and the timings of its stages (info); twice: debug.",
    )(f)


def setup_logging(
    quiet: bool, *, verbose: int = 0, level: str | None = None, log_file: Path | None = None
) -> None:
    """Log veff's messages as plain lines on stderr (and with times to ``log_file``).

    The level is ``level`` if given, else info with ``verbose`` (debug with two), else warning;
    the run's summary line is shown unless ``quiet`` or the level is ``error``.

    Warnings, veff's (:class:`~veff.errors.VeffWarning`) and other libraries', print as one line
    ``veff: warning: ...``, not Python's two-line ``file:line: Category: ...`` form. htslib's own
    messages (``[W::bcf_hrec_check]``, ``[E::hts_idx_push]``, ...) are turned off: veff reports
    the cases it meets itself, as an error or a status.
    """
    name = level or ("debug" if verbose > 1 else "info" if verbose else "warning")
    numeric = getattr(logging, name.upper())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "veff", False)]:  # an earlier call's
        root.removeHandler(old)
        old.close()
    to_stderr = _StderrHandler()
    to_stderr.setFormatter(_LineFormatter())
    handlers: list[logging.Handler] = [to_stderr]
    if log_file is not None:
        try:
            to_file = logging.FileHandler(log_file, mode="a")
        except OSError as exc:
            msg = f"{log_file}: cannot open the log file ({exc.strerror})"
            raise click.BadParameter(msg, param_hint="--log-file") from None
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
    for handler in handlers:  # other libraries' INFO (Dask's) stays out
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.split(".")[0] in ("veff", "py"))
        handler.veff = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("veff").setLevel(numeric)
    # the summary line: shown at the default level, hidden by --quiet
    hide = quiet or numeric > logging.WARNING
    logging.getLogger("veff.summary").setLevel(logging.WARNING if hide else min(numeric, logging.INFO))
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
