"""The timeline CSV and batch.csv are written without pandas, byte for byte as pandas' ``to_csv`` wrote them."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd

from fer_video.batch import BATCH_COLUMNS, BatchRow, write_batch_csv
from fer_video.timeline import TimelineWriter, face_series, read_timeline
from fer_video.types import Detections, Frame, FrameResult

CLASSES = ["angry", "happy", "neutral"]


def _results(n_frames: int = 40) -> list[FrameResult]:
    rng = np.random.default_rng(1)
    image = np.zeros((8, 8, 3), np.uint8)
    out = []
    for i in range(n_frames):
        n = int(rng.integers(0, 3))
        boxes = rng.uniform(0, 700, (n, 4)).astype(np.float32)
        p = rng.dirichlet(np.ones(3) * 0.3, n).astype(np.float32)  # some probabilities near 0 and 1
        faces = Detections(boxes, rng.uniform(0.9, 1, n), np.arange(n) + i // 10)
        out.append(FrameResult(Frame(i, i / 29.97, image), faces, p, (p * 0.5 + 0.5 / 3).astype(np.float32)))
    return out


def _as_pandas_wrote_it(rows: list[list], columns: list[str]) -> str:
    df = pd.DataFrame(rows, columns=columns)
    df["face_id"] = df["face_id"].astype("Int64")
    df["frame"] = df["frame"].astype("int64")
    return df.to_csv(index=False)


def test_csv_is_what_pandas_wrote_and_reads_back(tmp_path):
    whole = TimelineWriter(tmp_path / "whole.csv", CLASSES, chunk_rows=10**6)  # keeps every row until flushed
    writer = TimelineWriter(tmp_path / "t.csv", CLASSES, chunk_rows=7)  # several appended chunks
    for r in _results():
        whole.add(r)
        writer.add(r)
    expected = _as_pandas_wrote_it(whole._rows, whole.columns)
    writer.flush()
    assert (tmp_path / "t.csv").read_text() == expected
    df = read_timeline(tmp_path / "t.csv")
    assert df["face_id"].dtype == "Int64" and df["face_id"].isna().any()
    series = face_series(tmp_path / "t.csv", CLASSES)
    faces = df.dropna(subset=["face_id"])
    assert sorted(series) == sorted(faces["face_id"].unique())
    for fid, s in series.items():
        np.testing.assert_array_equal(s["happy"], faces[faces["face_id"] == fid]["happy"].to_numpy())


def test_batch_csv_is_what_pandas_wrote(tmp_path):
    rows = [
        BatchRow("clips/a.mp4", "ok", "", 120, 2, "happy", 3.25),
        BatchRow("clips/b, with comma.mov", "failed", 'no video stream ("b")'),
        BatchRow("clips/c\udce9.mp4", "skipped", "outputs exist"),  # an undecodable byte in the name
        BatchRow("d.mkv", "ok", "truncated at frame 7", 7, 0, None, 0.5),
    ]
    write_batch_csv(rows, tmp_path / "batch.csv")
    table = pd.DataFrame([asdict(r) for r in rows], columns=BATCH_COLUMNS)
    table = table.astype({"frames": "Int64", "faces": "Int64"})
    table.to_csv(tmp_path / "pandas.csv", index=False, encoding="utf-8", errors="backslashreplace")
    assert (tmp_path / "batch.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
