"""Research outputs end to end on the synthetic clip: episodes, the ELAN document, time ranges (library, CLI,
web-app handlers)."""

from __future__ import annotations

import dataclasses
import json

import av
import pandas as pd
import pytest
from conftest import DEMO
from media import assert_nothing_for, cli, error_lines

from fer_video import annotate_video
from fer_video.elan import read_eaf_annotations, tier_name
from fer_video.episodes import EPISODE_COLUMNS, read_episodes
from fer_video.errors import SettingsError
from fer_video.timeline import read_timeline
from fer_video.timerange import TimeRangeError
from fer_video.ui.app import FerVideoUI, UIConfig

FPS = DEMO["fps"]


@pytest.fixture(scope="module")
def whole(demo_video, fast_settings, models, tmp_path_factory):
    settings = dataclasses.replace(fast_settings, elan=True, write_plot=False)
    return annotate_video(demo_video, tmp_path_factory.mktemp("whole"), settings, models=models)


@pytest.fixture(scope="module")
def ranged(demo_video, fast_settings, models, tmp_path_factory):
    settings = dataclasses.replace(fast_settings, start="0:00.5", end=1.5, write_plot=False)
    return annotate_video(demo_video, tmp_path_factory.mktemp("range"), settings, models=models)


def test_episodes_agree_with_the_timeline(whole):
    episodes = read_episodes(whole.outputs["episodes"])
    assert list(episodes.columns) == EPISODE_COLUMNS and len(episodes) >= 2  # two faces
    faces = read_timeline(whole.outputs["csv"]).dropna(subset=["face_id"])
    assert episodes["frames"].sum() == len(faces)
    for e in episodes.itertuples():
        rows = faces[(faces["face_id"] == e.face_id) & faces["frame"].between(e.start_frame, e.end_frame)]
        assert len(rows) == e.frames
        counts = rows["emotion"].value_counts()
        assert counts[e.emotion] == counts.max()
    summary = whole.summary
    assert summary["episodes"] == len(episodes) and summary["range"] is None
    for fid, face in summary["per_face"].items():
        mine = episodes[episodes["face_id"] == int(fid)]
        assert face["episodes"]["count"] == len(mine)
        assert face["episodes"]["per_emotion"] == mine["emotion"].value_counts().sort_index().to_dict()


def test_the_elan_document_holds_the_episodes_and_links_the_input(whole, demo_video):
    assert whole.outputs["elan"].name == "two faces.eaf"
    assert whole.summary["outputs"]["elan"] == "two faces.eaf"
    episodes = read_episodes(whole.outputs["episodes"])
    expected = {
        tier_name(fid): [(round(e.start_s * 1000), round(e.end_s * 1000), e.emotion) for e in face.itertuples()]
        for fid, face in episodes.groupby("face_id")
    }
    assert read_eaf_annotations(whole.outputs["elan"]) == expected
    text = whole.outputs["elan"].read_text()
    assert demo_video.resolve().as_uri() in text and "RELATIVE_MEDIA_URL" in text


def test_no_elan_document_unless_asked(ranged):
    assert "elan" not in ranged.outputs and "elan" not in ranged.summary["outputs"]
    assert not any(p.suffix == ".eaf" for p in ranged.outputs["csv"].parent.iterdir())


def test_a_range_keeps_the_source_frame_numbers_and_times(ranged, whole):
    part = read_timeline(ranged.outputs["csv"])
    full = read_timeline(whole.outputs["csv"])
    in_range = full[(full["time_s"] >= 0.5) & (full["time_s"] < 1.5)]
    assert part[["frame", "time_s"]].drop_duplicates().values.tolist() == (
        in_range[["frame", "time_s"]].drop_duplicates().values.tolist()
    )
    assert part["frame"].min() == 5 and part["frame"].max() == 14 and ranged.frames == 10
    assert ranged.summary["range"] == {
        "start_s": 0.5,
        "end_s": 1.5,
        "first_frame": 5,
        "last_frame": 14,
        "first_s": 0.5,
        "last_s": 1.4,
    }
    assert ranged.summary["settings"]["start"] == "0:00.5"
    episodes = read_episodes(ranged.outputs["episodes"])
    assert episodes["start_frame"].min() >= 5 and episodes["start_s"].min() >= 0.5


