"""Resuming a long video mid-way (``--checkpoint-s``): a run killed after a checkpoint and run again with
``--skip-existing`` writes the outputs an uninterrupted run writes, having annotated only the rest; checkpoints
of other settings, another input or a damaged file are discarded with a warning; checkpoints change no output.

Real MTCNN and the shipped model (the default weights, as the CLI runs) on a synthetic 320x180 10 fps clip;
``--checkpoint-s 1``: a checkpoint at every chunk of 20 frames (2 s of this clip)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
from conftest import ROOT
from media import parts

from fer_video import annotate_video
from fer_video.batch import run_batch
from fer_video.errors import Cancelled
from fer_video.outputs import output_paths
from fer_video.stages import load_models
from fer_video.types import Settings

CLIP = dict(width=320, height=180, fps=10.0, seconds=8.0, faces=2, noface_from=0.7, audio=True)
SETTINGS = Settings(device="cpu", min_face=20, detect_every=5, checkpoint_s=1.0)
RUN = dataclasses.replace(SETTINGS, elan=True, start="0.5")  # as the CLI below: --elan --start 0.5
NAME = "clip"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The clip and every run's output folder side by side: the summaries and ELAN documents name the same
    input by the same paths."""
    return tmp_path_factory.mktemp("resume")


@pytest.fixture(scope="module")
def clip(base) -> Path:
    from fer_video.demo import make_demo_video

    return make_demo_video(base / f"{NAME}.mp4", **CLIP)


@pytest.fixture(scope="module")
def real_models():
    return load_models(SETTINGS)


def _state(out: Path) -> Path:
    return out / f".{NAME}.resume.json.part"


def _summary(out: Path) -> dict:
    summary = json.loads(output_paths(out, NAME)["summary"].read_text())
    summary.pop("processing")  # timings, and how this run got there
    return summary


def _eaf(path: Path) -> str:
    """An ELAN document without the time it was written."""
    return re.sub(r' DATE="[^"]*"', "", path.read_text())


def assert_same_outputs(a: Path, b: Path, elan: bool = False) -> None:
    """The same timeline and episodes (every byte), summary apart from ``processing``; each video holds every
    frame and the audio; no temporary or checkpoint file is left."""
    pa, pb = output_paths(a, NAME), output_paths(b, NAME)
    for key in ("csv", "episodes"):
        assert pa[key].read_bytes() == pb[key].read_bytes(), key
    if elan:
        assert _eaf(pa["elan"]) == _eaf(pb["elan"])
    sa, sb = _summary(a), _summary(b)
    assert sa == sb
    for folder in (a, b):
        with av.open(str(output_paths(folder, NAME)["video"])) as c:
            assert [s.type for s in c.streams] == ["video", "audio"]
            assert sum(1 for _ in c.decode(video=0)) == sa["frames"]
        assert parts(folder) == []


def _cli(out: Path, clip: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fer_video",
        "annotate",
        str(clip),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--min-face",
        "20",
        "--detect-every",
        "5",
        "--checkpoint-s",
        "1",
        "-q",
        *extra,
    ]


def _interrupted(clip: Path, out: Path, settings: Settings, models) -> None:
    """Annotate in this process, Ctrl-C (a KeyboardInterrupt) as soon as the first checkpoint is saved."""

    def progress(_p) -> None:
        if _state(out).exists():
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        annotate_video(clip, out, settings, models=models, name=NAME, progress=progress)
    assert _state(out).exists() and not output_paths(out, NAME)["summary"].exists()


@pytest.fixture(scope="module")
def reference(clip, real_models, base) -> Path:
    """The uninterrupted run (with the ELAN document and a time range, as the killed run below)."""
    out = base / "reference"
    settings = RUN
    annotate_video(clip, out, settings, models=real_models, name=NAME)
    return out


@pytest.fixture(scope="module")
def interrupted(clip, real_models, base) -> Path:
    """A folder with the checkpoint of a run interrupted after its first one (copied by each test using it)."""
    out = base / "interrupted"
    _interrupted(clip, out, RUN, real_models)
    return out


