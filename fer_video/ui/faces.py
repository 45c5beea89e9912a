"""The Video tab's faces, free of Gradio: one order for the face picker and the table (most frames first), which
tracks are brief (hidden unless asked for), and a small thumbnail of each face cut from the run's frames."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_video.timeline import read_timeline
from fer_video.timerange import TimeRange
from fer_video.video import VideoReader

log = logging.getLogger("fer_video.ui")

BRIEF_S = 0.5  # a track seen for less video time than this is "brief" (a passer-by, a false detection)
THUMB_PX = 64  # the thumbnails' longer side
MAX_THUMBS = 24  # faces given a thumbnail at most (the most-seen ones)
BUDGET_S = 15.0  # cutting thumbnails stops after this long (a long video's seeks each scan its packets)
REOPEN_S = 2.0  # thumbnails further apart than this in the video seek again instead of decoding on


@dataclass(frozen=True)
class Faces:
    """The faces of one run as the Video tab lists them."""

    order: list[str]  # "face N" labels, most frames first (ties: lower id first)
    brief: frozenset[str] = frozenset()  # labels hidden unless "show all" is ticked
    thumbs: dict[str, Path] = field(default_factory=dict)  # label -> JPEG


def label(face_id: Any) -> str:
    return f"face {int(face_id)}"


def face_order(per_face: dict[str, dict[str, Any]]) -> list[str]:
    """Most frames first: the faces a person cares about (the ones on screen longest) lead the picker and the
    table; ties keep the id order, so the order is stable from run to run."""
    return [label(fid) for fid in sorted(per_face, key=lambda f: (-per_face[f]["frames"], int(f)))]


def brief_faces(per_face: dict[str, dict[str, Any]], fps: float, brief_s: float = BRIEF_S) -> frozenset[str]:
    """The tracks seen in fewer frames than ``brief_s`` of video (at least 2 frames); none when every track is
    brief, so a short clip never shows an empty list."""
    least = max(2, round(brief_s * (fps or 25.0)))
    brief = frozenset(label(f) for f, face in per_face.items() if face["frames"] < least)
    return brief if len(brief) < len(per_face) else frozenset()


def thumbnails(video: Path, csv_path: Path, folder: Path, faces: list[str] | None = None) -> dict[str, Path]:
    """A JPEG per face (``faces``: labels, most important first; default all, at most ``MAX_THUMBS``), cut
    from the source frame where the face's detected box was largest. Best effort: a face whose frame cannot be
    read, or comes after ``BUDGET_S``, gets none (logged)."""
    out: dict[str, Path] = {}
    deadline = time.monotonic() + BUDGET_S
    try:
        wanted = largest_boxes(csv_path)
        keep = list(wanted) if faces is None else [f for f in faces if f in wanted]
        targets = sorted(((f, wanted[f]) for f in keep[:MAX_THUMBS]), key=lambda kv: kv[1]["frame"])
        if targets:
            folder.mkdir(parents=True, exist_ok=True)
        for face, image in _crops(video, targets):
            path = folder / f"{face.replace(' ', '-')}.jpg"
            _save_jpeg(image, path)
            out[face] = path
            if time.monotonic() > deadline:
                log.info("%s: thumbnails for %d of %d faces (time budget)", Path(video).name, len(out), len(targets))
                break
    except Exception:  # a nicety: the results are complete without thumbnails
        log.warning("%s: could not cut the face thumbnails", Path(video).name, exc_info=True)
    return out


def largest_boxes(csv_path: Path) -> dict[str, dict[str, float]]:
    """Per face label: the timeline row (frame, time_s, x1..y2) where its box was largest; rows of a detection
    are preferred over boxes the tracker carried."""
    df = read_timeline(csv_path).dropna(subset=["face_id"])
    if df.empty:
        return {}
    df = df.assign(area=(df["x2"] - df["x1"]) * (df["y2"] - df["y1"]), detected=df["det_conf"].notna())
    best = df.sort_values(["detected", "area"], ascending=False).groupby("face_id", sort=True).head(1)
    cols = ["frame", "time_s", "x1", "y1", "x2", "y2"]
    return {label(r.face_id): {c: float(getattr(r, c)) for c in cols} for r in best.itertuples()}


def _crops(video: Path, targets: list[tuple[str, dict[str, float]]]):
    """``(face, crop)`` for targets in frame order: one reader decodes on while the next target is near, and a
    new one seeks when it is far."""
    k = 0
    while k < len(targets):
        start = targets[k][1]["time_s"]
        reader = VideoReader(video, time_range=TimeRange(start_s=max(start - 0.05, 0.0) or None))
        try:
            for frame in reader:
                while k < len(targets) and frame.index >= targets[k][1]["frame"]:
                    face, box = targets[k]
                    yield face, crop(frame.image, box)
                    k += 1
                if k >= len(targets) or targets[k][1]["time_s"] - frame.time_s > REOPEN_S:
                    break
            else:
                k = len(targets)  # the video ended before the remaining frames
        finally:
            reader.close()


def crop(image: np.ndarray, box: dict[str, float], margin: float = 0.2) -> np.ndarray:
    """The box grown by ``margin`` of its size on each side, kept inside the image."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box["x1"], box["y1"], box["x2"], box["y2"]
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = int(max(x1 - dx, 0)), int(max(y1 - dy, 0))
    right, bottom = int(min(x2 + dx, w)), int(min(y2 + dy, h))
    return image[top : max(bottom, top + 1), left : max(right, left + 1)]


def _save_jpeg(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(image))
    picture.thumbnail((THUMB_PX, THUMB_PX))
    picture.save(path, "JPEG", quality=85)


def shown_table(table: pd.DataFrame, faces: Faces, show_all: bool = False) -> pd.DataFrame:
    """The per-face table as the page shows it: rows in ``faces.order`` (brief ones only with ``show_all``) and
    the face column as Markdown with its thumbnail."""
    if table.empty:
        return table
    visible = [f for f in faces.order if show_all or f not in faces.brief]
    rows = table.set_index("face").loc[[f for f in visible if f in set(table["face"])]].reset_index()
    rows["face"] = [_face_cell(f, faces.thumbs.get(f)) for f in rows["face"]]
    return rows


def shown_faces(faces: Faces, show_all: bool = False) -> list[str]:
    """The face picker's choices: the table's rows, in its order."""
    return [f for f in faces.order if show_all or f not in faces.brief]


def brief_note(faces: Faces) -> str:
    n = len(faces.brief)
    if not n:
        return ""
    what = "1 face" if n == 1 else f"{n} faces"
    return f"{what} seen under {BRIEF_S:g} s hidden"


def _face_cell(face: str, thumb: Path | None) -> str:
    if thumb is None or not thumb.is_file():
        return face
    data = base64.b64encode(thumb.read_bytes()).decode("ascii")
    return f"![{face}](data:image/jpeg;base64,{data}) {face}"


def list_faces(summary: dict[str, Any], fps: float, video: Path, csv_path: Path, folder: Path) -> Faces:
    """The faces of a finished run: their order, the brief ones and a thumbnail each (into ``folder``)."""
    per_face = summary.get("per_face", {})
    order = face_order(per_face)
    return Faces(order, brief_faces(per_face, fps), thumbnails(video, csv_path, folder, order))
