"""Progress on stderr: a tqdm bar on a terminal, a plain line every few seconds elsewhere.

The total is known (an index's record count), estimated (records so far scaled by the share of the
compressed file read so far) or unknown (a stream). On a terminal the bar redraws in place; when
stderr is a file or a pipe (a cluster job's log) carriage-return fragments would pile up, so a
line ``veff: progress: 1200/5000 variants (24%), 310 variants/s, ETA 0:00:12`` is printed every
``interval`` seconds instead, and once at the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO

__all__ = ["DEFAULT_INTERVAL", "Progress", "ProgressBar", "progress_bar"]

DEFAULT_INTERVAL = 10.0  # seconds between plain progress lines


class ProgressBar(Protocol):
    """What the pipeline asks of a progress bar (:class:`Progress` and the stand-ins)."""

    def update(self, n: int) -> Any:
        """Count ``n`` more."""
        ...

    def close(self) -> Any:
        """End the bar."""
        ...

    def stop(self) -> Any:
        """End the bar of work stopped part way (an error, Ctrl-C): not at 100 %."""
        ...


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass

    def stop(self) -> None:
        pass


class Progress:
    """Count ``unit`` toward a known, estimated or unknown total.

    Parameters
    ----------
    unit
        What is counted (``variants``, ``windows``).
    total
        The count at the end, when known.
    size, position
        Bytes of the input and a callable giving the bytes read so far: the total is then
        estimated as ``count * size / position`` (used when ``total`` is None).
    interval
        Seconds between plain lines when ``stream`` is not a terminal.
    stream
        Where to write (default ``sys.stderr``).
    tty
        Draw a bar (default: whether ``stream`` is a terminal).
    """

    def __init__(
        self,
        *,
        unit: str,
        total: int | None = None,
        size: int | None = None,
        position: Callable[[], int | None] | None = None,
        interval: float = DEFAULT_INTERVAL,
        stream: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        self.unit = unit
        self.total = total
        self.count = 0
        self._size = size if size else None
        self._position = position
        self._interval = interval
        self._stream = stream or sys.stderr
        isatty = getattr(self._stream, "isatty", None)
        self._tty = tty if tty is not None else bool(isatty and isatty())
        self._t0 = time.monotonic()
        self._last = self._t0
        self._bar: Any = None
        self._closed = False
        self._printed = -1  # the count of the last plain line
        if self._tty:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, unit=f" {unit}", file=self._stream, dynamic_ncols=True, smoothing=0.1
            )

    def estimate(self) -> int | None:
        """The total: known, or estimated from the share of the input read, or None."""
        if self.total is not None:
            return max(self.total, self.count)
        if self._size is None or self._position is None or not self.count:
            return None
        pos = self._position()
        if not pos:
            return None
        return max(self.count, round(self.count * self._size / min(pos, self._size)))

    def update(self, n: int) -> None:
        """Count ``n`` more."""
        self.count += n
        if self._bar is not None:
            if self.total is None:
                est = self.estimate()
                if est is not None:
                    self._bar.total = est
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._line()

    def line(self) -> str:
        """The plain progress line."""
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        rate = self.count / elapsed
        est = self.estimate()
        text = f"veff: progress: {self.count}"
        if est:
            left = max(est - self.count, 0)
            eta = _clock(left / rate) if rate > 0 else "?"
            about = "" if self.total is not None else "about "
            text += f"/{about}{est} {self.unit} ({100 * self.count / est:.0f}%)"
            text += f", {rate:.0f} {self.unit}/s, ETA {eta}"
        else:
            text += f" {self.unit}, {rate:.0f} {self.unit}/s"
        return text + f", {_clock(elapsed)} elapsed"

    def _line(self) -> None:
        self._printed = self.count
        print(self.line(), file=self._stream, flush=True)

    def close(self) -> None:
        """Finish: the bar at 100 % (the count is the total now), or a last plain line."""
        self._end(complete=True)

    def stop(self) -> None:
        """End work stopped part way (an error, Ctrl-C): the last line shows how far it got, not 100 %."""
        self._end(complete=False)

    def _end(self, *, complete: bool) -> None:
        if self._bar is not None:
            if complete:
                self._bar.total = self.count
            self._bar.refresh()
            self._bar.close()
            self._bar = None
            return
        if not self._closed:
            self._closed = True
            if complete and self.total != self.count:
                self.total = self.count
                self._line()
            elif self._printed != self.count:
                self._line()


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def progress_bar(
    enabled: bool,
    *,
    unit: str,
    total: int | None = None,
    size: int | None = None,
    position: Callable[[], int | None] | None = None,
    interval: float = DEFAULT_INTERVAL,
) -> Any:
    """A :class:`Progress` (see there), or a no-op stand-in when disabled."""
    if not enabled:
        return _NoBar()
    return Progress(unit=unit, total=total, size=size, position=position, interval=interval)
