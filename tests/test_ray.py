"""The batch over Ray: same rows and CSVs as one process, a broken file, resume, a worker killed mid-video, an
output folder the workers do not share, Ray missing. One local Ray (2 CPUs) serves the whole session."""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

import pandas as pd
import pytest

from fer_video.batch import BATCH_COLUMNS, run_batch, video_lock_path
from fer_video.device import WorkerPlan, plan_workers
from fer_video.errors import FerVideoError
from fer_video.locks import acquire
from fer_video.outputs import output_paths
from fer_video.ray_engine import RAY_MISSING, RayOptions, run_batch_ray

ray = pytest.importorskip("ray")


@pytest.fixture(scope="session")
def ray_cluster(request):
    """A local Ray for the session, always shut down (even when a test fails or the run is interrupted)."""
    request.addfinalizer(ray.shutdown)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    return ray


@pytest.fixture(scope="module")
def folder(make_video, tmp_path_factory) -> Path:
    """Two short clips and a broken file, as the single-process batch test builds them."""
    folder = tmp_path_factory.mktemp("ray-in")
    make_video("ray-a.mp4", seconds=1.5).rename(folder / "a.mp4")
    (folder / "broken.mp4").write_text("this is not a video\n")
    make_video("ray-c.mov", faces=1, seconds=1.0).rename(folder / "c.mov")
    return folder


@pytest.fixture(scope="module")
def settings(fast_settings):
    return dataclasses.replace(fast_settings, write_video=False)


@pytest.fixture(scope="module")
def reference(folder, settings, models, tmp_path_factory) -> Path:
    """The single-process batch of ``folder``."""
    out = tmp_path_factory.mktemp("ray-ref")
    run_batch(sorted(folder.iterdir()), out, settings, models=models)
    return out


def _batch(out: Path) -> pd.DataFrame:
    table = pd.read_csv(out / "batch.csv", keep_default_na=False)
    assert list(table.columns) == BATCH_COLUMNS
    return table.drop(columns="seconds")  # the one column that changes from run to run


def _same_outputs(out: Path, reference: Path, names=("a", "c")) -> None:
    pd.testing.assert_frame_equal(_batch(out), _batch(reference))
    for name in names:
        assert (out / f"{name}.timeline.csv").read_bytes() == (reference / f"{name}.timeline.csv").read_bytes()
        assert (out / f"{name}.summary.json").is_file()
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # no partial output, no marker file


def test_ray_batch_writes_what_one_process_writes(ray_cluster, folder, settings, reference, tmp_path):
    out = tmp_path / "out"
    rows = run_batch_ray(sorted(folder.iterdir()), out, settings)  # 2 CPUs: one worker with 2 threads
    assert [r.status for r in rows] == ["ok", "failed", "ok"]
    assert rows[1].reason.startswith("broken.mp4: ") and "\n" not in rows[1].reason
    _same_outputs(out, reference)

    # resume: the finished inputs are skipped, the broken one and the one whose summary is gone are redone
    (out / "c.summary.json").unlink()
    rows = run_batch_ray(sorted(folder.iterdir()), out, settings, skip_existing=True)
    assert [r.status for r in rows] == ["skipped", "failed", "ok"]
    assert (out / "c.timeline.csv").read_bytes() == (reference / "c.timeline.csv").read_bytes()


def test_a_video_another_run_is_annotating_is_left_to_it(ray_cluster, folder, settings, tmp_path):
    """The driver takes each video's lock before handing it out, as a single-process run does."""
    out = tmp_path / "out"
    out.mkdir()
    with acquire(video_lock_path(out, "c")):  # "another run" annotating c (this process: a live pid)
        rows = run_batch_ray(sorted(folder.iterdir()), out, settings)
    assert [r.status for r in rows] == ["ok", "failed", "locked"]
    assert rows[2].reason == f"being annotated by pid {os.getpid()}"
    assert list(_batch(out)["status"]) == ["ok", "failed", "locked"]
    assert not output_paths(out, "c")["summary"].exists() and not list(out.glob(".*"))


