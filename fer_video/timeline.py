"""The per-frame emotion timeline: CSV rows (streamed to disk), the per-video summary and the plot.

CSV contract: one row per (frame, face) and one row for every frame with no face (face columns empty),
sorted by frame then face_id. Columns: ``frame, time_s, face_id, x1, y1, x2, y2, det_conf, emotion,
confidence``, then one column per class (smoothed probability), then ``raw_<class>`` (unsmoothed); with
``classify_every`` above 1 a last column ``classified`` (1: the face was classified on this frame, 0: it kept its
last probabilities).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_video.types import FrameResult

if TYPE_CHECKING:
    import pandas as pd

BASE_COLUMNS = ["frame", "time_s", "face_id", "x1", "y1", "x2", "y2", "det_conf", "emotion", "confidence"]


def timeline_columns(classes: list[str], classified: bool = False) -> list[str]:
    return BASE_COLUMNS + list(classes) + [f"raw_{c}" for c in classes] + (["classified"] if classified else [])


@dataclass
class _FaceStats:
    frames: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    emotions: Counter = field(default_factory=Counter)
    prob_sum: np.ndarray | None = None


class TimelineWriter:
    """Appends rows to a CSV in chunks (memory stays flat) and keeps running per-face statistics."""

    def __init__(self, path: Path, classes: list[str], chunk_rows: int = 2000, classified: bool = False) -> None:
        """``classified``: add the ``classified`` column (runs that classify faces on some frames only)."""
        self.path = path
        self.classes = list(classes)
        self.mark_classified = classified
        self.columns = timeline_columns(self.classes, classified)
        self.chunk_rows = chunk_rows
        self._rows: list[list[Any]] = []
        self._header_written = False
        self.faces: dict[int, _FaceStats] = {}
        self.frames = 0
        self.frames_with_faces = 0

    def add(self, result: FrameResult) -> None:
        f, faces = result.frame, result.faces
        self.frames += 1
        if len(faces) == 0:
            self._rows.append([f.index, round(f.time_s, 4)] + [None] * (len(self.columns) - 2))
        else:
            self.frames_with_faces += 1
        for i in range(len(faces)):
            fid = int(faces.face_id[i])
            sm, raw = result.smoothed[i], result.probs[i]
            k = int(np.argmax(sm))
            x1, y1, x2, y2 = (round(float(v), 1) for v in faces.xyxy[i])
            self._rows.append(
                [
                    f.index,
                    round(f.time_s, 4),
                    fid,
                    x1,
                    y1,
                    x2,
                    y2,
                    round(float(faces.confidence[i]), 4),
                    self.classes[k],
                    round(float(sm[k]), 4),
                ]
                + [round(float(v), 4) for v in sm]
                + [round(float(v), 4) for v in raw]
                + ([1 if result.classified is None else int(result.classified[i])] if self.mark_classified else [])
            )
            st = self.faces.setdefault(fid, _FaceStats(first_s=f.time_s))
            st.frames += 1
            st.last_s = f.time_s
            st.emotions[self.classes[k]] += 1
            st.prob_sum = sm.astype(np.float64) if st.prob_sum is None else st.prob_sum + sm
        if len(self._rows) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows and self._header_written:
            return
        # the csv module writes what pandas' to_csv wrote here (None as an empty field, floats by repr), without
        # importing pandas (0.5 CPU-s at start-up)
        with open(self.path, "a" if self._header_written else "w", newline="") as fh:
            out = csv.writer(fh, lineterminator="\n")
            if not self._header_written:
                out.writerow(self.columns)
            out.writerows(self._rows)
        self._header_written = True
        self._rows = []

    def state(self) -> dict[str, Any]:
        """The running statistics, for a checkpoint (call after ``flush``: the rows are in the file)."""
        assert not self._rows, "flush() first"
        return {
            "header_written": self._header_written,
            "frames": self.frames,
            "frames_with_faces": self.frames_with_faces,
            "faces": [[fid, {**vars(st), "emotions": dict(st.emotions)}] for fid, st in self.faces.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue an earlier run's CSV (``path`` holds its rows) and statistics."""
        self._header_written = bool(state["header_written"])
        self.frames, self.frames_with_faces = int(state["frames"]), int(state["frames_with_faces"])
        self.faces = {}
        for fid, st in state["faces"]:
            self.faces[int(fid)] = _FaceStats(**{**st, "emotions": Counter(st["emotions"])})

    def face_summaries(self) -> dict[str, Any]:
        out = {}
        for fid in sorted(self.faces):
            st = self.faces[fid]
            share = {c: round(st.emotions.get(c, 0) / st.frames, 4) for c in self.classes}
            out[str(fid)] = {
                "frames": st.frames,
                "first_s": round(st.first_s, 3),
                "last_s": round(st.last_s, 3),
                "dominant_emotion": max(self.classes, key=lambda c: st.emotions.get(c, 0)),
                "share": share,
                "mean_probs": {
                    c: round(float(v), 4) for c, v in zip(self.classes, st.prob_sum / st.frames, strict=True)
                },
            }
        return out

    def dominant_emotion(self) -> str | None:
        """The emotion shown in most (frame, face) rows; a tie goes to the class listed first in the model."""
        total: Counter = Counter()
        for st in self.faces.values():
            total.update(st.emotions)
        return max(self.classes, key=lambda c: total.get(c, 0)) if total else None


def read_timeline(path: str | Path) -> pd.DataFrame:
    """Read a timeline CSV back with the right types (``face_id`` nullable integer)."""
    import pandas as pd

    return pd.read_csv(path, dtype={"face_id": "Int64", "emotion": "string"})


def face_series(csv_path: str | Path, columns: list[str]) -> dict[int, dict[str, np.ndarray]]:
    """Per face id (in order of first appearance), ``time_s`` and ``columns`` of its rows, read from a timeline
    CSV as float arrays."""
    rows: dict[int, list[list[float]]] = defaultdict(list)
    with open(csv_path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["face_id"]:
                rows[int(row["face_id"])].append([float(row[c]) for c in ["time_s", *columns]])
    return {
        fid: dict(zip(["time_s", *columns], np.array(values, dtype=np.float64).T, strict=True))
        for fid, values in rows.items()
    }


def plot_timeline(csv_path: Path, png_path: Path, classes: list[str], max_faces: int = 8, title: str = "") -> None:
    """Smoothed probabilities over time, one panel per face (the ``max_faces`` faces seen longest)."""
    from fer_video.plot import write_plot

    series = face_series(csv_path, classes)
    top = sorted(sorted(series, key=lambda fid: -len(series[fid]["time_s"]))[:max_faces])
    write_plot(png_path, {fid: series[fid] for fid in top}, classes, title)