def test_a_run_killed_mid_video_resumes_to_the_same_outputs(clip, reference, base):
    """``kill -9`` once the first checkpoint is saved, then the same command with --skip-existing: the outputs
    of the uninterrupted run, and only the frames after the checkpoint were annotated again."""
    out = base / "killed"
    command = _cli(out, clip, "--elan", "--start", "0.5")
    p = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not _state(out).exists():
            assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint was saved"
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert not output_paths(out, NAME)["summary"].exists(), "the run finished before it was killed"
    assert all(name.name.startswith(f".{NAME}.") for name in out.iterdir())  # hidden: temporaries, its lock

    resumed = subprocess.run([*command, "--skip-existing"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_outputs(reference, out, elan=True)
    done = json.loads(output_paths(out, NAME)["summary"].read_text())
    first = done["range"]["first_frame"]
    assert done["processing"]["resumed_at_frame"] > first
    assert done["processing"]["frames_annotated"] == done["frames"] - (done["processing"]["resumed_at_frame"] - first)
    assert done["processing"]["frames_annotated"] < done["frames"]


def test_ctrl_c_keeps_the_checkpoint_and_the_api_resumes_from_it(clip, reference, interrupted, real_models, base):
    out = shutil.copytree(interrupted, base / "ctrl-c")
    settings = RUN
    result = annotate_video(clip, out, settings, models=real_models, name=NAME, resume=True)
    assert result.summary["processing"]["resumed_at_frame"] is not None
    assert_same_outputs(reference, out, elan=True)


def test_classifying_every_nth_frame_resumes_to_the_same_outputs(clip, real_models, base):
    """With --classify-every the faces' last probabilities are part of the checkpoint: an interrupted run resumes
    to the uninterrupted run's outputs."""
    settings = dataclasses.replace(RUN, classify_every=3)
    reference = base / "every3-reference"
    annotate_video(clip, reference, settings, models=real_models, name=NAME)
    out = base / "every3"
    _interrupted(clip, out, settings, real_models)
    result = annotate_video(clip, out, settings, models=real_models, name=NAME, resume=True)
    assert result.summary["processing"]["resumed_at_frame"] is not None
    assert_same_outputs(reference, out, elan=True)
    assert "classified" in output_paths(out, NAME)["csv"].read_text().splitlines()[0]


@pytest.mark.parametrize(
    "change, note",
    [
        ("settings", "other settings (smoothing)"),
        ("input", "another input"),
        ("csv", "its timeline CSV does not match"),
        ("state", "unreadable"),
        ("no resume", "not resuming"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_discarded_with_a_note(
    change, note, clip, interrupted, real_models, tmp_path, caplog
):
    """Other settings, a changed input (here its mtime), a damaged CSV or state, or a run without resuming:
    one warning, and the run annotates every frame from the beginning, as a fresh run would."""
    out = shutil.copytree(interrupted, tmp_path / "out")
    if change == "input":  # the same name, a newer file
        clip = shutil.copy2(clip, tmp_path / "input.mp4")
    settings = RUN
    if change == "settings":
        settings = dataclasses.replace(settings, smoothing=0.5)
    elif change == "input":
        os.utime(clip, ns=(time.time_ns(), time.time_ns()))
    elif change == "csv":
        with open(out / f".{NAME}.resume.timeline.csv.part", "r+b") as fh:
            fh.seek(200)
            fh.write(b"9")
    elif change == "state":
        _state(out).write_text(_state(out).read_text()[:-10])
    caplog.set_level(logging.WARNING, logger="fer_video")
    result = annotate_video(clip, out, settings, models=real_models, name=NAME, resume=change != "no resume")
    notes = [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]
    assert len(notes) == 1 and note in notes[0] and notes[0].startswith(f"{NAME}: checkpoint discarded, "), notes
    assert result.summary["processing"]["resumed_at_frame"] is None
    assert result.summary["processing"]["frames_annotated"] == result.frames
    assert parts(out) == []


def test_checkpoints_change_no_output(clip, reference, real_models, base):
    """Checkpoints off (0): the same CSVs, ELAN document and summary as with one every second."""
    out = base / "off"
    settings = dataclasses.replace(RUN, checkpoint_s=0)
    result = annotate_video(clip, out, settings, models=real_models, name=NAME)
    assert result.summary["processing"]["checkpoints_saved"] == 0
    on = json.loads(output_paths(reference, NAME)["summary"].read_text())
    assert on["processing"]["checkpoints_saved"] >= 3
    on["settings"]["checkpoint_s"] = 0
    pa, pb = output_paths(reference, NAME), output_paths(out, NAME)
    for key in ("csv", "episodes"):
        assert pa[key].read_bytes() == pb[key].read_bytes(), key
    assert _eaf(pa["elan"]) == _eaf(pb["elan"])
    off = _summary(out)
    on.pop("processing")
    assert on == off
    assert parts(out) == []


def test_a_cancelled_run_leaves_no_checkpoint(clip, real_models, tmp_path):
    out = tmp_path / "out"
    stop = threading.Event()

    def progress(_p) -> None:
        if _state(out).exists():
            stop.set()

    with pytest.raises(Cancelled):
        annotate_video(clip, out, SETTINGS, models=real_models, name=NAME, progress=progress, cancel=stop)
    assert list(out.iterdir()) == []


def test_run_batch_with_skip_existing_resumes(clip, real_models, tmp_path):
    """The batch API: ``skip_existing`` continues the interrupted video; its row says where from."""
    folder = tmp_path / "in"
    folder.mkdir()
    clip = shutil.copy2(clip, folder / f"{NAME}.mp4")
    out = tmp_path / "out"
    _interrupted(clip, out, SETTINGS, real_models)
    rows = run_batch([clip], out, SETTINGS, models=real_models, skip_existing=True, batch_csv=False)
    assert [(r.status, r.reason.startswith("resumed at frame ")) for r in rows] == [("ok", True)]
    assert parts(out) == []


def test_segments_join_by_stream_copy_with_every_frame_time(tmp_path):
    """A variable frame rate cut into segments (each on a keyframe) and joined: the same packets, not re-encoded,
    and the frames at their times."""
    import numpy as np

    from fer_video.video import Encoding, SegmentedWriter, join_segments

    times = [round(0.1 * i + 0.03 * (i % 3), 4) for i in range(30)]
    writer = SegmentedWriter(tmp_path / "live.mp4", Encoding(64, 48, 10.0, preset="ultrafast"))
    rng = np.random.default_rng(0)
    for i, t in enumerate(times):
        if i in (7, 20):
            writer.cut(tmp_path / f"seg{i}.mp4")
        writer.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8), t)
    segments = writer.close()
    assert [s.frames for s in segments] == [7, 13, 10]
    join_segments(segments, tmp_path / "joined.mp4")

    def packets(path):
        with av.open(str(path)) as c:
            return [(bytes(p), p.is_keyframe) for p in c.demux(video=0) if p.size]

    joined = packets(tmp_path / "joined.mp4")
    assert joined == [p for s in segments for p in packets(s.path)]
    assert [i for i, (_, key) in enumerate(joined) if key] == [0, 7, 20]
    with av.open(str(tmp_path / "joined.mp4")) as c:
        assert [round(float(f.pts * f.time_base), 4) for f in c.decode(video=0)] == times
