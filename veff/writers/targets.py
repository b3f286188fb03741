"""Where outputs go: the checks made before any work, streams, and OS errors as one line.

Before a run does anything, :func:`check_outputs` refuses (one :class:`~veff.errors.InputError`
line each) an output that is one of the run's inputs (also under another spelling or through a
symbolic link), two outputs that are the same file, an output folder that does not exist or is
not writable, an output that is a folder, and a format that needs a regular file (HDF5,
Parquet) on a stream.

A *stream* (:func:`is_stream`) is an output path that names something other than a regular file
(a FIFO, a character device such as ``/dev/null``), or a file descriptor's name (``/dev/stdout``,
``/dev/fd/3``). A stream is written in place, in one pass, and never replaced, removed or indexed
(:class:`~veff.writers._atomic.AtomicPath`). Other paths are written under a temporary name and
renamed into place; a symbolic link is followed, so the link stays and its target is replaced.

:func:`writing` turns an ``OSError`` raised while an output is written (a full disk, a read-only
file system) into :class:`~veff.errors.OutputError`: ``cannot write OUT: No space left on device``.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from veff.errors import InputError, OutputError

__all__ = ["check_outputs", "is_stream", "os_reason", "writing"]

_FD_NAME = re.compile(r"^/(?:dev/(?:stdout|stderr|fd/\d+)|proc/(?:self|\d+)/fd/\d+)$")
# formats that are not written front to back (a stream cannot take them)
_SEEKING = (".parquet", ".h5", ".hdf5")


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is written as a stream: a FIFO, a device, or a file descriptor's name.

    ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` and ``/proc/*/fd/N`` are streams even when
    they lead to a regular file (the shell's ``> FILE``): that file is not replaced.
    """
    if _FD_NAME.match(str(Path(path).absolute())):
        return True
    try:
        mode = Path(path).stat().st_mode
    except OSError:  # not there (or a dangling link): a new regular file
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def os_reason(exc: OSError) -> str:
    """The operating system's words for ``exc`` (``No space left on device``), else its message."""
    if exc.errno:
        return os.strerror(exc.errno)
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def writing(path: str | os.PathLike[str] | None) -> Iterator[None]:
    """Raise an ``OSError`` inside the block as ``OutputError("cannot write PATH: reason")``."""
    try:
        yield
    except OSError as exc:
        if path is None:
            raise
        msg = f"cannot write {path}: {os_reason(exc)}"
        raise OutputError(msg) from exc


def _same(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:  # one of them does not exist yet
        return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(
    outputs: Mapping[str, str | os.PathLike[str] | None],
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
    *,
    files_only: Collection[str] = (),
) -> None:
    """Refuse outputs that cannot be written, before any work (see the module docstring).

    Parameters
    ----------
    outputs
        What each output is (``"the output VCF"``, ``"the table"``) -> its path (None: not asked).
    inputs
        What each input is (``"the input VCF"``) -> its path.
    files_only
        The outputs (keys of ``outputs``) that need a regular file whatever their name (HDF5);
        also refused on a stream: names ending in .parquet, .h5 or .hdf5.

    Raises
    ------
    InputError
        Naming the output and what is wrong with it.
    """
    given = {what: Path(p) for what, p in outputs.items() if p is not None}
    sources = {what: Path(p) for what, p in (inputs or {}).items() if p is not None}
    seen: list[tuple[str, Path]] = []
    for what, path in given.items():
        for src_what, src in sources.items():
            if _same(path, src):
                msg = f"{path}: {what} is {src_what} ({src}); give the output another name"
                raise InputError(msg)
        for other_what, other in seen:
            if _same(path, other):
                msg = f"{path}: given as both {other_what} and {what}; give each output its own file"
                raise InputError(msg)
        seen.append((what, path))
        if is_stream(path):
            if what in files_only or path.name.lower().endswith(_SEEKING):
                msg = f"{path}: {what} needs a regular file (it is not written front to back), not a stream"
                raise InputError(msg)
            if not os.access(path, os.W_OK):
                msg = f"{path}: {what} cannot be written (no permission)"
                raise InputError(msg)
            continue
        if path.is_dir():
            msg = f"{path}: {what} is a folder; give a file name"
            raise InputError(msg)
        folder = Path(os.path.realpath(path)).parent
        if not folder.is_dir():
            msg = f"{path}: output folder {path.parent} does not exist"
            raise InputError(msg)
        if not os.access(folder, os.W_OK | os.X_OK):
            msg = f"{path}: cannot write to the output folder {folder} (read-only or no permission)"
            raise InputError(msg)
