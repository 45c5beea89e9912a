"""The server's memory over many jobs (glibc's allocator; nothing happens where there is none).

A job allocates its frames, crops and encoder buffers in several threads (Gradio's workers, the pipeline's
decoder and writer, started per job), and glibc keeps freed memory in one arena per thread, up to 8 per core:
the server's RSS grew by about 200 MB over its first 30 jobs (`benchmarks/load.py`), though nothing of a job is
kept. Two arenas, and what a job freed handed back when it ends, keep it flat.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # glibc's mallopt parameter
ARENAS = 2


def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_arenas(arenas: int = ARENAS) -> None:
    """At most ``arenas`` malloc arenas from now on (as ``MALLOC_ARENA_MAX`` would set at start-up)."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_ARENA_MAX, arenas)


def return_freed_memory() -> None:
    """Give the memory freed by a finished job back to the system."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
