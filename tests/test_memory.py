"""The heap trimmer that keeps peak memory flat on long videos."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fer_video.memory import HeapTrimmer


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_trims_every_nth_tick():
    heap = HeapTrimmer(every=3)
    for _ in range(10):
        heap.tick()
    assert heap.ticks == 10
    assert heap.trims == (3 if heap.available else 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_trim_gives_fragmented_free_memory_back():
    heap = HeapTrimmer(every=1)
    assert heap.available
    blocks = [bytearray(64 * 1024) for _ in range(2000)]  # 125 MiB from the heap (below the mmap threshold)
    del blocks[::2]  # free every other block: ~62 MiB of holes the heap cannot shrink past
    before = _rss_mb()
    heap.tick()
    after = _rss_mb()
    assert before - after > 40, (before, after)
    del blocks
