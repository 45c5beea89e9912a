"""Outputs that cannot be written: a clear error, nothing half-written, earlier outputs kept, the batch goes on.

Simulated faults (the tests run as root, for whom chmod does not make a folder read-only): an output folder
"not writable" is a path under a regular file (real), an existing file (real), or ``os.access`` patched to say
no; a full disk is ``OSError(ENOSPC)`` raised from a patched write; a real write failure (EFBIG) comes from
``RLIMIT_FSIZE`` in a subprocess.
"""

import csv
import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest
from media import (
    ROOT,
    assert_complete,
    assert_nothing_for,
    cli,
    error_lines,
)

from fer_video import pipeline
from fer_video.demo import make_demo_video
from fer_video.errors import OutputError
from fer_video.pipeline import annotate_video
from fer_video.video import VideoWriter

# --------------------------------------------------------------- 12: output not writable, disk full


def test_output_folder_under_a_file(tmp_path, good_clip, tiny_weights, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("x")
    out = blocker / "results"
    code, stdout, err = cli(capsys, tiny_weights, str(good_clip), "--out", str(out))
    assert code == 1
    assert error_lines(err) == [f"fer-video: error: {out}: cannot create output folder (Not a directory)"]
    assert blocker.read_text() == "x"


def test_output_folder_is_a_file(tmp_path, good_clip, tiny_weights, capsys):
    out = tmp_path / "results"
    out.write_text("x")
    code, stdout, err = cli(capsys, tiny_weights, str(good_clip), "--out", str(out))
    assert code == 1 and error_lines(err) == [f"fer-video: error: {out}: output folder is a file"]


def test_output_folder_not_writable(tmp_path, good_clip, tiny_weights, capsys, monkeypatch, fast_settings, models):
    """Simulated (root may write anywhere): ``os.access`` says the folder is not writable."""
    out = tmp_path / "locked"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == out else real_access(p, mode, **kw))
    code, stdout, err = cli(
        capsys, tiny_weights, str(good_clip), str(good_clip.parent / "upright.mp4"), "--out", str(out)
    )
    assert code == 1 and error_lines(err) == [f"fer-video: error: {out}: output folder is not writable"]
    assert sorted(out.iterdir()) == []
    with pytest.raises(OutputError, match="output folder is not writable"):
        annotate_video(good_clip, out, fast_settings, models=models)


@pytest.fixture(scope="module")
def tiny_av(clips) -> Path:
    """96x64, 5 frames, one face, with audio (so every output stage runs, cheaply)."""
    return make_demo_video(
        clips / "tiny av.mp4", width=96, height=64, fps=10.0, seconds=0.5, faces=1, noface_from=None, audio=True
    )


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fault_video(monkeypatch):
    calls = {"n": 0}
    real = VideoWriter._mux

    def mux(self, packets):  # the disk fills after a few frames of video
        calls["n"] += 1
        if calls["n"] > 3:
            raise av.error.OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, packets)

    monkeypatch.setattr(VideoWriter, "_mux", mux)


FAULTS = {
    "video": _fault_video,
    "timeline csv": lambda mp: mp.setattr(pipeline.TimelineWriter, "flush", _enospc),
    "audio mux": lambda mp: mp.setattr(pipeline, "mux_audio", _enospc),
    "plot": lambda mp: mp.setattr(pipeline, "plot_timeline", _enospc),
    "summary": lambda mp: mp.setattr(pipeline, "_write_json", _enospc),
    "rename": lambda mp: mp.setattr(pipeline.os, "replace", _enospc),
}


@pytest.mark.parametrize("where", list(FAULTS))
def test_disk_full_clear_error_no_partial_file(where, tmp_path, tiny_av, fast_settings, models, monkeypatch):
    out = tmp_path / "out"
    FAULTS[where](monkeypatch)
    with pytest.raises(OutputError) as exc:
        annotate_video(tiny_av, out, fast_settings, models=models)
    assert str(exc.value) == f"tiny av.mp4: cannot write outputs to {out} (disk full)"
    assert sorted(p.name for p in out.iterdir()) == []


def test_disk_full_keeps_previous_outputs(tmp_path, tiny_av, fast_settings, models, monkeypatch):
    out = tmp_path / "out"
    annotate_video(tiny_av, out, fast_settings, models=models)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(pipeline, "_write_json", _enospc)
    with pytest.raises(OutputError, match="disk full"):
        annotate_video(tiny_av, out, fast_settings, models=models)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_disk_full_in_cli_batch_goes_on(tmp_path, good_clip, tiny_av, tiny_weights, capsys, monkeypatch):
    """Disk full on one input (simulated): one line naming it, the next input still done, exit code 1."""
    real = pipeline._write_json

    def write_json(path, obj):
        if "tiny av" in Path(path).name:
            _enospc()
        real(path, obj)

    monkeypatch.setattr(pipeline, "_write_json", write_json)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, tiny_weights, str(tiny_av), str(good_clip), "--out", str(out))
    assert code == 1
    assert error_lines(err) == [f"fer-video: error: tiny av.mp4: cannot write outputs to {out} (disk full)"]
    assert_nothing_for(out, "tiny av")
    assert_complete(out, "good")
    rows = list(csv.DictReader((out / "batch.csv").open()))
    assert [(Path(r["input"]).name, r["status"]) for r in rows] == [("tiny av.mp4", "failed"), ("good.mp4", "ok")]


def _limit_file_size():  # runs in the child before exec: files larger than this fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@pytest.mark.slow
def test_real_write_failure_file_size_limit(tmp_path, good_clip, tiny_weights):
    """Not a mock: a real write error from the kernel (RLIMIT_FSIZE -> EFBIG) while writing the outputs."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fer_video",
            "annotate",
            str(good_clip),
            "--out",
            str(out),
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
            "-q",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert proc.returncode == 1, proc.stderr
    lines = error_lines(proc.stderr)
    assert lines == [f"fer-video: error: good.mp4: cannot write outputs to {out} (File too large)"], proc.stderr
    assert_nothing_for(out, "good")
