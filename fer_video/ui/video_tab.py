"""The Video tab: one upload -> annotated video, downloads, emotion plot and per-face table; and the same job
as the app's one public API endpoint, ``/annotate`` (upload in; annotated MP4, timeline CSV, summary JSON out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import gradio as gr

from fer_video.errors import Cancelled
from fer_video.ui.controls import (
    cancel_handler,
    error_status,
    frames_progress,
    named,
    session_id,
    settings_controls,
    user_errors,
)
from fer_video.ui.hooks import OFFSET_ID, VIDEO_ID
from fer_video.ui.jobs import AnnotateOutput, FerVideoUI, limits
from fer_video.ui.results_view import (
    VIEW_HELP,
    cleared,
    emotion_plot,
    on_face,
    on_row,
    on_show_all,
    shown,
)
from fer_video.ui.tasks import in_thread

#: the API endpoint scripts call (``Client(url).predict(handle_file(path), api_name="/annotate")``)
API_NAME = "annotate"


def build(app: FerVideoUI, devices: list[str], example: Path | None) -> None:
    """Render the tab and wire its events (inside ``gr.Tabs``)."""
    with gr.Tab("Video", id="video"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                video_in = gr.Video(label="Video", sources=["upload"], height=320, elem_id="video-in")
                gr.Markdown(limits(app.config))
                with gr.Accordion("Settings", open=False):
                    controls = settings_controls(devices, app.config.device)
                with gr.Row():
                    run = gr.Button("Annotate", variant="primary", elem_id="annotate")
                    stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
                if example is not None:
                    gr.Examples(
                        [[str(example)]],
                        inputs=[video_in],
                        label="Example (synthetic clip)",
                        example_labels=["Use the example clip (8 s, synthetic faces)"],
                        elem_id="examples",
                        api_visibility="private",
                    )
            with gr.Column(scale=1):
                video_out = gr.Video(label="Annotated video", interactive=False, height=320, elem_id=VIDEO_ID)
                status = gr.Markdown("", elem_id="fer-status")
                with gr.Row():
                    csv_btn = gr.DownloadButton("Timeline CSV", visible=False, elem_id="dl-csv", size="sm")
                    json_btn = gr.DownloadButton("Summary JSON", visible=False, elem_id="dl-json", size="sm")
                    mp4_btn = gr.DownloadButton("Annotated MP4", visible=False, elem_id="dl-mp4", size="sm")
                    png_btn = gr.DownloadButton("Timeline PNG", visible=False, elem_id="dl-png", size="sm")
        with gr.Column(visible=False, elem_id="results") as results_box:
            gr.Markdown(VIEW_HELP, elem_id="view-help")
            with gr.Row():
                with gr.Column(scale=1, min_width=200):
                    face_pick = gr.Dropdown([], label="Face", interactive=True, elem_id="face-pick")
                    show_all = gr.Checkbox(False, label="Show brief faces", elem_id="show-all", visible=False)
                plot = emotion_plot()
            table = gr.Dataframe(
                label="Per face (most frames first): share of time per emotion (%). Click a row to plot that face.",
                interactive=False,
                elem_id="face-table",
            )
            episodes = gr.Dataframe(
                label="Episodes: per face, the stretches of one emotion", interactive=False, elem_id="episodes-table"
            )
            episodes_btn = gr.DownloadButton("Episodes CSV", visible=False, elem_id="dl-episodes", size="sm")
        offset = gr.Number(0.0, visible="hidden", elem_id=OFFSET_ID)
        run_state = gr.State(None)  # the last result: RunView
        results = [
            *(video_out, status, face_pick, plot, table, csv_btn, json_btn, mp4_btn, png_btn, run_state),
            *(episodes, episodes_btn, results_box, show_all, offset),
        ]

        job = run.click(
            annotate_handler(app),
            [video_in, *controls],
            results,
            concurrency_limit=1,
            concurrency_id="annotate",
            api_visibility="private",
            show_progress_on=[video_out],
        )
        stop.click(cancel_handler(app), None, [status], cancels=[job], queue=False, api_visibility="private")
        face_pick.change(on_face, [face_pick, run_state], [plot], queue=False, api_visibility="private")
        show_all.change(
            on_show_all, [show_all, run_state, face_pick], [face_pick, table], queue=False, api_visibility="private"
        )
        table.select(on_row, [run_state, show_all], [face_pick], queue=False, api_visibility="private")
        api_endpoint(app, controls)


def annotate_handler(app: FerVideoUI) -> Callable[..., Iterator[tuple]]:
    """The Annotate button's handler: earlier results cleared first, then the job through ``app.annotate``;
    an error clears the results too and stays in the status line until the next action."""

    def on_annotate(
        video,
        every_n,
        smooth_s,
        min_px,
        min_ep,
        start,
        end,
        dev,
        tta,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio's idiom)
    ):
        yield cleared("Checking the video…")
        try:
            with user_errors(), app.job_cancel(session_id(request)) as cancel:
                progress(0, desc="Checking the video")
                settings = named((every_n, smooth_s, min_px, min_ep, start, end, dev, tta))
                out = app.annotate(video, cancel=cancel, progress=frames_progress(progress, "Annotating"), **settings)
        except Cancelled:
            gr.Info("Job cancelled.")
            yield cleared("Cancelled: no files were kept.")
            return
        except gr.Error as err:
            gr.Warning(err.message, title="Cannot process this video")
            yield cleared(error_status(err.message))
            return
        yield shown(out)

    return on_annotate


def api_endpoint(app: FerVideoUI, controls: list[gr.components.Component]) -> None:
    """``/annotate`` for scripts: a video file and the tab's settings (same defaults) in; the annotated MP4,
    the timeline CSV and the summary JSON out. Errors reach the client as ``gr.Error`` with the tab's
    one-line messages. Hidden components: nothing of it shows on the page."""
    video = gr.File(label="video", file_types=["video"], visible=False)
    outputs = [
        gr.Video(label="annotated video", visible=False),
        gr.File(label="timeline CSV", visible=False),
        gr.File(label="summary JSON", visible=False),
    ]
    trigger = gr.Button(visible=False)
    trigger.click(
        api_handler(app),
        [video, *controls],
        outputs,
        api_name=API_NAME,
        concurrency_limit=1,
        concurrency_id="annotate",
    )


def api_handler(app: FerVideoUI) -> Callable[..., Awaitable[tuple[str, str, str]]]:
    """``/annotate``'s handler: async, so that the client's ``job.cancel()`` (and a closed session, through the
    server's unload hook) stops the job and removes its folder (``fer_video.ui.tasks``)."""

    async def annotate(
        video, detect_every, smoothing, min_face, min_episode, start, end, device, tta, request: gr.Request
    ) -> tuple[str, str, str]:
        with app.job_cancel(session_id(request)) as cancel:

            def work() -> AnnotateOutput:
                with user_errors():
                    settings = named((detect_every, smoothing, min_face, min_episode, start, end, device, tta))
                    return app.annotate(video, cancel=cancel, **settings)

            r = (await in_thread(work, cancel)).result
        return str(r.outputs["video"]), str(r.outputs["csv"]), str(r.outputs["summary"])

    return annotate
