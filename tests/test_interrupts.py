"""Interrupted runs (Ctrl-C, SIGTERM) remove their unfinished outputs, and a batch resumes with --skip-existing."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import (
    ROOT,
    assert_complete,
    cli,
    error_lines,
    parts,
    small,
)

from fer_video.pipeline import output_paths
from fer_video.video import VideoWriter

# ---------------------------------------------------------------- 13: interrupted runs, then resumed


def _default_sigint() -> None:
    # a shell without job control starts background jobs with SIGINT ignored, and children inherit that:
    # give the child Python its usual Ctrl-C handling whatever started pytest
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_annotate(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "fer_video", "annotate", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _stop_during(proc: subprocess.Popen, out: Path, name: str, sig: signal.Signals) -> str:
    """Wait until ``name`` is being annotated (its temp video exists), then send ``sig``; returns stderr."""
    deadline = time.monotonic() + 900  # generous: the CPU may be shared
    while not (out / f".{name}.video.mp4.part").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the run never reached {name}"
        time.sleep(0.05)
    time.sleep(0.2)
    assert proc.poll() is None and not output_paths(out, name)["summary"].exists(), "finished too early"
    proc.send_signal(sig)
    return proc.communicate(timeout=300)[1]


def _statuses(out: Path) -> list[tuple[str, str]]:
    return [(Path(r["input"]).name, r["status"]) for r in csv.DictReader((out / "batch.csv").open())]


@pytest.mark.slow
def test_interrupted_batch_leaves_no_partial_file_and_resumes(tmp_path, tiny_weights):
    """A real process stopped mid-video by Ctrl-C (SIGINT), ``kill -9`` and ``kill`` (SIGTERM) in turn, each
    run resumed with --skip-existing: never a partial file under a final name, and the batch completes."""
    folder = tmp_path / "in"
    small(folder / "a.mp4", seconds=0.5)
    # long enough to be stopped in the middle even on a fast, idle machine (the CPU pipeline does ~30 frames/s here)
    small(folder / "b.mp4", seconds=20.0)
    small(folder / "c.mp4", seconds=20.0)
    out = tmp_path / "out"
    args = [str(folder), "--out", str(out), "--weights", str(tiny_weights), "--device", "cpu", "-q", "--skip-existing"]

    def no_final_outputs(*names: str) -> None:
        for name in names:
            assert not any(p.exists() for p in output_paths(out, name).values()), name

    # 1. Ctrl-C in the middle of b: exit 130, one line, temp files removed, a complete
    proc = _run_annotate(args)
    err = _stop_during(proc, out, "b", signal.SIGINT)
    assert proc.returncode == 130, err
    assert error_lines(err) == [
        "fer-video: interrupted (unfinished outputs removed; rerun with --skip-existing to resume)"
    ], err
    assert parts(out) == [] and _statuses(out) == [("a.mp4", "ok")]
    assert_complete(out, "a")
    no_final_outputs("b", "c")

    # 2. resumed, then kill -9 in the middle of b: no cleanup possible, but nothing under a final name
    proc = _run_annotate(args)
    _stop_during(proc, out, "b", signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".b.")]
    # hidden leftovers only (which ones depends on the stage the kill hit: encoding, muxing or writing the rest),
    # and b's lock, which the next run takes over (its pid is gone)
    assert ".b.annotating.lock" in leftovers, leftovers
    temps = [n for n in leftovers if n != ".b.annotating.lock"]
    assert temps and all(n.endswith(".part") for n in temps), leftovers
    assert_complete(out, "a", no_temp_files=False)
    no_final_outputs("b", "c")

    # 3. resumed, then kill (SIGTERM) in the middle of c: exit 143, b done, c's temp files removed
    proc = _run_annotate(args)
    err = _stop_during(proc, out, "c", signal.SIGTERM)
    assert proc.returncode == 143, err
    assert error_lines(err)[-1].startswith("fer-video: terminated (unfinished outputs removed"), err
    assert "Traceback" not in err
    assert parts(out) == []  # b's leftovers from kill -9 were replaced, c's removed
    assert "taking over a stale lock" in err and not list(out.glob("*.lock"))
    assert _statuses(out) == [("a.mp4", "skipped"), ("b.mp4", "ok")]
    assert_complete(out, "b")
    no_final_outputs("c")

    # 4. resumed to the end: exit 0
    proc = _run_annotate(args)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert _statuses(out) == [("a.mp4", "skipped"), ("b.mp4", "skipped"), ("c.mp4", "ok")]
    for name in "abc":
        assert_complete(out, name)
    assert [json.loads(output_paths(out, n)["summary"].read_text())["frames"] for n in "abc"] == [5, 200, 200]


def test_ctrl_c_in_process_removes_temp_files(tmp_path, good_clip, tiny_weights, capsys, monkeypatch):
    """KeyboardInterrupt in the middle of a video (raised from the encoder): exit 130, no file left."""
    calls = {"n": 0}
    real = VideoWriter.write

    def write(self, image, time_s):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        real(self, image, time_s)

    monkeypatch.setattr(VideoWriter, "write", write)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, tiny_weights, str(good_clip), "--out", str(out))
    assert code == 130 and error_lines(err)[-1].startswith("fer-video: interrupted")
    assert sorted(p.name for p in out.iterdir()) == []
