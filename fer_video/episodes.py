"""Emotion episodes: per face, the maximal stretches of the timeline where the smoothed emotion stays the same.

From the timeline (one row per frame and face, ``timeline.py``), in four steps:

1. **Presences.** A face's rows are cut where the face is absent, that is where it has no row for longer than
   ``max_gap_s`` (the time from the end of one of its frames to the start of its next row; default 0.5 s, the
   tracker's ``max_missed_s``). A face missed by one detection keeps its id and its episode; a face that left and
   came back under the same id starts a new episode. The absence itself is in no episode.
2. **Runs.** Consecutive rows of a presence with the same smoothed emotion.
3. **Merging.** Runs shorter than ``min_episode_s`` are merged into a neighbour of the same presence (never across
   an absence), the shortest first: into both neighbours when they show the same emotion, else into the longer
   one. A merged stretch takes the emotion of most of its rows, so an episode always agrees with the timeline;
   neighbours that then show the same emotion join. A presence shorter than ``min_episode_s`` stays one episode.
4. **Episodes.** One row each (``EPISODE_COLUMNS``), sorted by face then time. ``end_s`` is the end of the last
   frame (the start of the next frame of the video), so the episodes of a face tile its presence;
   ``frames`` counts its rows; the confidences are the mean and peak smoothed probability of its emotion.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EPISODE_COLUMNS = [
    "face_id",
    "emotion",
    "start_s",
    "end_s",
    "duration_s",
    "start_frame",
    "end_frame",
    "frames",
    "mean_confidence",
    "peak_confidence",
]
_EPS = 1e-9


@dataclass(frozen=True)
class EpisodeRules:
    """How a timeline is cut into episodes (see the module's docstring)."""

    min_episode_s: float = 0.5  # stretches shorter than this are merged into their neighbours; 0 keeps every change
    max_gap_s: float = 0.5  # a face without a row for longer than this has left (the tracker's max_missed_s)


@dataclass
class _Runs:
    """Runs of equal emotion as parallel arrays (row ranges ``[first, stop)`` of the sorted face rows)."""

    first: np.ndarray
    stop: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    label: np.ndarray  # object array of emotion names
    opens_presence: np.ndarray  # bool: the run starts a presence


def infer_classes(timeline: pd.DataFrame) -> list[str]:
    """The class columns of a timeline: those with a ``raw_`` twin, in column order."""
    return [c for c in timeline.columns if f"raw_{c}" in timeline.columns]


def frame_ends(timeline: pd.DataFrame, default_step_s: float = 1 / 30) -> pd.Series:
    """Frame number -> the time that frame ends: the next frame's start; the last frame lasts the median step."""
    times = timeline.drop_duplicates("frame").set_index("frame")["time_s"].sort_index()
    steps = times.diff().dropna()
    step = float(steps.median()) if len(steps) else default_step_s
    ends = times.shift(-1)
    if len(ends):
        ends.iloc[-1] = times.iloc[-1] + step
    return ends


def _runs(faces: pd.DataFrame, row_end: np.ndarray, max_gap_s: float) -> _Runs:
    fid = faces["face_id"].to_numpy(np.int64)
    t = faces["time_s"].to_numpy(np.float64)
    emotion = faces["emotion"].to_numpy(object)
    new_presence = np.ones(len(faces), dtype=bool)
    new_presence[1:] = (fid[1:] != fid[:-1]) | (t[1:] - row_end[:-1] > max_gap_s + _EPS)
    new_run = new_presence.copy()
    new_run[1:] |= emotion[1:] != emotion[:-1]
    first = np.flatnonzero(new_run)
    stop = np.append(first[1:], len(faces))
    return _Runs(first, stop, t[first], row_end[stop - 1], emotion[first], new_presence[first])


def _merge_short(runs: _Runs, rows: np.ndarray, min_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Merge runs shorter than ``min_s`` into their neighbours (within a presence), shortest first.

    Returns ``(head, label)``: whether each run starts an episode, and the episode's emotion at its head run.
    A merge is a doubly linked list operation; a heap orders the short stretches, so this is O(R log R)."""
    n = len(runs.first)
    head = np.ones(n, dtype=bool)
    label = runs.label.copy()
    if min_s <= 0 or n < 2:
        return head, label
    start, end = runs.start_s.astype(float), runs.end_s.astype(float)
    last = np.arange(n)  # the last run of the group headed by i
    prev = np.arange(-1, n - 1)
    nxt = np.arange(1, n + 1)
    nxt[-1] = -1
    prev[runs.opens_presence] = -1  # no merging across an absence
    nxt[np.flatnonzero(runs.opens_presence)[1:] - 1] = -1
    counts = [Counter({label[i]: int(rows[i])}) for i in range(n)]
    version = np.zeros(n, dtype=np.int64)
    heap = [(end[i] - start[i], i, 0) for i in range(n) if end[i] - start[i] < min_s - _EPS]
    heapq.heapify(heap)

    def duration(i: int) -> float:
        return end[last[i]] - start[i]

    def join(a: int, b: int, keep: str) -> None:  # b (the group after a) into a
        last[a] = last[b]
        counts[a].update(counts[b])
        nxt[a] = nxt[b]
        if nxt[b] >= 0:
            prev[nxt[b]] = a
        head[b] = False
        label[a] = max(counts[a], key=lambda c: (counts[a][c], c == keep))
        version[a] += 1

    while heap:
        _, i, ver = heapq.heappop(heap)
        if not head[i] or ver != version[i]:
            continue
        p, q = prev[i], nxt[i]
        if p < 0 and q < 0:
            continue  # alone in its presence: a short appearance stays one episode
        if p >= 0 and q >= 0 and label[p] == label[q]:
            join(p, i, label[p])
            join(p, q, label[p])
            g = p
        elif q < 0 or (p >= 0 and duration(p) >= duration(q)):
            join(p, i, label[p])
            g = p
        else:
            keep = label[q]
            join(i, q, keep)
            g = i
        while prev[g] >= 0 and label[prev[g]] == label[g]:  # the new emotion may equal a neighbour's
            p = prev[g]
            join(p, g, label[p])
            g = p
        while nxt[g] >= 0 and label[nxt[g]] == label[g]:
            join(g, nxt[g], label[g])
        if duration(g) < min_s - _EPS:
            heapq.heappush(heap, (duration(g), g, int(version[g])))
    return head, label


def episodes_from_timeline(
    timeline: pd.DataFrame, rules: EpisodeRules | None = None, classes: Sequence[str] | None = None
) -> pd.DataFrame:
    """The episodes of a timeline DataFrame (as ``timeline.read_timeline`` returns it), ``EPISODE_COLUMNS``."""
    rules = rules or EpisodeRules()
    faces = timeline.dropna(subset=["face_id"]).sort_values(["face_id", "frame"], kind="stable")
    if faces.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in EPISODE_COLUMNS})
    row_end = faces["frame"].map(frame_ends(timeline)).to_numpy(np.float64)
    runs = _runs(faces, row_end, rules.max_gap_s)
    head, label = _merge_short(runs, runs.stop - runs.first, rules.min_episode_s)
    run_episode = np.cumsum(head) - 1
    row_episode = np.repeat(run_episode, runs.stop - runs.first)
    emotion = label[head][row_episode]
    confidence = _probability_of(faces, emotion, list(classes) if classes else infer_classes(timeline))
    grouped = pd.DataFrame(
        {
            "episode": row_episode,
            "face_id": faces["face_id"].to_numpy(np.int64),
            "time_s": faces["time_s"].to_numpy(np.float64),
            "row_end": row_end,
            "frame": faces["frame"].to_numpy(np.int64),
            "p": confidence,
        }
    ).groupby("episode", sort=True)
    out = grouped.agg(
        face_id=("face_id", "first"),
        start_s=("time_s", "first"),
        end_s=("row_end", "last"),
        start_frame=("frame", "first"),
        end_frame=("frame", "last"),
        frames=("frame", "size"),
        mean_confidence=("p", "mean"),
        peak_confidence=("p", "max"),
    ).reset_index(drop=True)
    out["emotion"] = pd.Series(label[head], dtype="str")
    out["duration_s"] = out["end_s"] - out["start_s"]
    for c in ("start_s", "end_s", "duration_s", "mean_confidence", "peak_confidence"):
        out[c] = out[c].round(4)
    return out[EPISODE_COLUMNS]


def episodes_from_csv(path: Path, rules: EpisodeRules, classes: Sequence[str]) -> pd.DataFrame:
    """The episodes of a timeline CSV, reading only the columns they need (not the boxes or raw probabilities)."""
    columns = ["frame", "time_s", "face_id", "emotion", "confidence", *classes]
    timeline = pd.read_csv(path, usecols=columns, dtype={"face_id": "Int64", "emotion": "str"})
    return episodes_from_timeline(timeline, rules, classes)


def _probability_of(faces: pd.DataFrame, emotion: np.ndarray, classes: list[str]) -> np.ndarray:
    """Each row's smoothed probability of ``emotion`` (its episode's); the row's confidence without class columns."""
    if not classes:
        return faces["confidence"].to_numpy(np.float64)
    index = pd.Index(classes).get_indexer(emotion)
    probs = faces[classes].to_numpy(np.float64)
    return np.where(index >= 0, probs[np.arange(len(faces)), np.maximum(index, 0)], np.nan)


def _dtype(column: str) -> str:
    if column == "emotion":
        return "str"
    return "int64" if column in ("face_id", "start_frame", "end_frame", "frames") else "float64"


def episode_counts(episodes: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per face: the number of episodes (``count``), and per emotion the episodes and their seconds (the summary's
    ``per_face.N.episodes``)."""
    out: dict[str, dict[str, Any]] = {}
    for fid, face in episodes.groupby("face_id", sort=True):
        per = face.groupby("emotion", sort=True)["duration_s"].agg(["size", "sum"])
        out[str(int(fid))] = {
            "count": len(face),
            "per_emotion": {str(e): int(n) for e, n in per["size"].items()},
            "seconds_per_emotion": {str(e): round(float(s), 3) for e, s in per["sum"].items()},
        }
    return out


def write_episodes(episodes: pd.DataFrame, path: Path) -> None:
    episodes.to_csv(path, index=False, columns=EPISODE_COLUMNS)


def read_episodes(path: str | Path) -> pd.DataFrame:
    """Read an episodes CSV back with its types."""
    return pd.read_csv(path, dtype={c: _dtype(c) for c in EPISODE_COLUMNS})
