"""The Video tab: one upload -> annotated video, downloads, emotion plot and per-face table; and the same job
as the app's one public API endpoint, ``/annotate`` (upload in; annotated MP4, timeline CSV, summary JSON out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import gradio as gr
import pandas as pd

from fer_video.draw import COLOURS
from fer_video.errors import Cancelled
from fer_video.ui.controls import (
    cancel_handler,
    error_status,
    frames_progress,
    session_id,
    settings_controls,
    user_errors,
)
from fer_video.ui.jobs import AnnotateOutput, FerVideoUI, colour_map, limits
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
                video_out = gr.Video(label="Annotated video", interactive=False, height=320, elem_id="video-out")
                status = gr.Markdown("", elem_id="fer-status")
                with gr.Row():
                    csv_btn = gr.DownloadButton("Timeline CSV", visible=False, elem_id="dl-csv", size="sm")
                    json_btn = gr.DownloadButton("Summary JSON", visible=False, elem_id="dl-json", size="sm")
                    mp4_btn = gr.DownloadButton("Annotated MP4", visible=False, elem_id="dl-mp4", size="sm")
                    png_btn = gr.DownloadButton("Timeline PNG", visible=False, elem_id="dl-png", size="sm")
        with gr.Row():
            face_pick = gr.Dropdown([], label="Face", scale=1, interactive=True, elem_id="face-pick")
            plot = emotion_plot()
        table = gr.Dataframe(label="Per face: share of time per emotion (%)", interactive=False, elem_id="face-table")
        with gr.Row():
            episodes = gr.Dataframe(
                label="Episodes: per face, the stretches of one emotion", interactive=False, elem_id="episodes-table"
            )
        episodes_btn = gr.DownloadButton("Episodes CSV", visible=False, elem_id="dl-episodes", size="sm")
        plot_data = gr.State(None)
        results = [
            *(video_out, status, face_pick, plot, table, csv_btn, json_btn, mp4_btn, png_btn, plot_data),
            *(episodes, episodes_btn),
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
        face_pick.change(on_face, [face_pick, plot_data], [plot], queue=False, api_visibility="private")
        api_endpoint(app, controls)


def emotion_plot() -> gr.LinePlot:
    """The emotion-over-time plot, created empty with ``None``.

    The browser builds the chart (axis types, the legend's classes, the tooltip's fields) from the first
    value it is given and afterwards only swaps the data in; an empty DataFrame would fix both axes as
    categories, so the plot starts with no value and every update is ``plot_value``."""
    return gr.LinePlot(
        None,
        x="time_s",
        y="probability",
        color="emotion",
        title="Emotion over time",
        x_title="time (s)",
        y_title="probability (smoothed)",
        color_title="emotion",
        y_lim=[0, 1],
        tooltip="all",
        height=300,
        color_map=colour_map(list(COLOURS)),
        scale=4,
        elem_id="emotion-plot",
    )


def plot_value(data: pd.DataFrame | None, face: str | None) -> pd.DataFrame | None:
    """One face's points with float ``time_s``/``probability`` (quantitative axes), or None: no plot."""
    if data is None or not face:
        return None
    shown = data[data["face"] == face]
    if shown.empty:
        return None
    return shown.astype({"time_s": float, "probability": float, "emotion": str, "face": str}).reset_index(drop=True)


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
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio's idiom)
    ):
        yield cleared("Checking the video…")
        try:
            with user_errors(), app.job_cancel(session_id(request)) as cancel:
                progress(0, desc="Checking the video")
                out = app.annotate(
                    video,
                    every_n,
                    smooth_s,
                    min_px,
                    dev,
                    cancel=cancel,
                    progress=frames_progress(progress, "Annotating"),
                    min_episode=min_ep,
                    start=start,
                    end=end,
                )
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


def cleared(status: str) -> tuple:
    """Every result emptied (no video, downloads, faces, plot or table), with this status line."""
    hidden = gr.DownloadButton(value=None, visible=False)
    no_faces = gr.Dropdown(choices=[], value=None)
    return None, status, no_faces, None, None, hidden, hidden, hidden, hidden, None, None, hidden


def shown(out: AnnotateOutput) -> tuple:
    r = out.result
    first = out.faces[0] if out.faces else None
    png = r.outputs.get("plot")
    return (
        str(r.outputs["video"]),
        out.message,
        gr.Dropdown(choices=out.faces, value=first),
        plot_value(out.plot, first),
        out.table if not out.table.empty else None,
        gr.DownloadButton(value=str(r.outputs["csv"]), visible=True),
        gr.DownloadButton(value=str(r.outputs["summary"]), visible=True),
        gr.DownloadButton(value=str(r.outputs["video"]), visible=True),
        gr.DownloadButton(value=str(png), visible=True) if png and png.is_file() else gr.DownloadButton(visible=False),
        out.plot,
        out.episodes if not out.episodes.empty else None,
        gr.DownloadButton(value=str(r.outputs["episodes"]), visible=True),
    )


def on_face(face: str | None, data: pd.DataFrame | None) -> pd.DataFrame | None:
    """The plot of the face picked (all faces' data is kept in a ``gr.State``)."""
    return plot_value(data, face)


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
        video, detect_every, smoothing, min_face, min_episode, start, end, device, request: gr.Request
    ) -> tuple[str, str, str]:
        with app.job_cancel(session_id(request)) as cancel:

            def work() -> AnnotateOutput:
                with user_errors():
                    research = {"min_episode": min_episode, "start": start, "end": end}
                    return app.annotate(video, detect_every, smoothing, min_face, device, cancel=cancel, **research)

            r = (await in_thread(work, cancel)).result
        return str(r.outputs["video"]), str(r.outputs["csv"]), str(r.outputs["summary"])

    return annotate
