"""Atomic file output: write under a temporary name, rename into place on success.

An output is finished in two steps, so that the outputs of one run replace their files together
(:func:`veff.writers.sink.commit_all`): :meth:`AtomicOutput.finish` completes the temporary file
(and its side files), :meth:`AtomicOutput.commit` renames it into place. :meth:`AtomicOutput.abort`
removes whatever a failed run left under the temporary names.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from veff.writers.targets import is_stream

__all__ = ["AtomicOutput", "AtomicPath"]


class AtomicPath:
    """A temporary path beside ``final`` that is renamed to ``final`` on :meth:`commit`.

    The temporary name keeps the final suffixes (``.vcf.gz``) so tools that pick formats by suffix
    behave the same. :meth:`discard` removes it (and its side files) after an error or Ctrl-C.
    ``tag`` (default: the process id) tells apart writers of the same file in different processes
    or on different machines (part files of a sharded run).

    A symbolic link is followed: the temporary file goes beside the link's target, which
    :meth:`commit` replaces, so the link stays (as does a link named like a side file, ``.tbi``).
    A stream (a FIFO, ``/dev/stdout``: :func:`veff.writers.targets.is_stream`) is written in place:
    ``tmp`` is ``final``, :meth:`commit` and :meth:`discard` leave it alone, and it has no side files.
    """

    def __init__(self, final: str | os.PathLike[str], *, tag: str | None = None) -> None:
        self.final = Path(final)
        self.stream = is_stream(self.final)
        self.target = self.final if self.stream else Path(os.path.realpath(self.final))
        suffix = "".join(self.final.suffixes[-2:]) if self.final.suffixes else ""
        stem = self.final.name[: len(self.final.name) - len(suffix)] if suffix else self.final.name
        self.tmp = (
            self.final
            if self.stream
            else self.target.with_name(f".{stem}.veff-tmp-{tag or os.getpid()}{suffix}")
        )
        self.side_suffixes: list[str] = []

    def commit(self) -> None:
        """Move the temporary file (and side files such as ``.tbi``, first) into place."""
        if self.stream:
            return
        for side in self.side_suffixes:
            _replace(Path(f"{self.tmp}{side}"), Path(os.path.realpath(f"{self.final}{side}")))
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        """Remove the temporary file and its side files, if present (never a stream)."""
        if self.stream:
            return
        for p in [self.tmp, *(Path(f"{self.tmp}{s}") for s in self.side_suffixes)]:
            p.unlink(missing_ok=True)


def _replace(src: Path, dest: Path) -> None:
    """Rename ``src`` to ``dest``; through a copy beside ``dest`` when that is another folder."""
    if src.parent == dest.parent:
        os.replace(src, dest)
        return
    near = dest.with_name(f".{dest.name}.veff-tmp-{os.getpid()}")
    try:
        shutil.copyfile(src, near)
        os.replace(near, dest)
    finally:
        near.unlink(missing_ok=True)
        src.unlink(missing_ok=True)


class AtomicOutput:
    """Mixin for writers of one file under an :class:`AtomicPath`: finish, commit, abort.

    A subclass sets ``self._atomic`` before writing and implements :meth:`_finish`, which closes
    the temporary file (on success and after an error alike). :meth:`close` is :meth:`finish`
    then :meth:`commit`, for a writer used on its own.
    """

    _atomic: AtomicPath
    _finished = False
    _committed = False

    def finish(self) -> None:
        """Complete the file under its temporary name (nothing is replaced yet)."""
        if not self._finished:
            self._finish()
            self._finished = True

    def commit(self) -> None:
        """Move the finished file into place."""
        self._atomic.commit()
        self._committed = True

    def close(self) -> None:
        """Finish the file and move it into place."""
        self.finish()
        self.commit()

    def abort(self) -> None:
        """Drop the partial output (a no-op after :meth:`commit`)."""
        if self._committed:
            return
        try:
            if not self._finished:
                self._finished = True
                self._finish()
        finally:
            self._atomic.discard()

    def _finish(self) -> None:
        """Close the temporary file."""
        raise NotImplementedError
