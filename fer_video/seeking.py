"""Starting to read a video part-way (``--start``) without decoding what comes before.

Frame numbers must stay those of the whole video, so the frames before the start are counted from the
container's packets (read, not decoded: one packet is one frame), then the decoder is sent by ``container.seek``
to the keyframe at or before the start and the few frames between that keyframe and the start are decoded and
dropped. When the container cannot do either (no timestamps on its packets, a stream that cannot seek, a seek
that lands after the start), ``SeekUnsupported`` tells the reader to decode from the beginning instead, which
gives the same frames, only slower.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import av

log = logging.getLogger(__name__)


class SeekUnsupported(Exception):
    """This input cannot be read from the middle: decode from the beginning and drop the frames before the start."""


def start_pts(stream: av.video.stream.VideoStream, start_s: float) -> int:
    """The presentation timestamp (in the stream's time base) of ``start_s`` seconds from the stream's start."""
    # the first timestamp at or after start_s (as TimeRange.contains decides, to a microsecond)
    return int((stream.start_time or 0) + math.ceil((start_s - 1e-6) / float(stream.time_base)))


def count_frames_before(path: Path, stream_index: int, pts: int) -> int:
    """How many frames of the video stream ``stream_index`` are shown before ``pts``: its packets, demuxed only.

    Raises ``SeekUnsupported`` when a packet carries no timestamp."""
    count = 0
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams[stream_index]
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:  # the demuxer's end marker; frames an edit list hides
                continue
            if packet.pts is None:
                raise SeekUnsupported(f"{path.name}: packets without timestamps")
            if packet.dts is not None and packet.dts >= pts:
                break  # decoded after the start, so shown after it, as is everything that follows (pts >= dts)
            count += packet.pts < pts
    return count


def seek_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream, pts: int) -> Iterator:
    """Decoded frames of ``stream`` from the keyframe at or before ``pts`` on (the caller drops those before
    ``pts``). Raises ``SeekUnsupported`` when the container cannot seek or lands after ``pts``."""
    try:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
    except (av.FFmpegError, ValueError) as exc:
        raise SeekUnsupported(str(exc)) from None
    frames = (frame for packet in container.demux(stream) for frame in packet.decode())
    first = next(frames, None)
    if first is None or first.pts is None or first.pts > pts:
        raise SeekUnsupported("the seek landed after the start")

    def chained() -> Iterator[av.VideoFrame]:
        yield first
        yield from frames

    return chained()
