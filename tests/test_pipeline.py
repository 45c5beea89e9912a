"""The core data path end to end on a synthetic clip: real MTCNN, real (random-init) ResNet18."""

from __future__ import annotations

import dataclasses
import json

import av
import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import DEMO

from fer_video import annotate_video
from fer_video.demo import face_sprites, render_frame, sprite_rects
from fer_video.detect import FaceDetector
from fer_video.timeline import TimelineWriter, read_timeline, timeline_columns
from fer_video.track import FaceTracker
from fer_video.training.data import FER2013_CLASSES
from fer_video.types import Detections, Frame, FrameResult, Settings

N_FRAMES = int(DEMO["fps"] * DEMO["seconds"])  # 20
FACE_FRAMES = int(N_FRAMES * DEMO["noface_from"])  # 15


@pytest.fixture(scope="module")
def result(demo_video, fast_settings, models, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    seen = []
    r = annotate_video(demo_video, out, fast_settings, models=models, progress=lambda p: seen.append(p.done))
    r.progress_seen = seen
    return r


@pytest.fixture(scope="module")
def timeline(result) -> pd.DataFrame:
    return read_timeline(result.outputs["csv"])


def test_outputs_have_the_input_name_and_no_temporaries_remain(result):
    out = result.outputs["csv"].parent
    assert sorted(p.name for p in out.iterdir()) == [
        "two faces.annotated.mp4",
        "two faces.episodes.csv",
        "two faces.summary.json",
        "two faces.timeline.csv",
        "two faces.timeline.png",
    ]


def test_annotated_video_is_browser_h264_with_same_frames_and_audio(result):
    with av.open(str(result.outputs["video"])) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264"
        assert v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (DEMO["width"], DEMO["height"])
        assert len(c.streams.audio) == 1 and c.streams.audio[0].codec_context.name == "aac"
        frames = list(c.decode(video=0))
    assert len(frames) == N_FRAMES
    assert abs(float(frames[-1].time) - (N_FRAMES - 1) / DEMO["fps"]) < 1e-3


def test_annotated_frames_carry_the_drawn_boxes(result, demo_video):
    with av.open(str(demo_video)) as a, av.open(str(result.outputs["video"])) as b:
        src = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        dst = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    changed = np.abs(src - dst).max(axis=2) > 60  # boxes/labels, far above the encoding noise
    assert changed.mean() > 0.005


def test_csv_contract_columns_rows_and_order(timeline):
    assert list(timeline.columns) == timeline_columns(list(FER2013_CLASSES))
    faces = timeline.dropna(subset=["face_id"])
    empty = timeline[timeline["face_id"].isna()]
    assert len(faces) == 2 * FACE_FRAMES
    assert list(empty["frame"]) == list(range(FACE_FRAMES, N_FRAMES))
    assert empty[["x1", "emotion", "confidence", "happy", "raw_happy"]].isna().all().all()
    assert list(timeline["frame"].unique()) == list(range(N_FRAMES))
    keys = list(zip(timeline["frame"], timeline["face_id"].fillna(-1), strict=True))
    assert keys == sorted(keys)
    np.testing.assert_allclose(
        timeline.groupby("frame")["time_s"].first(), np.arange(N_FRAMES) / DEMO["fps"], atol=1e-3
    )


def test_probabilities_argmax_and_confidence_are_consistent(timeline):
    faces = timeline.dropna(subset=["face_id"])
    classes = list(FER2013_CLASSES)
    smoothed = faces[classes].to_numpy()
    raw = faces[[f"raw_{c}" for c in classes]].to_numpy()
    np.testing.assert_allclose(smoothed.sum(1), 1, atol=2e-3)
    np.testing.assert_allclose(raw.sum(1), 1, atol=2e-3)
    assert list(faces["emotion"]) == [classes[k] for k in smoothed.argmax(1)]
    np.testing.assert_allclose(faces["confidence"], smoothed.max(1), atol=1e-4)


def test_face_ids_are_stable_and_boxes_land_on_the_faces(timeline):
    faces = timeline.dropna(subset=["face_id"])
    assert sorted(faces["face_id"].unique()) == [0, 1]
    sprites = face_sprites()
    for _, row in faces.iterrows():
        rects = sprite_rects(int(row["frame"]), DEMO["fps"], DEMO["width"], DEMO["height"], sprites, DEMO["faces"])
        cx, cy = (row["x1"] + row["x2"]) / 2, (row["y1"] + row["y2"]) / 2
        inside = [k for k, (x1, y1, x2, y2) in enumerate(rects) if x1 <= cx <= x2 and y1 <= cy <= y2]
        assert len(inside) == 1
        row["sprite"] = inside[0]
    # one face id follows one face photo for the whole stretch
    for fid, group in faces.groupby("face_id"):
        owners = set()
        for _, row in group.iterrows():
            rects = sprite_rects(int(row["frame"]), DEMO["fps"], DEMO["width"], DEMO["height"], sprites, 2)
            cx = (row["x1"] + row["x2"]) / 2
            owners.add(min(range(2), key=lambda k: abs((rects[k][0] + rects[k][2]) / 2 - cx)))
        assert len(owners) == 1, f"face {fid} jumped between faces"


def test_summary_describes_video_faces_and_speed(result):
    s = json.loads(result.outputs["summary"].read_text())
    assert s["frames"] == N_FRAMES and s["faces"] == 2 and s["no_faces"] is False
    assert s["video"]["width"] == DEMO["width"] and s["video"]["has_audio"] is True
    assert s["model"]["name"] == "random-init-test" and len(s["model"]["sha256"]) == 64
    for face in s["per_face"].values():
        assert face["frames"] == FACE_FRAMES
        assert abs(sum(face["share"].values()) - 1) < 1e-3
        assert face["dominant_emotion"] == max(face["share"], key=face["share"].get)
    assert s["processing"]["fps"] > 0 and s["processing"]["stage_seconds"]["detect"] > 0
    assert result.frames == N_FRAMES and result.faces == 2


def test_progress_reaches_the_frame_count(result):
    assert result.progress_seen[-1] == N_FRAMES
    assert result.progress_seen == sorted(result.progress_seen)


def test_smoothing_damps_changes_and_zero_turns_it_off(demo_video, fast_settings, models, tmp_path):
    import dataclasses

    classes = list(FER2013_CLASSES)
    raw_cols = [f"raw_{c}" for c in classes]
    strong = dataclasses.replace(fast_settings, smoothing=1.0, write_video=False, write_plot=False)
    off = dataclasses.replace(fast_settings, smoothing=0.0, write_video=False, write_plot=False)
    a = read_timeline(annotate_video(demo_video, tmp_path / "a", strong, models=models).outputs["csv"])
    b = read_timeline(annotate_video(demo_video, tmp_path / "b", off, models=models).outputs["csv"])
    b = b.dropna(subset=["face_id"])
    np.testing.assert_allclose(b[classes].to_numpy(), b[raw_cols].to_numpy(), atol=1e-6)
    a = a.dropna(subset=["face_id"])
    for _, face in a.groupby("face_id"):
        jitter_smoothed = np.abs(np.diff(face[classes].to_numpy(), axis=0)).sum()
        jitter_raw = np.abs(np.diff(face[raw_cols].to_numpy(), axis=0)).sum()
        assert jitter_smoothed < 0.6 * jitter_raw
        first = face.iloc[0]
        np.testing.assert_allclose(first[classes].to_numpy(float), first[raw_cols].to_numpy(float), atol=1e-6)


def test_detect_every_n_frames_carries_boxes_between_detections(demo_video, fast_settings, models, tmp_path):
    import dataclasses

    s = dataclasses.replace(fast_settings, detect_every=3, write_video=False, write_plot=False)
    r = annotate_video(demo_video, tmp_path, s, models=models)
    faces = read_timeline(r.outputs["csv"]).dropna(subset=["face_id"])
    assert faces.groupby("frame").size().min() == 2  # every face frame still has both faces
    assert sorted(faces["face_id"].unique()) == [0, 1]
    assert r.summary["processing"]["fps"] > 0


def test_detecting_a_chunk_ahead_gives_the_same_results_and_checkpoints(demo_video, fast_settings, models):
    """A video's run detects on the next chunk while the chunk before it is tracked and classified: the results,
    and the checkpoint state taken before each chunk, are those of one chunk after the other (``process``)."""
    from fer_video.pipeline import FaceAnnotator
    from fer_video.video import VideoReader

    s = dataclasses.replace(fast_settings, detect_every=3)
    with VideoReader(demo_video) as reader:
        frames = list(reader)
    chunks = [frames[i : i + 4] for i in range(0, len(frames), 4)]  # chunk starts off the detection frames
    as_json = lambda state: json.dumps(state, default=lambda a: np.asarray(a).tolist())  # noqa: E731

    one_by_one, before = FaceAnnotator(models, s), []
    results = []
    for chunk in chunks:
        before.append(as_json(one_by_one.state()))
        results += one_by_one.process(chunk)

    ahead = FaceAnnotator(models, s)
    found = [ahead.detect(chunks[0])]
    results_ahead, before_ahead = [], []
    for k in range(len(chunks)):
        if k + 1 < len(chunks):
            found.append(ahead.detect(chunks[k + 1]))  # the next chunk detected before this one is finished
        before_ahead.append(as_json(ahead.state(found[k])))
        results_ahead += ahead.finish(found[k])

    assert before_ahead == before
    assert len(before) == 5 and len(set(before)) == 5
    assert [r.frame.index for r in results_ahead] == [r.frame.index for r in results] == list(range(N_FRAMES))
    for a, b in zip(results_ahead, results, strict=True):
        np.testing.assert_array_equal(a.faces.xyxy, b.faces.xyxy)
        np.testing.assert_array_equal(a.faces.face_id, b.faces.face_id)
        np.testing.assert_array_equal(a.smoothed, b.smoothed)
    assert sum(len(r.faces) for r in results) == 2 * FACE_FRAMES


def test_settings_default_is_usable():
    s = Settings()
    assert s.detect_every >= 1 and s.smoothing >= 0 and s.weights is None
    assert s.problems() == []


def test_video_dominant_emotion_counts_rows_and_breaks_ties_by_class_order(tmp_path):
    classes = ["angry", "happy", "sad"]
    writer = TimelineWriter(tmp_path / "t.csv", classes)
    image = np.zeros((8, 8, 3), np.uint8)

    def add(index: int, probs: list[list[float]]) -> None:
        n = len(probs)
        faces = Detections(np.tile([0, 0, 4, 4], (n, 1)), np.ones(n), np.arange(n))
        p = np.array(probs, np.float32)
        writer.add(FrameResult(Frame(index, index / 10, image), faces, p, p))

    assert writer.dominant_emotion() is None
    add(0, [[0.1, 0.2, 0.7], [0.1, 0.8, 0.1]])  # sad 1, happy 1: a tie goes to happy (listed before sad)
    assert writer.dominant_emotion() == "happy"
    add(1, [[0.1, 0.2, 0.7]])
    assert writer.dominant_emotion() == "sad"


def test_channels_last_mtcnn_finds_the_same_boxes():
    """The CPU speed-up (MTCNN's nets in channels_last) must not move a box."""
    sprites = face_sprites()
    frames = [render_frame(i, 25.0, 640, 360, sprites, 2, True) for i in (0, 7)]
    fast = FaceDetector(torch.device("cpu"), 40, 0.9, 640, channels_last=True).detect(frames)
    plain = FaceDetector(torch.device("cpu"), 40, 0.9, 640, channels_last=False).detect(frames)
    assert [len(d) for d in fast] == [len(d) for d in plain] == [2, 2]
    for a, b in zip(fast, plain, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.01)


def test_tracker_carries_faces_until_the_next_detection_at_a_low_frame_rate():
    """Detections 1 s apart (5 fps, every 5th frame): faces stay drawn in between and keep their ids;
    a face missed by two detections in a row is forgotten."""
    tracker = FaceTracker(max_missed_s=0.5)
    two = Detections(np.array([[10, 10, 50, 50], [100, 10, 140, 50]]), np.array([0.99, 0.98]))
    assert list(tracker.update(two, 0.0).face_id) == [0, 1]
    for t in (0.2, 0.4, 0.6, 0.8):  # longer than max_missed_s after the detection
        assert list(tracker.carry(t).face_id) == [0, 1]
    assert list(tracker.update(two, 1.0).face_id) == [0, 1]  # same ids after a 1 s gap
    assert list(tracker.update(two[np.array([0])], 2.0).face_id) == [0]  # face 1 missed once
    assert list(tracker.carry(2.2).face_id) == [0]  # the missed face is not drawn
    assert list(tracker.update(two, 3.0).face_id) == [0, 1]  # missed once (2 s ago < 2.5 intervals): kept
    tracker.update(two[np.array([0])], 4.0)
    tracker.update(two[np.array([0])], 5.0)
    assert list(tracker.update(two, 6.0).face_id) == [0, 2]  # missed twice (3 s): a new id


def test_scene_cut_detector_flags_a_hard_cut_and_not_motion():
    """Moving faces over the same background are not cuts; a switch to another picture is, once."""
    from skimage import data

    from fer_video.track import SceneCutDetector

    sprites = face_sprites()
    clip = [render_frame(i, 25.0, 640, 360, sprites, 2, True) for i in range(0, 50, 5)]
    other = np.ascontiguousarray(cv2.resize(data.coffee(), (640, 360)))
    cuts = SceneCutDetector()
    flags = [cuts.is_cut(f) for f in [*clip, other, other, clip[0]]]
    assert flags == [False] * len(clip) + [True, False, True]


@pytest.mark.parametrize("size", [(160, 96), (161, 95)])
def test_written_video_keeps_the_colours_of_the_frames(tmp_path, size):
    """RGB -> YUV 4:2:0 -> H.264 -> RGB: the decoded frames match what was drawn (odd sizes padded by one)."""
    from skimage import data

    from fer_video.video import VideoReader, VideoWriter

    w, h = size
    image = np.ascontiguousarray(cv2.resize(data.astronaut(), (w, h), interpolation=cv2.INTER_AREA))
    writer = VideoWriter(tmp_path / "c.mp4", w, h, 10.0, crf=12)
    for i in range(3):
        writer.write(image, i / 10)
    writer.close()
    with VideoReader(tmp_path / "c.mp4") as reader:
        frames = [f.image for f in reader]
    assert len(frames) == 3
    back = frames[1][:h, :w].astype(int)
    assert np.abs(back - image).mean() < 4.0
    assert np.abs(back.mean(axis=(0, 1)) - image.mean(axis=(0, 1))).max() < 2.0  # no colour cast


def test_a_stand_in_tracker_plugs_in_through_models(tmp_path, demo_video, models, fast_settings):
    """A tracker is swapped by giving ``Models`` another factory: no other module changes."""
    import dataclasses

    from fer_video.stages import Tracker

    class EveryFaceIsZero:
        def __init__(self) -> None:
            self.last = Detections.empty()

        def update(self, dets: Detections, time_s: float) -> Detections:
            self.last = Detections(dets.xyxy, dets.confidence, np.zeros(len(dets), np.int64))
            return self.last

        def carry(self, time_s: float) -> Detections:
            return self.last

        def reset(self) -> None:
            self.last = Detections.empty()

    assert isinstance(EveryFaceIsZero(), Tracker)
    stand_in = dataclasses.replace(models, tracker_for=lambda settings: EveryFaceIsZero())
    r = annotate_video(demo_video, tmp_path, dataclasses.replace(fast_settings, write_video=False), models=stand_in)
    assert r.faces == 1 and list(r.summary["per_face"]) == ["0"]


def test_detections_refuse_a_face_id_array_of_the_wrong_length():
    with pytest.raises(ValueError, match="face_id"):
        Detections(np.zeros((2, 4)), np.ones(2), np.arange(3))
    assert list(Detections(np.zeros((2, 4)), np.ones(2)).face_id) == [-1, -1]


def test_repeated_output_names_get_a_number():
    from fer_video.outputs import unique_names

    assert unique_names(["a", "b", "a", "a"]) == ["a", "b", "a-2", "a-3"]
    assert unique_names(["Clip", "clip"]) == ["Clip", "clip"]
    assert unique_names(["Clip", "clip"], fold_case=True) == ["Clip", "clip-2"]


def test_inference_never_imports_training():
    import subprocess
    import sys

    probe = (
        "import sys, fer_video.pipeline, fer_video.batch, fer_video.predict, fer_video.ui.jobs;"
        "print(sorted(m for m in sys.modules if m.startswith('fer_video.training')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_classify_every_n_classifies_each_face_every_nth_frame_and_marks_it(
    demo_video, fast_settings, models, tmp_path
):
    """--classify-every 3: each face is classified on its first frame and then every third frame, keeping its
    last raw probabilities in between; the CSV's last column says which rows were classified. On the rows that
    were, the probabilities are those of classifying every frame."""
    every = annotate_video(demo_video, tmp_path / "every", fast_settings, models=models)
    some = dataclasses.replace(fast_settings, classify_every=3)
    r = annotate_video(demo_video, tmp_path / "some", some, models=models)
    df, ref = read_timeline(r.outputs["csv"]), read_timeline(every.outputs["csv"])
    assert list(df.columns) == timeline_columns(list(FER2013_CLASSES), classified=True)
    assert "classified" not in ref.columns  # the default CSV keeps its columns
    raw = [f"raw_{c}" for c in FER2013_CLASSES]
    faces, ref_faces = df.dropna(subset=["face_id"]), ref.dropna(subset=["face_id"])
    assert len(faces) == len(ref_faces) == 2 * FACE_FRAMES
    assert df[df["face_id"].isna()]["classified"].isna().all()
    for _, face in faces.groupby("face_id"):
        marks = face["classified"].to_numpy()
        frames = face["frame"].to_numpy()
        assert marks[0] == 1 and list(np.diff(frames[marks == 1])) == [3] * (int(marks.sum()) - 1)
        values = face[raw].to_numpy()
        for k in np.flatnonzero(marks == 0):  # carried: the row before's raw probabilities
            np.testing.assert_array_equal(values[k], values[k - 1])
    merged = faces.merge(ref_faces, on=["frame", "face_id"], suffixes=("", "_ref"))
    fresh = merged[merged["classified"] == 1]
    assert 0.3 < len(fresh) / len(merged) < 0.45
    np.testing.assert_allclose(fresh[raw].to_numpy(), fresh[[c + "_ref" for c in raw]].to_numpy(), atol=2e-3)
    assert r.summary["settings"]["classify_every"] == 3


def test_classify_every_after_a_scene_cut_inside_a_chunk(demo_video, fast_settings, models):
    """A hard cut in the middle of a chunk: the faces before it keep being carried, every face after it is
    classified on its first frame again."""
    from fer_video.pipeline import FaceAnnotator

    with av.open(str(demo_video)) as c:
        image = next(c.decode(video=0)).to_ndarray(format="rgb24")
    dark = (image // 4).astype(np.uint8)  # the same faces, a different histogram: a hard cut
    frames = [Frame(i, i / 10, image if i < 5 else dark) for i in range(10)]
    annotator = FaceAnnotator(models, dataclasses.replace(fast_settings, classify_every=4, detect_every=1))
    results = annotator.process(frames)
    marks = [r.classified.tolist() for r in results]
    assert all(len(r.faces) for r in results)
    # every 4th frame of each face (0, 4), then again on the first frame after the cut (5) and 4 frames later
    assert [all(m) for m in marks] == [i in (0, 4, 5, 9) for i in range(10)]
    assert [any(m) for m in marks] == [all(m) for m in marks]
    for r in results:
        assert r.probs.shape == (len(r.faces), len(FER2013_CLASSES)) and np.isfinite(r.probs).all()
