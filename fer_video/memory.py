"""Keep peak memory flat on long videos: give freed heap pages back to the OS now and then (glibc only).

MTCNN allocates tensors whose sizes change with every call (image pyramid, a varying number of candidate
faces). glibc keeps the freed memory in its heap, fragmented, so the resident size creeps up for hundreds of
frames before it levels off (measured: +320 MB over the first 100 detector calls on 1280x720 frames).
``malloc_trim(0)`` hands the free pages back. After every call it kept the detector's memory flat but cost
about a fifth more CPU (the pages are faulted in again); every ``every``-th call keeps most of the gain for
little cost. Numbers and commands: docs/performance.md. Elsewhere (macOS, Windows, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[], object] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


class HeapTrimmer:
    """Call ``tick()`` once per unit of work (a chunk of frames); every ``every``-th tick trims the heap."""

    def __init__(self, every: int = 8) -> None:
        self.every = max(1, every)
        self.ticks = 0
        self.trims = 0
        self._trim = _malloc_trim()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def tick(self) -> None:
        self.ticks += 1
        if self._trim is not None and self.ticks % self.every == 0:
            self._trim()
            self.trims += 1
