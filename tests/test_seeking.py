"""Reading from the middle of a video: the frames before the start counted from packets, the decoder seeked."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from fer_video import video
from fer_video.seeking import SeekUnsupported, count_frames_before, seek_frames, start_pts
from fer_video.timerange import TimeRange, TimeRangeError
from fer_video.video import VideoReader


@pytest.fixture(scope="module")
def gop_video(tmp_path_factory):
    """4 s at 25 fps, a keyframe every 12 frames, B-frames: frame i is grey level 2 i (readable after decoding)."""
    path = tmp_path_factory.mktemp("seek") / "gop.mp4"
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=Fraction(25))
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        v.options = {"g": "12", "bf": "2", "keyint_min": "12", "sc_threshold": "0", "crf": "10"}
        for i in range(100):
            img = np.full((48, 64, 3), 2 * i, np.uint8)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))
    return path


def _sequential(path):
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(video=0)]


@pytest.mark.parametrize("start_s", [0.0, 0.04, 0.5, 0.52, 1.0, 2.37, 3.96])
def test_seeking_gives_the_frames_and_numbers_of_a_full_decode(gop_video, start_s):
    every = _sequential(gop_video)
    with av.open(str(gop_video)) as c:
        stream = c.streams.video[0]
        pts = start_pts(stream, start_s)
        first = count_frames_before(gop_video, stream.index, pts)
        expected = next(i for i, p in enumerate(every) if p >= pts)
        assert first == expected
        frames = [f for f in seek_frames(c, stream, pts) if f.pts >= pts]
        assert [f.pts for f in frames] == every[first:]
        grey = [int(f.to_ndarray(format="rgb24")[24, 32, 0]) for f in frames[:3]]
        assert grey == pytest.approx([2 * i for i in range(first, first + len(grey))], abs=3)


def test_seeking_decodes_from_a_keyframe_near_the_start_not_from_the_beginning(gop_video):
    with av.open(str(gop_video)) as c:
        stream = c.streams.video[0]
        pts = start_pts(stream, 3.0)  # frame 75; keyframes at 0, 12, ..., 72
        decoded_before = [f.pts for f in seek_frames(c, stream, pts) if f.pts < pts]
    assert 0 < len(decoded_before) < 12


@pytest.fixture(scope="module")
def raw_h264(tmp_path_factory):
    """A raw H.264 stream: its packets carry no timestamps, so it cannot be read from the middle."""
    path = tmp_path_factory.mktemp("raw") / "raw.h264"
    with av.open(str(path), "w", format="h264") as out:
        v = out.add_stream("libx264", rate=Fraction(25))
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 2 * i, np.uint8), format="rgb24")))
        out.mux(v.encode(None))
    return path


def test_a_container_that_cannot_seek_says_so(raw_h264):
    with av.open(str(raw_h264)) as c:
        stream = c.streams.video[0]
        with pytest.raises(SeekUnsupported):
            count_frames_before(raw_h264, stream.index, start_pts(stream, 0.5))


def _read(path, time_range=None):
    with VideoReader(path, time_range=time_range) as reader:
        return [(f.index, f.time_s, int(f.image[24, 32, 0])) for f in reader]


@pytest.mark.parametrize(("start", "end"), [(0.5, None), (1.02, 2.5), (None, 1.0), (3.96, None), (2.0, 2.04)])
def test_the_reader_gives_the_range_numbered_and_timed_as_the_whole_video(gop_video, start, end):
    whole = _read(gop_video)
    r = TimeRange(start, end)
    assert _read(gop_video, r) == [f for f in whole if r.contains(f[1])]


def test_the_reader_decodes_one_gop_at_most_before_the_start(gop_video, monkeypatch):
    decoded = []

    def counting(container, stream, pts):
        for frame in seek_frames(container, stream, pts):
            decoded.append(frame.pts)
            yield frame

    monkeypatch.setattr(video, "seek_frames", counting)
    frames = _read(gop_video, TimeRange(3.0, 3.2))
    assert [f[0] for f in frames] == [75, 76, 77, 78, 79]
    assert len(decoded) - len(frames) < 12  # from keyframe 72, not from frame 0 (and nothing after the end)


def test_a_container_that_cannot_seek_is_decoded_from_the_beginning(raw_h264):
    whole = _read(raw_h264)
    r = TimeRange(0.5, 0.8)
    assert _read(raw_h264, r) == [f for f in whole if r.contains(f[1])] != []


def test_a_range_outside_the_video_fails_on_opening(gop_video):
    with pytest.raises(TimeRangeError, match=r"^gop.mp4: --start 00:00:05.000 is not before the end"):
        VideoReader(gop_video, time_range=TimeRange(5.0, None))