def test_a_worker_killed_mid_video_costs_a_retry_and_a_video_that_kills_every_worker_fails(
    ray_cluster, folder, settings, reference, tmp_path
):
    """2 workers of 1 thread; ``a`` kills its worker (SIGKILL, as ``kill -9`` or the OOM killer) once half-way,
    ``c`` kills every worker that takes it. ``a`` is redone elsewhere and matches the single-process run."""
    crashed = tmp_path / "crashed"
    crashed.mkdir()

    def hook(name, progress):  # runs on the worker: defined here, so Ray ships it by value
        if name == "c" or (name == "a" and progress.done >= 5 and not (crashed / "a").exists()):
            (crashed / f"{name}-{os.getpid()}").touch()
            if name == "a":
                (crashed / "a").touch()
            os.kill(os.getpid(), signal.SIGKILL)

    out = tmp_path / "out"
    options = RayOptions(workers=2, max_attempts=2)
    rows = run_batch_ray(sorted(folder.iterdir()), out, settings, options, worker_hook=hook)
    assert [r.status for r in rows] == ["ok", "failed", "failed"]
    assert rows[2].reason == "c.mov: its Ray worker died 2 times (ActorDiedError)"
    assert len(list(crashed.glob("c-*"))) == 2 and (crashed / "a").exists()
    a = _batch(out).iloc[0]
    assert a.equals(_batch(reference).iloc[0])  # a redone: the same row as one process (2 threads there, 1 here)
    assert (out / "a.timeline.csv").read_bytes() == (reference / "a.timeline.csv").read_bytes()
    a_outputs = sorted(p.name for p in reference.iterdir() if p.name.startswith("a."))  # what one process wrote
    assert sorted(p.name for p in out.iterdir()) == [*a_outputs, "batch.csv"]


def test_a_retry_after_a_lost_worker_continues_from_the_last_checkpoint(
    ray_cluster, make_video, fast_settings, models, tmp_path
):
    """Checkpoints every second: the worker of ``long`` dies (SIGKILL) once the first is saved; its retry, on a new
    worker, continues from it (without --skip-existing) and writes the single-process run's CSV."""
    folder = tmp_path / "in"
    folder.mkdir()
    make_video("ray-long.mp4", seconds=6.0).rename(folder / "long.mp4")
    settings = dataclasses.replace(fast_settings, write_video=False, checkpoint_s=1.0)
    reference = tmp_path / "ref"
    run_batch(sorted(folder.iterdir()), reference, settings, models=models, batch_csv=False)
    out = tmp_path / "out"
    state = out / ".long.resume.json.part"
    crashed = tmp_path / "crashed"

    def hook(name, progress):  # on the worker: kill it once, as soon as a checkpoint is saved
        if state.exists() and not crashed.exists():
            crashed.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    rows = run_batch_ray(sorted(folder.iterdir()), out, settings, RayOptions(workers=1), worker_hook=hook)
    assert crashed.exists() and [r.status for r in rows] == ["ok"]
    assert rows[0].reason.startswith("resumed at frame ")
    assert (out / "long.timeline.csv").read_bytes() == (reference / "long.timeline.csv").read_bytes()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_an_output_folder_the_workers_do_not_see_is_refused(ray_cluster, folder, settings, monkeypatch, tmp_path):
    from fer_video import ray_engine

    class Elsewhere(ray_engine.VideoWorker):  # a worker on a node where the folder is another, empty folder
        def ready(self, out_dir, marker, token):
            report = ray_engine.WorkerReport("node-b", "node-b (10.0.0.2)", ray_engine.__version__, 1, False, "x")
            return report

    monkeypatch.setattr(ray_engine, "VideoWorker", Elsewhere)
    out = tmp_path / "out"
    with pytest.raises(FerVideoError, match="output folder is not shared with the Ray worker on node-b"):
        run_batch_ray([folder / "a.mp4"], out, settings)
    assert [p.name for p in out.iterdir()] == []  # the marker removed, nothing started


