"""Evaluation on labelled videos: clip scoring from the timeline, bad rows, the report and its files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fer_video.errors import DataError
from fer_video.evaluate_videos import evaluate_videos, format_report, read_labels, score_clip
from fer_video.training.data import FER2013_CLASSES

CLASSES = list(FER2013_CLASSES)


def _rows(face_id: int, frames: range, box: float, emotion: str, raw_emotion: str) -> list[dict]:
    rows = []
    for f in frames:
        smoothed = {c: (0.7 if c == emotion else 0.05) for c in CLASSES}
        raw = {f"raw_{c}": (0.7 if c == raw_emotion else 0.05) for c in CLASSES}
        rows.append(
            dict(frame=f, time_s=f / 10, face_id=face_id, x1=0.0, y1=0.0, x2=box, y2=box, det_conf=0.99)
            | dict(emotion=emotion, confidence=0.7)
            | smoothed
            | raw
        )
    return rows


def test_clip_is_scored_on_the_largest_face_with_smoothed_and_raw_probabilities():
    # face 1: small and happy on 10 frames; face 2: large, sad smoothed but angry raw, on 6 frames
    timeline = pd.DataFrame(_rows(1, range(10), 40, "happy", "happy") + _rows(2, range(6), 90, "sad", "angry"))
    score = score_clip("a.mp4", "sad", timeline, CLASSES)
    assert (score.predicted, score.predicted_raw) == ("sad", "angry")
    assert score.face_frames == 6 and score.frames_right == 6
    assert score.probabilities["sad"] == pytest.approx(0.7)


def test_a_clip_without_a_face_has_no_prediction():
    empty = pd.DataFrame(columns=["frame", "face_id", "x1", "y1", "x2", "y2", "emotion", *CLASSES])
    score = score_clip("b.mp4", "happy", empty, CLASSES)
    assert score.predicted is None and score.face_frames == 0


def test_labels_need_file_and_label_columns(tmp_path):
    bad = tmp_path / "labels.csv"
    bad.write_text("name,emotion\na.mp4,happy\n")
    with pytest.raises(DataError, match="needs the columns file and label"):
        read_labels(bad)
    with pytest.raises(DataError, match="no such labels file"):
        read_labels(tmp_path / "missing.csv")


def test_folder_with_bad_rows_is_evaluated_and_reported(make_video, fast_settings, models, tmp_path):
    good = make_video("good.mp4", noface_from=None)
    folder = good.parent
    (folder / "notes.mp4").write_text("not a video")
    make_video("empty.mp4", faces=0)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,label,subject\ngood.mp4,Happy,s1\nmissing.mp4,sad,s2\nnotes.mp4,sad,s3\ngood.mp4,contempt,s1\n"
        "empty.mp4,neutral,s4\n"
    )
    messages = []
    out = tmp_path / "report"
    report = evaluate_videos(folder, labels, fast_settings, out, on_error=messages.append, models=models)
    assert report["clips"] == 2 and report["clips_with_face"] == 1
    assert report["clips_without_face"] == ["empty.mp4"]
    assert len(messages) == 3 and messages == report["errors"]
    assert messages[0].startswith("missing.mp4: no such file")
    assert messages[1].startswith("notes.mp4: not a readable video")
    assert "'contempt' is not one of the model's classes" in messages[2]
    clip = report["per_clip"][0]
    assert clip["label"] == "happy"  # labels are read case-insensitively
    expected = max(clip["probabilities"], key=clip["probabilities"].get)
    assert clip["predicted"] == expected
    assert report["clip_accuracy"] == (0.5 if expected == "happy" else 0.0)  # the no-face clip counts as wrong
    assert 0 <= report["frame_accuracy"] <= 1 and report["face_frames"] == clip["face_frames"] > 0
    cm = np.array(report["confusion"])
    assert cm.sum() == 1 and cm[CLASSES.index("happy")].sum() == 1
    assert (out / "video_confusion.png").stat().st_size > 0
    assert pd.read_csv(out / "video_confusion.csv", index_col=0).to_numpy().sum() == 1
    assert json.loads((out / "video_metrics.json").read_text())["clips"] == 2
    assert len(pd.read_csv(out / "video_clips.csv")) == 2
    text = format_report(report)
    assert "clip accuracy" in text and "no face in: empty.mp4" in text


def test_cli_evaluate_videos_prints_one_json_object_and_exits_1_when_a_row_failed(
    make_video, tiny_weights, tmp_path, capsys
):
    from fer_video.cli import main

    clip = make_video("cli.mp4", noface_from=None, seconds=1.0)
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\ncli.mp4,neutral\ngone.mp4,happy\n")
    argv = ["evaluate", "--videos", str(clip.parent), "--labels", str(labels), "--weights", str(tiny_weights)]
    code = main([*argv, "--device", "cpu", "--min-face", "20", "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    report = json.loads(out)
    assert report["clips"] == 1 and report["per_clip"][0]["file"] == "cli.mp4"
    assert err.strip() == "fer-video: error: gone.mp4: no such file"


def test_cli_evaluate_needs_data_or_videos_with_labels(tmp_path, capsys):
    from fer_video.cli import main

    assert main(["evaluate", "--videos", str(tmp_path)]) == 2
    assert "give either --data, or --videos with --labels" in capsys.readouterr().err
    assert main(["evaluate", "--videos", str(tmp_path), "--labels", "x.csv", "--min-face", "0"]) == 2
