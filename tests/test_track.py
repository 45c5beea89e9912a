"""Boxes the tracker carries between detections end up inside the frame (the CSV contract: clipped to it)."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import cv2
import numpy as np

from fer_video import annotate_video
from fer_video.demo import face_sprites
from fer_video.timeline import read_timeline
from fer_video.track import FaceTracker
from fer_video.types import Detections

W, H = 320, 180


def test_boxes_carried_past_the_edge_are_clipped_and_dropped_once_outside():
    """A face moving right at 400 px/s: the tracker moves its box on past the right edge; clipped, it ends at
    the edge, and a box moved wholly past it is left out."""
    tracker = FaceTracker(predict_s=1.0)
    for t, x in ((0.0, 200.0), (0.1, 240.0)):  # velocity 400 px/s
        tracker.update(Detections(np.array([[x, 60, x + 70, 130]]), np.array([0.99])), t)
    moved = tracker.carry(0.15)  # x 260-330: past the edge by 10 px
    np.testing.assert_allclose(moved.xyxy, [[260, 60, 330, 130]])
    inside = moved.clipped(W, H)
    np.testing.assert_allclose(inside.xyxy, [[260, 60, W, 130]])
    assert list(inside.face_id) == [0]
    assert len(tracker.carry(0.35).clipped(W, H)) == 0  # x 340-410: out of the frame


def _face_leaving_right(path, fps: float = 10.0, seconds: float = 2.0, speed: float = 40.0):
    """A face photo gliding right at ``speed`` px/s until most of it has left the frame."""
    sprite = face_sprites()[0]
    side = int(H * 0.5)
    sprite = cv2.resize(sprite, (int(sprite.shape[1] * side / sprite.shape[0]), side), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        for i in range(int(fps * seconds)):
            frame = np.full((H, W, 3), 150, np.uint8)
            x = int(W - sprite.shape[1] + speed * i / fps)
            visible = min(sprite.shape[1], W - x)
            if visible > 0:
                frame[40 : 40 + side, x : x + visible] = sprite[:, :visible]
            out.mux(v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(v.encode(None))
    return path


def test_a_face_leaving_the_frame_keeps_its_csv_boxes_inside_it(tmp_path, fast_settings, models):
    clip = _face_leaving_right(tmp_path / "leaving.mp4")
    result = annotate_video(clip, tmp_path / "out", fast_settings, models=models)
    faces = read_timeline(result.outputs["csv"]).dropna(subset=["face_id"])
    assert len(faces) > 5
    assert (faces[["x1", "y1"]] >= 0).all().all()
    assert (faces["x2"] <= W).all() and (faces["y2"] <= H).all()
    assert (faces["x2"] - faces["x1"] >= 2).all()
    assert math.isclose(faces["x2"].max(), W, abs_tol=0.05)  # the face did reach the edge
