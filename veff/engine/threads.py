"""Background threads of a run: the reader ahead of the model and the writer behind it.

Both keep order and hand errors back to the calling thread: a failure in the background is
raised where the pipeline next talks to the thread (or when it closes it).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["BackgroundWorker", "prefetch"]

T = TypeVar("T")


def prefetch(gen: Iterator[T], depth: int = 2) -> Generator[T, None, None]:
    """Run ``gen`` in a background thread, ``depth`` items ahead.

    Closing the returned generator (or finishing it) stops the thread and waits for it, so the
    caller may then close what ``gen`` reads from.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item: Any) -> bool:
        """Queue ``item`` unless the consumer stopped; False when it did."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in gen:
                if not offer(item):
                    return
            offer(done)
        except BaseException as exc:
            offer(exc)

    t = threading.Thread(target=work, name="veff-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


class BackgroundWorker(Generic[T]):
    """Call ``fn(item)`` on every queued item, in order, in one background thread.

    The pipeline formats and writes a chunk here while the model computes the next one (the
    forward pass releases the GIL). At most ``depth`` items wait in the queue.
    """

    _DONE = object()

    def __init__(self, fn: Callable[[T], None], depth: int = 2, name: str = "veff-writer") -> None:
        self._fn = fn
        self._q: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is self._DONE or self._stop.is_set():
                return
            if self._error is not None:
                continue  # drain, so that put() never blocks after a failure
            try:
                self._fn(item)
            except BaseException as exc:
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue ``item``; raises the error of an earlier item, if one failed."""
        self._raise()
        while True:
            try:
                self._q.put(item, timeout=0.1)
                return
            except queue.Full:
                self._raise()
                if not self._thread.is_alive():
                    msg = "the veff writer thread stopped"
                    raise RuntimeError(msg) from None

    def close(self) -> None:
        """Wait until every queued item is done; raises the first error."""
        self._q.put(self._DONE)
        self._thread.join()
        self._raise()

    def stop(self) -> None:
        """Drop the queued items and wait for the one in progress (for error paths)."""
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._q.put_nowait(self._DONE)
        self._thread.join()