def test_the_annotated_range_starts_at_zero_with_its_audio(ranged):
    with av.open(str(ranged.outputs["video"])) as c:
        times = [round(float(f.time), 3) for f in c.decode(video=0)]
    assert times == [round(i / FPS, 3) for i in range(10)]
    with av.open(str(ranged.outputs["video"])) as c:
        rate = c.streams.audio[0].codec_context.sample_rate
        seconds = sum(f.samples for f in c.decode(audio=0)) / rate
    assert seconds == pytest.approx(1.0, abs=0.05)  # the range's second of audio, not the clip's two


def test_bad_ranges_fail_before_any_work(demo_video, fast_settings, models, tmp_path):
    with pytest.raises(SettingsError, match=r"^end must be after --start \(00:00:01.000\), not 0.5$"):
        annotate_video(demo_video, tmp_path, dataclasses.replace(fast_settings, start=1, end=0.5), models=models)
    with pytest.raises(SettingsError, match=r"^start must be seconds or \[HH:\]MM:SS\[.ms\], not '1:75'$"):
        annotate_video(demo_video, tmp_path, dataclasses.replace(fast_settings, start="1:75"), models=models)
    with pytest.raises(TimeRangeError, match=r"^two faces.mp4: --start 00:00:03.000 is not before the end"):
        annotate_video(demo_video, tmp_path, dataclasses.replace(fast_settings, start=3), models=models)
    assert_nothing_for(tmp_path, "two faces")


def test_cli_range_errors_are_usage_errors_naming_the_file(demo_video, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = cli(capsys, tiny_weights, str(demo_video), "--out", str(out), "--start", "0:05")
    assert code == 2
    assert error_lines(err) == [
        "fer-video: error: two faces.mp4: --start 00:00:05.000 is not before the end of the video (00:00:02.000)"
    ]
    assert not out.exists()  # before any work: not even the output folder
    code, _, err = cli(capsys, tiny_weights, str(demo_video), "--out", str(out), "--start", "2", "--end", "1")
    assert code == 2 and error_lines(err) == ["fer-video: error: --end must be after --start (00:00:02.000), not '1'"]
    code, _, err = cli(capsys, tiny_weights, str(demo_video), "--out", str(out), "--min-episode", "-1")
    assert code == 2 and "--min-episode must be a number of seconds >= 0" in err


def test_a_folder_run_applies_the_range_to_every_file(make_video, tiny_weights, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_video(name, seconds=1.5).rename(folder / name)
    out = tmp_path / "out"
    args = [str(folder), "--out", str(out), "--start", "1", "--no-video", "--elan", "--min-episode", "0"]
    code, _, err = cli(capsys, tiny_weights, *args)
    assert code == 0, err
    batch = pd.read_csv(out / "batch.csv")
    assert batch["status"].tolist() == ["ok", "ok"] and batch["frames"].tolist() == [5, 5]
    for stem in ("a", "b"):
        assert read_timeline(out / f"{stem}.timeline.csv")["frame"].tolist()[0] == 10
        assert (out / f"{stem}.episodes.csv").is_file() and (out / f"{stem}.eaf").is_file()
        assert json.loads((out / f"{stem}.summary.json").read_text())["range"]["first_frame"] == 10


def test_the_web_app_takes_the_range_and_shows_the_episodes(demo_video, fast_settings, models, tmp_path):
    cfg = UIConfig(work_dir=tmp_path / "work", weights=fast_settings.weights, device="cpu", examples=False)
    app = FerVideoUI(cfg, load=lambda s: models)
    out = app.annotate(str(demo_video), 5, 0.3, 20, "cpu", min_episode=0.0, start="0.5", end="")
    r = out.result
    assert r.summary["range"]["start_s"] == 0.5 and r.summary["range"]["end_s"] is None
    assert r.outputs["episodes"].is_file()
    pd.testing.assert_frame_equal(out.episodes, read_episodes(r.outputs["episodes"]))
    assert not out.episodes.empty and out.episodes["start_frame"].min() >= 5
    with pytest.raises(SettingsError, match="end must be after"):
        app.annotate(str(demo_video), device="cpu", start="1", end="0:00.5")


def test_a_range_detects_on_its_first_frame(demo_video, fast_settings, models, tmp_path):
    # frame 7 is between detections (every 5th frame): the range's first frame is detected all the same
    settings = dataclasses.replace(fast_settings, start=0.7, end=1.0, write_video=False, write_plot=False)
    r = annotate_video(demo_video, tmp_path, settings, models=models)
    first = read_timeline(r.outputs["csv"]).query("frame == 7")
    assert first["face_id"].notna().sum() == 2
