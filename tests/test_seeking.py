"""Reading from the middle of a video: the frames before the start counted from packets, the decoder seeked."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from fer_video.seeking import SeekUnsupported, count_frames_before, seek_frames, start_pts


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


def test_a_container_that_cannot_seek_says_so(tmp_path):
    path = tmp_path / "raw.h264"
    with av.open(str(path), "w", format="h264") as out:
        v = out.add_stream("libx264", rate=Fraction(25))
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            out.mux(v.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8), format="rgb24")))
        out.mux(v.encode(None))
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        with pytest.raises(SeekUnsupported):
            count_frames_before(path, stream.index, start_pts(stream, 0.5))
