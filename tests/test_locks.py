"""Two runs on one output folder: the per-video lock (``fer_video.locks``), stale locks taken over, ``batch.csv``
merged; and two real ``fer-video annotate --skip-existing`` processes started at the same moment."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from media import ROOT, assert_complete, cli, small

from fer_video.batch import BatchRow, merge_rows, video_lock_path
from fer_video.locks import Holder, Locked, acquire, read_holder
from fer_video.outputs import output_paths


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(path: Path, holder: Holder, age_s: float = 0.0) -> None:
    path.write_text(json.dumps(holder.__dict__))
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_a_lock_is_exclusive_names_its_holder_and_goes_on_every_exit(tmp_path):
    path = tmp_path / ".a.annotating.lock"
    with acquire(path) as lock:
        assert read_holder(path) == lock.holder and lock.holder.pid == os.getpid()
        with pytest.raises(Locked, match=rf"held by pid {os.getpid()}$"):
            acquire(path)
    assert not path.exists()
    with pytest.raises(KeyboardInterrupt), acquire(path):
        raise KeyboardInterrupt  # Ctrl-C (and SIGTERM, which the CLI turns into one)
    assert not path.exists()


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path, caplog):
    path = tmp_path / ".a.annotating.lock"
    dead = _dead_pid()
    _write_lock(path, Holder(dead, Holder.me().host, Holder.me().namespace, "old"))
    with caplog.at_level(logging.WARNING, "fer_video.locks"), acquire(path) as lock:
        assert lock.holder.pid == os.getpid()
    assert [r.getMessage() for r in caplog.records] == [
        f".a.annotating.lock: taking over a stale lock (pid {dead} is not running)"
    ]
    # on another machine its pid cannot be checked: a fresh heartbeat holds, an old one is stale
    _write_lock(path, Holder(4242, "node-b", "", "theirs"))
    with pytest.raises(Locked, match="held by pid 4242 on node-b"):
        acquire(path)
    _write_lock(path, Holder(4242, "node-b", "", "theirs"), age_s=3600)
    with acquire(path):
        pass


def test_release_leaves_a_lock_another_process_took_over(tmp_path):
    path = tmp_path / ".a.annotating.lock"
    lock = acquire(path, heartbeat_s=None)
    path.unlink()
    _write_lock(path, Holder(4242, "node-b", "", "theirs"))
    lock.release()
    assert read_holder(path).token == "theirs"


def test_a_held_lock_beats(tmp_path):
    path = tmp_path / ".a.annotating.lock"
    with acquire(path, heartbeat_s=0.05):
        os.utime(path, (0, 0))
        time.sleep(0.3)
        assert time.time() - path.stat().st_mtime < 5


def _row(name: str, status: str, seconds: float | None = None) -> BatchRow:
    return BatchRow(name, status, "", seconds=seconds)


def test_batch_rows_are_merged_with_another_runs_rows():
    inputs = ["a.mp4", "b.mp4", "c.mp4"]
    earlier = [_row("a.mp4", "ok", 1.0), _row("old.mp4", "failed")]  # the file as this run found it
    current = [*earlier, _row("b.mp4", "ok", 2.0), _row("z.mp4", "ok", 3.0)]  # b and z: another run, meanwhile
    mine = [_row("a.mp4", "skipped"), _row("b.mp4", "locked")]
    merged = merge_rows(mine, inputs, current, earlier)
    # a: this run's (earlier rows give way); b: the other run's work beats "locked"; c: not reached; z: theirs
    assert [(r.input, r.status) for r in merged] == [("a.mp4", "skipped"), ("b.mp4", "ok"), ("z.mp4", "ok")]
    assert merge_rows([_row("b.mp4", "ok", 4.0)], inputs, current, earlier)[0].seconds == 4.0  # work beats work


# ------------------------------------------------------------------------------------- the CLI, two at once


@pytest.fixture(scope="module")
def folder(clips) -> Path:
    """Four one-face clips of different lengths (so every timeline differs)."""
    videos = clips / "in"
    videos.mkdir()
    for i, seconds in enumerate((1.0, 1.5, 2.0, 2.5)):
        small(videos / f"v{i}.mp4", seconds=seconds)
    return videos


def test_a_video_another_run_holds_is_skipped_as_locked(folder, tiny_weights, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    held = acquire(video_lock_path(out, "v1"))  # "another run" (this process: its pid is alive)
    try:
        code, stdout, _ = cli(capsys, tiny_weights, str(folder), "--out", str(out), "--skip-existing")
    finally:
        held.release()
    assert code == 0
    batch = pd.read_csv(out / "batch.csv", keep_default_na=False)
    assert list(batch["status"]) == ["ok", "locked", "ok", "ok"]
    assert batch.loc[1, "reason"] == f"being annotated by pid {os.getpid()}"
    assert not output_paths(out, "v1")["summary"].exists()
    assert sorted(p.name for p in out.glob(".*")) == []  # no lock, no temporary left
    # a lock left by a killed run (its pid gone) is taken over: the next run annotates v1
    _write_lock(video_lock_path(out, "v1"), Holder(_dead_pid(), Holder.me().host, Holder.me().namespace, "x"))
    code, _, _ = cli(capsys, tiny_weights, str(folder), "--out", str(out), "--skip-existing")
    assert code == 0
    batch = pd.read_csv(out / "batch.csv", keep_default_na=False)
    assert list(batch["status"]) == ["skipped", "ok", "skipped", "skipped"]
    assert sorted(p.name for p in out.glob(".*")) == []


def _annotate(folder: Path, out: Path, weights: Path) -> subprocess.Popen:
    args = [str(folder), "--out", str(out), "--skip-existing", "--weights", str(weights), "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "fer_video", "annotate", *args, "--min-face", "20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_runs_at_once_share_the_work_and_write_what_one_run_writes(folder, tiny_weights, tmp_path):
    alone, shared = tmp_path / "alone", tmp_path / "shared"
    single = _annotate(folder, alone, tiny_weights)
    assert single.wait(timeout=300) == 0, single.stderr.read()
    runs = [_annotate(folder, shared, tiny_weights) for _ in range(2)]
    done = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], [err for _, err in done]
    statuses = [re.findall(r"^\S*(v\d)\.mp4: (\w+)", stdout, re.M) for stdout, _ in done]
    annotated = sorted(v for run in statuses for v, status in run if status == "ok")
    assert annotated == ["v0", "v1", "v2", "v3"], statuses  # every video annotated once, by one of the runs
    for i in range(4):
        ours, theirs = output_paths(shared, f"v{i}"), output_paths(alone, f"v{i}")
        assert ours["csv"].read_bytes() == theirs["csv"].read_bytes()
        assert ours["episodes"].read_bytes() == theirs["episodes"].read_bytes()
        assert assert_complete(shared, f"v{i}")["frames"] == 10 + 5 * i
    batch = pd.read_csv(shared / "batch.csv", keep_default_na=False)
    assert sorted(Path(p).name for p in batch["input"]) == [f"v{i}.mp4" for i in range(4)]
    assert set(batch["status"]) <= {"ok", "skipped"}  # no "locked" left: the run that worked wrote its row
    assert sorted(p.name for p in shared.glob(".*")) == []
