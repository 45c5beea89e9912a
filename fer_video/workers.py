"""Bounded background threads that let the pipeline's stages overlap (decode | models | draw + encode).

One item at most waits between stages, so memory stays flat however long the video; an exception in a
thread is handed to the pipeline's thread and raised there.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

_END = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetch:
    """Iterate ``source`` in a background thread, at most ``depth`` items ahead (bounded: memory stays flat).

    PyAV decodes and converts frames without holding the GIL, so the next frames are decoded while the models
    run. ``close`` stops the thread and waits for it (call it before the reader closes its container).
    """

    def __init__(self, source: Iterator[Any], depth: int = 1, name: str = "fer-video-decode") -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _run(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failed(exc))

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class Background:
    """Run ``work(item)`` for each submitted item, in order, in one background thread with a bounded queue
    (drawing and H.264 encoding release the GIL, so they overlap with the models). An exception there is
    raised by the next ``submit`` or by ``finish``; ``abort`` drops what is queued and waits for the thread."""

    def __init__(self, work: Callable[[Any], None], depth: int = 1, name: str = "fer-video-encode") -> None:
        self._work = work
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._skip = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None and not self._skip:
                try:
                    self._work(item)
                except BaseException as exc:
                    self._error = exc

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, item: Any) -> None:
        while True:
            self._check()
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self._check()

    def abort(self) -> None:
        self._skip = True
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()


class Later:
    """``fn(*args)`` computed in a background thread from now on; ``result()`` waits for it and returns it (or
    raises what it raised). Lets slow set-up (loading the models) overlap with other set-up (opening a video)."""

    def __init__(self, fn: Callable[..., Any], *args: Any, name: str = "fer-video-load") -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = fn(*args)
        except BaseException as exc:  # raised by result(), in the caller's thread
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
