"""The fer-video command: single file, folder batch with a broken file, resume, usage errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pandas as pd
import pytest
from media import cli, error_lines

from fer_video.batch import BATCH_COLUMNS
from fer_video.cli import main


def _common(tiny_weights):
    return ["--weights", str(tiny_weights), "--device", "cpu", "--quiet", "--no-video"]


def test_single_file_writes_outputs_and_exits_0(demo_video, tiny_weights, tmp_path):
    out = tmp_path / "out"
    assert main(["annotate", str(demo_video), "--out", str(out), *_common(tiny_weights)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "two faces.episodes.csv",
        "two faces.summary.json",
        "two faces.timeline.csv",
        "two faces.timeline.png",
    ]
    summary = json.loads((out / "two faces.summary.json").read_text())
    assert sorted(summary["outputs"].values()) == names  # --no-video: no video listed


def test_folder_batch_goes_on_past_a_broken_file_and_resumes(make_video, tiny_weights, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    make_video("a.mp4").rename(folder / "a.mp4")
    (folder / "broken.mp4").write_text("this is not a video\n")
    make_video("c.mov", faces=1, seconds=1.0).rename(folder / "c.mov")
    (folder / "notes.txt").write_text("ignored: not a video extension")
    out = tmp_path / "out"
    assert main(["annotate", str(folder), "--out", str(out), *_common(tiny_weights)]) == 1
    err = capsys.readouterr().err
    assert "fer-video: error: broken.mp4:" in err and "Traceback" not in err
    batch = pd.read_csv(out / "batch.csv", keep_default_na=False)
    assert list(batch.columns) == BATCH_COLUMNS
    assert [p.rsplit("/", 1)[-1] for p in batch["input"]] == ["a.mp4", "broken.mp4", "c.mov"]
    assert list(batch["status"]) == ["ok", "failed", "ok"]
    assert list(batch["frames"])[0].isdigit() and list(batch["faces"]) == ["2", "", "1"]  # integers beside a failure
    assert batch.loc[1, "reason"].startswith("broken.mp4: ") and "\n" not in batch.loc[1, "reason"]
    assert (out / "a.timeline.csv").is_file() and (out / "c.summary.json").is_file()
    assert not (out / "broken.timeline.csv").exists()
    # resume: finished inputs are skipped, the broken one is tried again
    (folder / "broken.mp4").unlink()
    assert main(["annotate", str(folder), "--out", str(out), "--skip-existing", *_common(tiny_weights)]) == 0
    batch = pd.read_csv(out / "batch.csv", keep_default_na=False)
    assert list(batch["status"]) == ["skipped", "skipped"]


def test_usage_errors_exit_2(tmp_path, capsys):
    proc = subprocess.run([sys.executable, "-m", "fer_video", "annotate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    assert main(["annotate", str(tmp_path / "*.mp4"), "--out", str(tmp_path)]) == 2
    assert "no video found" in capsys.readouterr().err


def test_demo_command_makes_and_annotates_the_demo_clip(tiny_weights, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *_common(tiny_weights)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["demo.episodes.csv", "demo.mp4", "demo.summary.json", "demo.timeline.csv", "demo.timeline.png"]


def test_ui_command_hands_its_options_to_the_app(monkeypatch):
    import fer_video.ui.app as app

    seen = []
    monkeypatch.setattr(app, "main", lambda argv: seen.append(argv) or 0)
    assert main(["ui", "--port", "7999", "--no-example"]) == 0
    assert seen == [["--port", "7999", "--no-example"]]


def test_ui_command_without_gradio_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ModuleNotFoundError
    assert main(["ui"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'fer-video[ui]'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "option, value, says",
    [
        ("--smoothing", "nan", "--smoothing must be a number of seconds >= 0"),
        ("--detect-every", "0", "--detect-every must be >= 1"),
        ("--detect-max-side", "-1", "--detect-max-side must be >= 0"),
        ("--min-face", "0", "--min-face must be >= 1"),
        ("--threshold", "1.5", "--threshold must be in [0, 1]"),
        ("--crf", "99", "--crf must be in [0, 51]"),
        ("--preset", "bogus", "--preset must be one of ultrafast"),
    ],
)
def test_out_of_range_settings_are_usage_errors_before_any_work(option, value, says, demo_video, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["annotate", str(demo_video), "--out", str(out), option, value]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not out.exists()


def test_a_bad_device_is_a_usage_error(demo_video, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["annotate", str(demo_video), "--out", str(out), "--weights", str(tiny_weights), "--quiet"]
    assert main([*args, "--device", "tpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fer-video: error: --device") and "tpu" in err and err.count("\n") == 1


def test_demo_into_a_file_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "afile")]) == 1
    err = capsys.readouterr().err
    assert err == f"fer-video: error: {tmp_path / 'afile'}: output folder is a file\n"


def test_debug_logs_the_traceback_of_a_failed_file(tmp_path, tiny_weights, caplog):
    caplog.set_level(logging.DEBUG)  # what --debug sets up outside pytest (which owns the root logger here)
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    assert main(["--debug", "annotate", str(bad), "--out", str(tmp_path / "out"), *_common(tiny_weights)]) == 1
    (record,) = [r for r in caplog.records if r.exc_info]
    assert "broken.mp4" in record.getMessage() and record.exc_info[0].__name__ == "InputError"


def test_usage_errors_in_process_are_one_line_exit_2(tmp_path, tiny_weights, capsys):
    empty = tmp_path / "nothing here"
    empty.mkdir()
    code, stdout, err = cli(capsys, tiny_weights, str(empty))
    assert code == 2 and error_lines(err) == [f"fer-video: error: no video found in {empty}"]
    for argv in (["annotate"], ["annotate", "x.mp4", "--detect-every", "zero"], ["frobnicate"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    code, _, err = cli(capsys, tiny_weights, str(tmp_path / "clip.mp4"), "--detect-every", "0")
    assert code == 2 and error_lines(err) == ["fer-video: error: --detect-every must be >= 1, not 0"]
