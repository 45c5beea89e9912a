"""The web app's API for scripts: ``/annotate`` called with Gradio's own client against a started app.

The test starts the app on a free 127.0.0.1 port (random-init test weights, the session's loaded models) and
always stops it when the module is done.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fer_video.errors import InputError
from fer_video.timeline import read_timeline, timeline_columns
from fer_video.ui.app import FerVideoUI, UIConfig, launch

gradio_client = pytest.importorskip("gradio_client")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(app: FerVideoUI) -> Iterator[tuple[object, str]]:
    """(blocks, url) of the app served on a free 127.0.0.1 port, as `fer-video ui` launches it; always closed."""
    port = _free_port()
    blocks = launch(app, "127.0.0.1", port, block=False, quiet=True)
    try:
        yield blocks, f"http://127.0.0.1:{port}/"
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, fast_settings, models):
    config = UIConfig(
        work_dir=tmp_path_factory.mktemp("api-work"), weights=fast_settings.weights, device="cpu", examples=False
    )
    with running_app(FerVideoUI(config, load=lambda settings: models)) as started:
        yield started


@pytest.fixture(scope="module")
def client(served, tmp_path_factory):
    return gradio_client.Client(served[1], verbose=False, download_files=str(tmp_path_factory.mktemp("api-downloads")))


def test_annotate_endpoint_gives_video_csv_and_summary(client, demo_video, models, tmp_path):
    from gradio_client import handle_file

    video, timeline_csv, summary_json = client.predict(handle_file(str(demo_video)), api_name="/annotate")
    assert Path(video).suffix == ".mp4" and Path(video).stat().st_size > 0
    df = read_timeline(Path(timeline_csv))
    assert list(df.columns) == timeline_columns(models.classifier.classes)
    assert df["frame"].nunique() == 20
    summary = json.loads(Path(summary_json).read_text())
    assert summary["input"] == demo_video.name  # the user's file name, not the server's upload path
    assert summary["frames"] == 20 and summary["settings"]["detect_every"] == 8  # the tab's defaults


def test_settings_are_further_inputs(client, demo_video):
    from gradio_client import handle_file

    _, _, summary_json = client.predict(
        handle_file(str(demo_video)), detect_every=5, smoothing=0.0, min_face=20, api_name="/annotate"
    )
    settings = json.loads(Path(summary_json).read_text())["settings"]
    assert (settings["detect_every"], settings["smoothing"], settings["min_face"]) == (5, 0.0, 20)


def test_a_bad_file_gives_the_one_line_error(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "holiday.mp4"
    bad.write_text("this is a text file, not a video\n" * 20)
    with pytest.raises(gradio_client.exceptions.AppError) as err:
        client.predict(handle_file(str(bad)), api_name="/annotate")
    assert "holiday.mp4: not a readable video" in str(err.value)


def test_only_annotate_is_offered_and_the_queue_is_bounded(client, served):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/annotate"] and not api["unnamed_endpoints"]
    assert served[0]._queue.max_size == UIConfig().max_queue == 16


class HeldUI(FerVideoUI):
    """An app whose annotation waits until released (a long job without using the CPU)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.started = threading.Event()

    def annotate(self, *args, **kwargs):
        self.started.set()
        self.release.wait(60)
        raise InputError("released")


def test_a_full_queue_is_refused_with_try_again(tmp_path, fast_settings, models, demo_video):
    from gradio_client import handle_file

    config = UIConfig(work_dir=tmp_path / "work", weights=fast_settings.weights, examples=False, max_queue=1)
    app = HeldUI(config, load=lambda settings: models)
    with running_app(app) as (_, url):
        client = gradio_client.Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        try:
            running = client.submit(handle_file(str(demo_video)), api_name="/annotate")
            assert app.started.wait(30)
            waiting = client.submit(handle_file(str(demo_video)), api_name="/annotate")
            deadline = time.time() + 30
            while waiting.status().code.name != "IN_QUEUE" and time.time() < deadline:
                time.sleep(0.2)
            with pytest.raises(gradio_client.utils.QueueError, match="(?i)queue is full.*try again"):
                client.predict(handle_file(str(demo_video)), api_name="/annotate")
        finally:
            app.release.set()
        for job in (running, waiting):
            with pytest.raises(gradio_client.exceptions.AppError, match="released"):
                job.result(timeout=60)