def test_without_ray_installed_the_error_names_the_extra(monkeypatch, folder, settings, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(FerVideoError) as err:
        run_batch_ray([folder / "a.mp4"], tmp_path / "out", settings)
    assert str(err.value) == RAY_MISSING == 'Ray is not installed: pip install "fer-video[ray]"'


@pytest.mark.parametrize(
    ("cpus", "gpus", "workers", "plan"),
    [
        ([2], [0], None, WorkerPlan(1, 2)),
        ([2], [0], 2, WorkerPlan(2, 1)),
        ([16], [0], 4, WorkerPlan(4, 4)),
        ([2], [0], 4, WorkerPlan(2, 1, 0, "4 workers asked for, 2 CPUs: 2 workers")),
        ([4, 4], [0, 0], 1, WorkerPlan(1, 4)),  # a worker never spans two nodes
        ([4, 4], [0, 0], 3, WorkerPlan(3, 2)),  # 8 // 3 = 2 threads each fits, 3 each would not
        ([32, 32], [2, 2], None, WorkerPlan(4, 4, 1)),  # one worker per GPU, a few threads to feed it
    ],
)
def test_plan_workers(cpus, gpus, workers, plan):
    assert plan_workers(cpus, gpus, workers) == plan


# ------------------------------------------------------------------------------------------------ the command


def test_cli_ray_batch_says_and_writes_what_one_process_does(ray_cluster, folder, tiny_weights, tmp_path, capsys):
    from fer_video.cli import main

    quiet = ["--weights", str(tiny_weights), "--device", "cpu", "--min-face", "20", "--detect-every", "5", "--quiet"]
    assert main(["annotate", str(folder), "--out", str(tmp_path / "one"), *quiet]) == 1
    one = capsys.readouterr()
    assert main(["annotate", str(folder), "--out", str(tmp_path / "ray"), *quiet, "--ray"]) == 1
    on_ray = capsys.readouterr()
    assert on_ray.out == one.out == "" and on_ray.err == one.err  # --quiet: only the one-line error of broken.mp4
    assert on_ray.err.startswith("fer-video: error: broken.mp4: ") and on_ray.err.count("\n") == 1
    _same_outputs(tmp_path / "ray", tmp_path / "one")
    assert (tmp_path / "ray" / "a.annotated.mp4").is_file()


def test_cli_ray_usage_errors_and_missing_ray(folder, tiny_weights, tmp_path, monkeypatch, capsys):
    from fer_video.cli import main

    assert main(["annotate", str(folder), "--out", str(tmp_path / "o"), "--workers", "2"]) == 2
    assert capsys.readouterr().err == "fer-video: error: --workers needs --ray or --ray-address\n"
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["annotate", str(folder), "--out", str(tmp_path / "o"), "--ray"]) == 1
    assert capsys.readouterr().err == 'fer-video: error: Ray is not installed: pip install "fer-video[ray]"\n'
    assert not (tmp_path / "o").exists()  # refused before any work


def _processes_of_session(sid: int) -> list[str]:
    """Processes still in session ``sid``: the command's own Ray (GCS, raylet, workers) would be there."""
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            left.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return left


def test_cli_ray_ctrl_c_leaves_no_ray_process_and_no_partial_output(make_video, tiny_weights, tmp_path):
    """``fer-video annotate --ray`` in a process of its own, one worker: the first video is done, Ctrl-C (SIGINT
    to the whole process group, as a terminal sends it) comes in the middle of the second. Its local Ray ends
    with it; the first video's outputs and row stay, nothing of the second is left."""
    import subprocess
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    make_video("ray-1.mp4", seconds=1.0).rename(folder / "1.mp4")
    make_video("ray-2.mp4", seconds=30.0).rename(folder / "2.mp4")  # long enough to be cut short
    out = tmp_path / "out"
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    args = ["annotate", str(folder), "--out", str(out), "--weights", str(tiny_weights), "--device", "cpu"]
    command = [sys.executable, "-m", "fer_video", *args, "--quiet", "--ray", "--workers", "1"]
    # SIGINT as a terminal leaves it: a run started in the background (CI) inherits it ignored, and a Python
    # that starts with SIGINT ignored never raises KeyboardInterrupt
    p = subprocess.Popen(
        command,
        env=env,
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        while p.poll() is None and not (out / ".2.video.mp4.part").exists():  # the second video has begun
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _processes_of_session(p.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = sorted(f.name for f in out.iterdir())
    assert _processes_of_session(p.pid) == []
    assert (p.returncode, err, left) == (
        130,
        "fer-video: interrupted (unfinished outputs removed; rerun with --skip-existing to resume)\n",
        sorted([*(p.name for p in output_paths(out, "1").values() if p.suffix != ".eaf"), "batch.csv"]),
    )
    assert list(pd.read_csv(out / "batch.csv")["status"]) == ["ok"]
