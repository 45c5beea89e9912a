"""Face ids across frames: IoU matching (Hungarian) with a short memory for missed detections,
and a fresh start after a scene cut."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from fer_video.assign import linear_sum_assignment
from fer_video.types import Detections


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4), xyxy."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-6)


@dataclass
class _Track:
    face_id: int
    box: np.ndarray
    confidence: float
    last_seen_s: float
    velocity: np.ndarray | None = None  # box corners' pixels per second, from the last two detections

    def predict(self, time_s: float, horizon_s: float) -> np.ndarray:
        """The box moved on at constant velocity to ``time_s`` (at most ``horizon_s`` past the last detection)."""
        if self.velocity is None or horizon_s <= 0:
            return self.box
        dt = min(max(time_s - self.last_seen_s, 0.0), horizon_s)
        return (self.box + self.velocity * dt).astype(np.float32)

    def observe(self, box: np.ndarray, confidence: float, time_s: float) -> None:
        dt = time_s - self.last_seen_s
        if 0 < dt <= 0.5:
            v = (box - self.box) / dt
            self.velocity = v if self.velocity is None else 0.5 * self.velocity + 0.5 * v
        else:
            self.velocity = None
        self.box, self.confidence, self.last_seen_s = box.copy(), float(confidence), time_s


class FaceTracker:
    """Gives each face a stable ``face_id``.

    ``update`` takes a frame's detections and returns them with ids: a detection continues the track it
    overlaps most (IoU >= ``iou_match``, one-to-one), else starts a new id. A track unseen for longer than
    ``max_missed_s`` seconds, or 2.5 detection intervals if that is longer (a low frame rate or a large
    ``detect_every``), is forgotten. ``carry`` returns the faces found by the last detection, for the frames
    until the next one. ``reset`` (after a scene cut) forgets every track; ids are never reused.

    Between detections a box moves on at the velocity of its last two detections, for at most ``predict_s``
    seconds (0: boxes stay where they were last seen); matching also uses these predicted boxes.
    """

    def __init__(self, iou_match: float = 0.1, max_missed_s: float = 0.5, predict_s: float = 0.25) -> None:
        self.iou_match = iou_match
        self.max_missed_s = max_missed_s
        self.predict_s = predict_s
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._last_update_s: float | None = None
        self._interval_s = 0.0  # time between the last two detections

    def reset(self) -> None:
        self._tracks = []
        self._last_update_s = None
        self._interval_s = 0.0

    def state(self) -> dict[str, Any]:
        """Everything ``update`` and ``carry`` depend on (numbers and numpy arrays), for a checkpoint."""
        return {
            "tracks": [dataclasses.asdict(t) for t in self._tracks],
            "next_id": self._next_id,
            "last_update_s": self._last_update_s,
            "interval_s": self._interval_s,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of an earlier run: the same ids, boxes and memory."""
        self._tracks = [_Track(**t) for t in state["tracks"]]
        self._next_id = int(state["next_id"])
        self._last_update_s = state["last_update_s"]
        self._interval_s = float(state["interval_s"])

    @property
    def memory_s(self) -> float:
        """How long a face stays remembered (and carried) after it was last detected."""
        return max(self.max_missed_s, 2.5 * self._interval_s)  # survives one missed detection, not two

    def update(self, dets: Detections, time_s: float) -> Detections:
        if self._last_update_s is not None:
            self._interval_s = max(time_s - self._last_update_s, 0.0)
        self._tracks = [t for t in self._tracks if time_s - t.last_seen_s <= self.memory_s]
        self._last_update_s = time_s
        ids = np.full(len(dets), -1, dtype=np.int64)
        if self._tracks and len(dets):
            iou = iou_matrix(np.stack([t.predict(time_s, self.predict_s) for t in self._tracks]), dets.xyxy)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols, strict=True):
                if iou[r, c] >= self.iou_match:
                    track = self._tracks[r]
                    track.observe(dets.xyxy[c], dets.confidence[c], time_s)
                    ids[c] = track.face_id
        for c in np.flatnonzero(ids < 0):
            self._tracks.append(_Track(self._next_id, dets.xyxy[c].copy(), float(dets.confidence[c]), time_s))
            ids[c] = self._next_id
            self._next_id += 1
        order = np.argsort(ids, kind="stable")
        return Detections(dets.xyxy[order], dets.confidence[order], ids[order])

    def carry(self, time_s: float) -> Detections:
        """The faces of the last detection at ``time_s``, moved on (possibly past the frame's edges: the
        pipeline clips every frame's boxes)."""
        # the faces the last detection saw, until the next detection (however far apart: a low frame rate);
        # one it missed stays remembered for its id but is not drawn
        if self._last_update_s is None:
            return Detections.empty()
        live = [t for t in self._tracks if t.last_seen_s >= self._last_update_s]
        if not live:
            return Detections.empty()
        live.sort(key=lambda t: t.face_id)
        return Detections(
            np.stack([t.predict(time_s, self.predict_s) for t in live]),
            np.array([t.confidence for t in live]),
            np.array([t.face_id for t in live]),
        )


class SceneCutDetector:
    """Flags a hard cut when the grey histogram of a frame differs sharply from the previous frame's."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._prev: np.ndarray | None = None

    def state(self) -> dict[str, Any]:
        """The previous frame's histogram (what the next frame is compared with), for a checkpoint."""
        return {"prev": self._prev}

    def restore(self, state: dict[str, Any]) -> None:
        self._prev = state["prev"]

    def is_cut(self, image: np.ndarray) -> bool:
        # 128x72 sampled pixels (nearest): a histogram as good for this test, at 1 % of an area resize's cost
        small = cv2.resize(image, (128, 72), interpolation=cv2.INTER_NEAREST)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        hist = cv2.calcHist([grey], [0], None, [32], [0, 256]).ravel()
        hist /= max(hist.sum(), 1.0)
        prev, self._prev = self._prev, hist
        if prev is None:
            return False
        return float(np.minimum(prev, hist).sum()) < self.threshold  # histogram intersection in [0, 1]
