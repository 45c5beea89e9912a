"""Several users of one web app at once, through Gradio's own client against a started app (real MTCNN, the
random-init test model): jobs submitted at the same moment each get their own outputs, a full queue says so at
once, and a cancelled job (the client's ``job.cancel()``, or a client that goes away like a closed tab) stops,
leaves no folder, and lets the next job run. The app is always stopped, also when a test fails."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from pathlib import Path

import pytest
from media import small
from test_ui_api import HeldUI, running_app

from fer_video.timeline import read_timeline
from fer_video.ui.app import FerVideoUI, UIConfig

gradio_client = pytest.importorskip("gradio_client")
LENGTHS = (1.0, 1.5, 2.0, 2.5)  # seconds at 10 fps: 10, 15, 20, 25 frames, so every result tells its input


class RecordingUI(FerVideoUI):
    """The app, remembering every job folder it makes (to check what is left of a cancelled one)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[Path] = []
        self.job_made = threading.Event()

    def new_job(self) -> Path:
        job = super().new_job()
        self.jobs.append(job)
        self.job_made.set()
        return job


@pytest.fixture(scope="module")
def clips_by_length(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("load-clips")
    return [small(folder / f"clip{i}.mp4", seconds=s) for i, s in enumerate(LENGTHS)]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    return small(tmp_path_factory.mktemp("load-long") / "long.mp4", seconds=40.0)  # 400 frames: several seconds


def _config(tmp_path: Path, fast_settings, **limits) -> UIConfig:
    return UIConfig(work_dir=tmp_path / "work", weights=fast_settings.weights, device="cpu", examples=False, **limits)


def _client(url: str, tmp_path: Path, i: int):
    return gradio_client.Client(url, verbose=False, download_files=str(tmp_path / f"downloads-{i}"))


def test_four_clients_at_once_each_get_their_own_outputs(tmp_path, fast_settings, models, clips_by_length):
    from gradio_client import handle_file

    app = RecordingUI(_config(tmp_path, fast_settings), load=lambda settings: models)
    with running_app(app) as (_, url):
        clients = [_client(url, tmp_path, i) for i in range(len(clips_by_length))]
        start = threading.Barrier(len(clients))

        def submit(i: int):
            start.wait()
            return clients[i].predict(handle_file(str(clips_by_length[i])), detect_every=5, api_name="/annotate")

        with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
            results = list(pool.map(submit, range(len(clients)), timeout=240))
    for clip, seconds, (video, timeline_csv, summary_json) in zip(clips_by_length, LENGTHS, results, strict=True):
        frames = int(seconds * 10)
        summary = json.loads(Path(summary_json).read_text())
        assert summary["input"] == clip.name and summary["frames"] == frames
        assert read_timeline(Path(timeline_csv))["frame"].nunique() == frames
        assert Path(video).stat().st_size > 0
    assert len(set(app.jobs)) == len(clips_by_length)  # one folder per job


def test_a_full_queue_refuses_the_next_client_at_once(tmp_path, fast_settings, models, clips_by_length):
    from gradio_client import handle_file

    app = HeldUI(_config(tmp_path, fast_settings, max_queue=2), load=lambda settings: models)
    clip = handle_file(str(clips_by_length[0]))
    with running_app(app) as (_, url):
        clients = [_client(url, tmp_path, i) for i in range(4)]
        try:
            jobs = [clients[0].submit(clip, api_name="/annotate")]
            assert app.started.wait(30)
            jobs += [c.submit(clip, api_name="/annotate") for c in clients[1:3]]
            deadline = time.time() + 30
            while any(j.status().code.name != "IN_QUEUE" for j in jobs[1:]) and time.time() < deadline:
                time.sleep(0.2)
            t = time.monotonic()
            with pytest.raises(gradio_client.utils.QueueError, match="(?i)queue is full.*try again"):
                clients[3].predict(clip, api_name="/annotate")
            assert time.monotonic() - t < 10  # refused, not left hanging
        finally:
            app.release.set()
        for job in jobs:
            with pytest.raises(gradio_client.exceptions.AppError, match="released"):
                job.result(timeout=60)


def _gone_within(path: Path, seconds: float) -> float | None:
    """How long ``path`` took to disappear (None: still there after ``seconds``)."""
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        if not path.exists():
            return time.monotonic() - t
        time.sleep(0.05)
    return None


def _close_tab(client) -> None:
    """What a browser does when its tab is closed: the session's heartbeat connection (an event stream the page
    keeps open) goes away."""
    import httpx

    url = client.heartbeat_url.format(session_hash=client.session_hash)
    with httpx.stream("GET", url, timeout=10) as response:
        next(response.iter_lines())  # the first "ALIVE": the connection is up


@pytest.mark.parametrize("how", ["job.cancel()", "closed tab"])
def test_a_cancelled_job_stops_leaves_nothing_and_the_next_one_runs(
    how, tmp_path, fast_settings, models, long_clip, clips_by_length
):
    from gradio_client import handle_file

    app = RecordingUI(_config(tmp_path, fast_settings), load=lambda settings: models)
    with running_app(app) as (_, url):
        leaving, next_user = _client(url, tmp_path, 0), _client(url, tmp_path, 1)
        long_job = leaving.submit(handle_file(str(long_clip)), detect_every=5, api_name="/annotate")
        assert app.job_made.wait(60)
        first = app.jobs[0]
        waiting = next_user.submit(handle_file(str(clips_by_length[1])), detect_every=5, api_name="/annotate")
        time.sleep(0.5)  # the long job is under way
        if how == "job.cancel()":
            long_job.cancel()
        else:
            _close_tab(leaving)
        took = _gone_within(first, 15)
        assert took is not None, f"{how}: the job folder is still there"
        _, timeline_csv, summary_json = waiting.result(timeout=120)
    assert json.loads(Path(summary_json).read_text())["frames"] == 15
    assert read_timeline(Path(timeline_csv))["frame"].nunique() == 15
    assert [p.name for p in app.jobs_dir.iterdir()] == [app.jobs[1].name]  # the cancelled job's folder is gone


@pytest.mark.browser
def test_closing_the_browser_tab_cancels_its_job(tmp_path, fast_settings, models, long_clip):
    """The real thing in headless Chromium: Annotate pressed, the tab closed while the job runs."""
    from test_ui_e2e import CHROMIUM, CHROMIUM_ARGS, _skip_reason, sync_playwright

    if _skip_reason():
        pytest.skip(_skip_reason())
    app = RecordingUI(_config(tmp_path, fast_settings), load=lambda settings: models)
    with running_app(app) as (_, url), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            page.locator("#video-in input[type=file]").set_input_files(str(long_clip))
            page.locator("#video-in video").wait_for()
            page.locator("#annotate").click()
            assert app.job_made.wait(60)
            time.sleep(0.5)
            page.close()
            assert _gone_within(app.jobs[0], 15) is not None, "the closed tab's job folder is still there"
        finally:
            browser.close()


def test_one_copy_of_the_models_whatever_the_device_is_called(tmp_path, fast_settings):
    loaded: list[str] = []
    app = FerVideoUI(_config(tmp_path, fast_settings), load=lambda settings: loaded.append(settings.device) or object())
    first = app.models(app.settings(device="cpu"))
    assert all(app.models(app.settings(device=name)) is first for name in ("CPU", " cpu "))
    assert loaded == ["cpu"]
