"""The Gradio app's handlers, called directly on the small synthetic clips (no browser, no server).

The app is given the random-init test weights and the session's loaded models, so nothing here depends on
the shipped weights.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import av
import gradio as gr
import numpy as np
import pandas as pd
import pytest

from fer_video.errors import Cancelled
from fer_video.timeline import read_timeline, timeline_columns
from fer_video.ui.app import (
    FerVideoUI,
    UIConfig,
    build_demo,
    build_parser,
    config_from_args,
    safe_name,
    user_errors,
)


@pytest.fixture
def make_app(tmp_path, fast_settings, models):
    """Factory: an app over a fresh work folder, the test weights and the already-loaded models."""
    loads: list = []

    def load(settings):
        loads.append(settings)
        return models

    def make(**limits) -> FerVideoUI:
        cfg = UIConfig(
            work_dir=tmp_path / "work", weights=fast_settings.weights, device="cpu", examples=False, **limits
        )
        app = FerVideoUI(cfg, load=load)
        app.loads = loads
        return app

    return make


@pytest.fixture
def app(make_app) -> FerVideoUI:
    return make_app()


@pytest.fixture(scope="module")
def not_a_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "holiday.mp4"
    path.write_text("this is a text file, not a video\n" * 20)
    return path


def _job_dirs(app: FerVideoUI) -> list[Path]:
    return sorted(p for p in app.jobs_dir.iterdir()) if app.jobs_dir.exists() else []


def test_annotate_gives_video_csv_summary_plot_and_table(app, demo_video, models):
    seen = []
    out = app.annotate(str(demo_video), 1, 0.3, 20, "cpu", progress=seen.append)
    r = out.result
    # outputs exist, inside this job's own folder under the work dir
    for key in ("video", "csv", "summary"):
        assert r.outputs[key].is_file() and r.outputs[key].stat().st_size > 0
        assert r.outputs[key].parent == out.job_dir
    assert out.job_dir.parent == app.jobs_dir
    # the annotated video is H.264 with the source's sound, as long as the clip
    with av.open(str(r.outputs["video"])) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert len(c.streams.audio) == 1
        assert abs(c.duration / 1e6 - 2.0) < 0.3
    # the CSV follows the timeline contract; the plot and table are built from it
    classes = models.classifier.classes
    df = read_timeline(r.outputs["csv"])
    assert list(df.columns) == timeline_columns(classes)
    assert df["frame"].nunique() == r.frames == 20
    faces = df.dropna(subset=["face_id"])
    assert r.faces == faces["face_id"].nunique() >= 1
    assert set(out.plot.columns) == {"time_s", "probability", "emotion", "face"}
    assert len(out.plot) == len(faces) * len(classes)  # every (frame, face) row, one point per emotion
    assert set(out.plot["emotion"]) == set(classes)
    assert out.plot["probability"].between(0, 1).all()
    assert len(out.table) == r.faces and set(out.faces) == set(out.table["face"])
    assert np.allclose(out.table[classes].sum(axis=1), 100, atol=0.5)  # shares of time add up to 100 %
    summary = json.loads(r.outputs["summary"].read_text())
    assert summary["faces"] == r.faces
    assert summary["input"] == demo_video.name == r.summary["input"]  # the user's file name, not a server path
    assert f"{r.faces} face" in out.message and "dominant emotion" in out.message
    # progress: frames done out of the total, ending complete
    assert seen and seen[-1].done == seen[-1].total == 20
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_not_a_video_gives_clear_gr_error(app, not_a_video):
    with pytest.raises(gr.Error) as err, user_errors():
        app.annotate(str(not_a_video), device="cpu")
    assert "holiday.mp4" in err.value.message and "not a readable video" in err.value.message
    assert _job_dirs(app) == []  # checked before any job folder is made


def test_empty_and_missing_uploads_give_clear_gr_error(app, tmp_path):
    with pytest.raises(gr.Error, match="upload or drop a video"), user_errors():
        app.annotate(None)
    empty = tmp_path / "empty.mov"
    empty.touch()
    with pytest.raises(gr.Error) as err, user_errors():
        app.annotate(str(empty))
    assert "empty.mov" in err.value.message and "empty file" in err.value.message


def test_video_without_faces_says_so(app, make_video):
    clip = make_video("no face.mp4", seconds=1.0, noface_from=0.0, audio=False)
    out = app.annotate(str(clip), device="cpu")
    assert out.result.faces == 0 and out.faces == []
    assert "No face detected" in out.message
    assert out.plot.empty and out.table.empty
    assert out.result.outputs["video"].is_file() and out.result.outputs["csv"].is_file()
    assert json.loads(out.result.outputs["summary"].read_text())["no_faces"] is True


def test_two_jobs_run_in_separate_folders(app, make_video):
    clip = make_video("same name.mp4", seconds=1.0, audio=False)
    results = [None, None]

    def job(k: int) -> None:
        results[k] = app.annotate(str(clip), device="cpu")

    threads = [threading.Thread(target=job, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    a, b = results
    assert a is not None and b is not None
    assert a.job_dir != b.job_dir and {a.job_dir.parent, b.job_dir.parent} == {app.jobs_dir}
    for out in (a, b):  # neither job overwrote the other's files
        assert out.result.outputs["csv"].parent == out.job_dir
        assert json.loads(out.result.outputs["summary"].read_text())["frames"] == 10


def test_uploaded_file_name_never_chooses_a_path(app, demo_video, tmp_path):
    assert safe_name("../../etc/passwd.mp4") == "passwd"
    assert safe_name("..mp4") == "video"
    assert safe_name(".bashrc") == "bashrc"
    assert safe_name("a/b\\c d?.mp4") == "b_c_d"
    weird = tmp_path / "..  ; rm -rf ~ ; .mp4"
    shutil.copy(demo_video, weird)
    out = app.annotate(str(weird), detect_every=5, device="cpu")
    for path in out.result.outputs.values():
        assert path.parent == out.job_dir and not path.name.startswith(".")


def test_too_large_and_too_long_uploads_are_refused(make_app, demo_video):
    small = make_app(max_upload_mb=0.001)
    with pytest.raises(gr.Error) as err, user_errors():
        small.annotate(str(demo_video))
    assert "too large" in err.value.message and "0.001 MB" in err.value.message
    short = make_app(max_duration_s=1.0)
    with pytest.raises(gr.Error) as err, user_errors():
        short.annotate(str(demo_video))
    assert "too long" in err.value.message and "limit is 1 s" in err.value.message
    assert _job_dirs(small) == [] and _job_dirs(short) == []


def test_cancel_stops_the_job_and_keeps_no_files(app, make_video):
    clip = make_video("long.mp4", seconds=8.0, audio=False)  # 80 frames: several chunks
    seen = []
    with app.job_cancel("session-1") as cancel:

        def progress(p):
            seen.append(p.done)
            assert app.request_cancel("session-1")  # what the Cancel button does

        with pytest.raises(Cancelled):
            app.annotate(str(clip), device="cpu", progress=progress, cancel=cancel)
    assert len(seen) == 1 and 0 < seen[0] < 80  # stopped at the next chunk boundary, long before the end
    assert _job_dirs(app) == []  # the job folder is gone: no partial or final outputs remain
    assert not app.request_cancel("session-1")  # nothing left registered for the session


def test_cancel_pressed_as_the_job_finishes_still_keeps_no_files(app, make_video):
    clip = make_video("short-cancel.mp4", seconds=1.0, audio=False)
    with app.job_cancel("session-2") as cancel:

        def progress(p):
            if p.total and p.done >= p.total:  # the last frame is done: too late for the stages to stop
                app.request_cancel("session-2")

        with pytest.raises(Cancelled):
            app.annotate(str(clip), device="cpu", progress=progress, cancel=cancel)
    assert _job_dirs(app) == []


def test_old_job_folders_are_cleaned(make_app):
    app = make_app(keep_jobs_s=3600)
    old, recent = app.new_job(), app.new_job()
    (old / "x.timeline.csv").write_text("frame\n")
    past = time.time() - 7200
    os.utime(old, (past, past))
    fresh = app.new_job()  # starting a job cleans up first
    assert not old.exists()
    assert recent.exists() and fresh.exists()
    assert app.cleanup_jobs(now=time.time() + 7200) and _job_dirs(app) == []


def test_models_are_loaded_once_and_detector_knobs_are_per_job(app):
    from fer_video.pipeline import FaceAnnotator

    s1, s2 = app.settings(1, 0.3, 20, "cpu"), app.settings(3, 0.0, 60, "cpu")
    a, b = app.models(s1), app.models(s2)
    assert len(app.loads) == 1
    assert a.classifier is b.classifier
    # each job's annotator builds its detector from the job's settings, over the shared networks
    da, db = FaceAnnotator(a, s1).detector, FaceAnnotator(b, s2).detector
    assert da.min_face == 20 and db.min_face == 60
    assert db.cascade is da.cascade  # the loaded nets are shared


def test_batch_gives_a_row_per_file_and_one_zip(app, demo_video, not_a_video, make_video, tmp_path):
    other = tmp_path / "x" / demo_video.name  # same file name as the first: its outputs get "-2"
    other.parent.mkdir()
    shutil.copy(make_video("short.mp4", seconds=1.0, audio=False), other)
    calls = []
    out = app.batch(
        [str(demo_video), str(not_a_video), str(other)],
        detect_every=5,
        device="cpu",
        progress=calls.append,
    )
    assert [r.status for r in out.rows] == ["ok", "failed", "ok"]
    assert "not a readable video" in out.rows[1].reason
    assert [r.input for r in out.rows] == ["two_faces.mp4", "holiday.mp4", "two_faces-2.mp4"]
    assert list(out.table.columns[:3]) == ["file", "status", "reason"] and len(out.table) == 3
    assert "2 of 3" in out.message
    # every input counts: the refused one is done from the start, the others are "2 of 3"... "3 of 3"
    assert {(c.index, c.total, c.name) for c in calls} == {(0, 3, "two_faces.mp4"), (2, 3, "two_faces-2.mp4")}
    fractions = [c.fraction for c in calls]
    assert fractions == sorted(fractions) and fractions[0] == pytest.approx(1 / 3) and fractions[-1] == 1.0
    with zipfile.ZipFile(out.zip_path) as zf:
        names = set(zf.namelist())
        batch_csv = pd.read_csv(zf.open("batch.csv"))
    for stem in ("two_faces", "two_faces-2"):
        assert {f"{stem}.annotated.mp4", f"{stem}.timeline.csv", f"{stem}.summary.json"} <= names
    assert list(batch_csv["status"]) == ["ok", "failed", "ok"]
    assert not (out.job_dir / "inputs").exists()


def test_batch_with_no_files_gives_gr_error(app):
    with pytest.raises(gr.Error, match="add one or more video"), user_errors():
        app.batch([])


def test_webcam_frames_are_annotated_with_a_session_annotator(app, models):
    from fer_video.demo import face_sprites, render_frame

    sprites = face_sprites()
    frames = [render_frame(i, 10.0, 320, 180, sprites, 2, True) for i in range(3)]
    session = None
    for image in frames:
        out, session = app.webcam_frame(image, session, app.settings(1, 0.3, 20, "cpu"))
        assert out.shape == image.shape and out.dtype == np.uint8
    assert session.index == 3
    assert not np.array_equal(out, frames[-1])  # boxes and labels were drawn
    assert app.webcam_frame(None, session) == (None, session)


def test_page_has_three_tabs_and_one_annotate_job_at_a_time(app):
    demo = build_demo(app)
    config = demo.get_config_file()
    labels = {c.get("props", {}).get("label") for c in config["components"]}
    assert {"Video", "Batch", "Webcam"} <= labels
    tabs = [c["props"]["label"] for c in config["components"] if c.get("type") == "tabitem"]
    assert sorted(tabs) == ["Batch", "Video", "Webcam"]
    fns = {fn.name: fn for fn in demo.fns.values()}
    assert fns["on_annotate"].concurrency_limit == 1 and fns["on_batch"].concurrency_limit == 1
    assert fns["on_annotate"].concurrency_id == fns["on_batch"].concurrency_id  # they share the one slot


def test_settings_controls_refuse_what_the_cli_refuses(app):
    from fer_video.errors import SettingsError

    for every, smoothing, min_face in [(0, 0.3, 40), (2.5, 0.3, 40), (8, -1, 40), (8, 0.3, 0)]:
        with pytest.raises(SettingsError):
            app.settings(every, smoothing, min_face, "cpu")
    s = app.settings(3.0, 0.0, 60.0, "cpu")  # sliders send floats
    assert (s.detect_every, s.smoothing, s.min_face) == (3, 0.0, 60) and isinstance(s.detect_every, int)


def test_the_settings_controls_come_from_the_options_table(app):
    from fer_video.options import OPTIONS, Field, Toggle
    from fer_video.ui.controls import SHOWN

    demo = build_demo(app)
    components = demo.get_config_file()["components"]
    sliders = {c["props"]["label"]: c["props"] for c in components if c["type"] == "slider"}
    fields = {c["props"]["label"]: c["props"] for c in components if c["type"] == "textbox"}
    boxes = {c["props"]["label"]: c["props"] for c in components if c["type"] == "checkbox"}
    for name in SHOWN:
        ui = OPTIONS[name].ui
        if name == "device":  # the machine's devices, not a row of the table
            assert ui is None
        elif isinstance(ui, Field):  # the times of a range
            assert fields[ui.label]["placeholder"] == ui.placeholder
        elif isinstance(ui, Toggle):
            assert boxes[ui.label]["value"] is False and boxes[ui.label]["info"] == ui.info
        else:
            assert (sliders[ui.label]["minimum"], sliders[ui.label]["maximum"]) == (ui.low, ui.high)
            assert sliders[ui.label]["info"] == ui.info
    # the crowd hint, on the Video and the Batch tab alike (both tabs' settings are made here)
    every = OPTIONS["detect_every"].ui
    assert "Crowds" in every.info and "crowds" in OPTIONS["min_face"].ui.info
    assert sum(c["type"] == "slider" and c["props"]["label"] == every.label for c in components) == 2


def test_the_job_handlers_do_not_import_gradio():
    probe = "import sys, fer_video.ui.jobs; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cli_flags_and_defaults(tmp_path):
    args = build_parser().parse_args([])
    assert (args.host, args.port, args.share) == ("127.0.0.1", 7860, False)
    cfg = config_from_args(
        build_parser().parse_args(
            ["--max-upload-mb", "50", "--max-duration-s", "30", "--work-dir", str(tmp_path), "--keep-hours", "0.5"]
        )
    )
    assert (cfg.max_upload_mb, cfg.max_duration_s, cfg.work_dir, cfg.keep_jobs_s) == (50, 30, tmp_path, 1800)
    with pytest.raises(SystemExit):
        config_from_args(build_parser().parse_args(["--max-upload-mb", "0"]))
    assert config_from_args(build_parser().parse_args([])).max_queue == 16
    assert config_from_args(build_parser().parse_args(["--max-queue", "3"])).max_queue == 3
    with pytest.raises(SystemExit):
        config_from_args(build_parser().parse_args(["--max-queue", "0"]))


def test_batch_progress_counts_every_input_and_never_goes_backwards():
    from fer_video.types import Progress
    from fer_video.ui.jobs import BatchProgressTracker

    seen = []
    tracker = BatchProgressTracker(total=4, done_before=1, report=seen.append)  # 4 given, 1 refused
    for index in (0, 2, 3):
        tracker.start(index, f"v{index}.mp4")
        for done in (10, 50, 120, 100):  # a frame total revised: the share of a video is never over 1
            tracker.frames(Progress(done=done, total=100 if done <= 100 else 120, elapsed_s=1.0))
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.25 and fractions[-1] == 1.0
    assert [p.index for p in seen if p.frames is None] == [0, 2, 3] and {p.total for p in seen} == {4}
    assert seen[1].fraction == pytest.approx((1 + 0.1) / 4)  # (inputs done + share of the current) / all


def test_only_the_annotate_endpoint_is_public(app):
    demo = build_demo(app)
    info = demo.get_api_info()
    assert list(info["named_endpoints"]) == ["/annotate"] and not info["unnamed_endpoints"]
    api = info["named_endpoints"]["/annotate"]
    names = [p["parameter_name"] for p in api["parameters"]]
    assert names == ["video", "detect_every", "smoothing", "min_face", "min_episode", "start", "end", "device", "tta"]
    assert all(p["parameter_has_default"] for p in api["parameters"][1:])  # the tab's defaults
    assert [r["label"] for r in api["returns"]] == ["annotated video", "timeline CSV", "summary JSON"]
    public = [fn for fn in demo.fns.values() if fn.api_visibility != "private"]
    assert [fn.api_name for fn in public] == ["annotate"]
    assert public[0].concurrency_limit == 1 and public[0].concurrency_id == "annotate"


def test_plot_updates_have_quantitative_axes_and_start_empty(app, demo_video):
    from fer_video.ui.results_view import emotion_plot, plot_value

    plot = emotion_plot()
    assert plot.value is None  # created without a value: the browser builds the chart from the first update
    out = app.annotate(str(demo_video), 5, 0.3, 20, "cpu")
    for face in out.faces:
        shown = plot.postprocess(plot_value(out.plot, face))
        assert shown.datatypes["time_s"] == shown.datatypes["probability"] == "quantitative"
        assert shown.datatypes["emotion"] == "nominal"
    assert plot_value(out.plot, None) is None and plot_value(None, "face 0") is None


def test_faces_are_listed_most_frames_first_with_a_thumbnail_each(app, demo_video):
    from PIL import Image

    out = app.annotate(str(demo_video), 5, 0.3, 20, "cpu")
    per_face = out.result.summary["per_face"]
    frames = [per_face[f.split()[1]]["frames"] for f in out.faces]
    assert frames == sorted(frames, reverse=True)
    assert list(out.table["face"]) == out.faces  # the picker and the table: one order
    listing = out.face_list
    assert listing.order == out.faces and not listing.brief  # both faces are seen for 1.5 s
    assert set(listing.thumbs) == set(out.faces)
    for face, path in listing.thumbs.items():
        assert path.parent.parent == out.job_dir  # in the job's folder: deleted with it
        with Image.open(path) as im:
            assert im.format == "JPEG" and max(im.size) <= 64 and min(im.size) >= 8, (face, im.size)


def test_face_order_brief_tracks_and_the_table_as_shown(tmp_path):
    import pandas as pd

    from fer_video.ui.faces import Faces, brief_faces, brief_note, face_order, shown_faces, shown_table
    from fer_video.ui.results_view import row_face

    per_face = {"0": {"frames": 3}, "1": {"frames": 250}, "2": {"frames": 40}, "3": {"frames": 40}}
    assert face_order(per_face) == ["face 1", "face 2", "face 3", "face 0"]  # ties: lower id first
    assert brief_faces(per_face, fps=25.0) == {"face 0"}  # under 0.5 s (13 frames at 25 fps)
    assert brief_faces({"0": {"frames": 3}}, fps=25.0) == frozenset()  # never hide every face
    thumb = tmp_path / "t.jpg"
    thumb.write_bytes(b"\xff\xd8jpeg")
    faces = Faces(face_order(per_face), brief_faces(per_face, 25.0), {"face 2": thumb})
    table = pd.DataFrame({"face": [f"face {i}" for i in range(4)], "frames": [3, 250, 40, 40]})
    shown = shown_table(table, faces)
    assert list(shown["frames"]) == [250, 40, 40]  # the brief face hidden, the rest most frames first
    assert shown["face"][1].startswith("![face 2](data:image/jpeg;base64,") and shown["face"][1].endswith("face 2")
    assert len(shown_table(table, faces, show_all=True)) == 4
    assert shown_faces(faces) == ["face 1", "face 2", "face 3"]
    assert brief_note(faces) == "1 face seen under 0.5 s hidden"
    # a clicked row's face: from its face cell (also after sorting the table by a column), else its position
    assert row_face([shown["face"][1], 40], [0, 0], shown_faces(faces)) == "face 2"
    assert row_face(None, [2, 1], shown_faces(faces)) == "face 3"
    assert row_face(["?"], [9, 0], shown_faces(faces)) is None


def test_tta_toggle_reaches_the_settings(app):
    from fer_video.ui.controls import SHOWN, named

    values = named((1, 0.3, 40, 0.5, "", "", "cpu", True))
    assert list(values) == list(SHOWN)
    s = app.settings(**{k: v for k, v in values.items()})
    assert s.tta is True and app.settings(1, 0.3, 40, "cpu").tta is False
    with pytest.raises(ValueError, match="expected 8 settings values"):
        named((1, 0.3))


def test_webcam_rate_status_is_said_every_few_frames(app, models):
    from fer_video.pipeline import FaceAnnotator
    from fer_video.ui.jobs import WebcamSession
    from fer_video.ui.webcam_tab import RATE_EVERY, rate_status

    session = WebcamSession(FaceAnnotator(models, app.settings(1, 0.3, 40, "cpu")), start=100.0)
    said = []
    for index in range(1, 2 * RATE_EVERY + 1):
        session.index = index
        status = rate_status(session, now=100.0 + index / 5)
        if isinstance(status, str):
            said.append(status)
    assert said == ["**Live**: 5.0 annotated frames a second (the camera's own preview runs ahead of them)."] * 2
    assert not isinstance(rate_status(None), str)


def test_webcam_stop_clears_and_marks_the_session_and_start_begins_a_new_one(app, models):
    from fer_video.pipeline import FaceAnnotator
    from fer_video.ui.jobs import WebcamSession
    from fer_video.ui.webcam_tab import STOPPED, on_started, on_stopped

    session = WebcamSession(FaceAnnotator(models, app.settings(1, 0.3, 40, "cpu")), start=0.0, index=40)
    assert on_stopped(session) == (None, STOPPED) and session.stopped  # late frames see it and are dropped
    assert on_stopped(None) == (None, STOPPED)
    state, status = on_started()
    assert state is None and "Live" in status  # the next frame makes a fresh session


def test_results_are_hidden_until_a_run_and_the_share_button_is_off(app):
    demo = build_demo(app)
    components = {c["props"].get("elem_id"): c for c in demo.get_config_file()["components"]}
    assert components["results"]["props"]["visible"] is False  # no empty plot, no table headed "1 2 3"
    assert components["batch-table"]["props"]["visible"] is False
    assert components["emotion-plot"]["props"].get("value") is None
    assert "share" not in components["cam-out"]["props"]["buttons"]
    assert components["cam-row"]["props"]["visible"] is False  # until the browser says there is a camera


def test_thumbnails_and_plot_offset_follow_a_time_range(app, demo_video):
    from fer_video.ui.results_view import run_offset

    out = app.annotate(str(demo_video), 5, 0.3, 20, "cpu", start="0.5")
    assert set(out.face_list.thumbs) == set(out.faces) and out.faces
    assert run_offset(out.result.summary) == pytest.approx(0.5, abs=0.05)  # the annotated video's 0 is at 0.5 s
    assert run_offset({"range": None}) == 0.0 and run_offset({"range": {"end_s": 3.0, "first_s": 0.0}}) == 0.0


def test_show_all_brings_back_brief_faces_in_picker_and_table():
    import pandas as pd

    from fer_video.ui.faces import Faces
    from fer_video.ui.results_view import RunView, on_show_all

    table = pd.DataFrame({"face": ["face 0", "face 1"], "frames": [90, 2]})
    view = RunView(pd.DataFrame(), table, Faces(["face 0", "face 1"], frozenset({"face 1"})))
    picker, shown = on_show_all(True, view, "face 0")
    assert picker.choices == [("face 0", "face 0"), ("face 1", "face 1")] and picker.value == "face 0"
    assert [row[1] for row in shown.value["data"]] == [90, 2]
    picker, shown = on_show_all(False, view, "face 1")
    assert picker.value == "face 0" and len(shown.value["data"]) == 1  # the picked face was hidden: the first
