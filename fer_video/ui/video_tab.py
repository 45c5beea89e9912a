"""The Video tab: one upload -> annotated video, downloads, emotion plot and per-face table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr
import pandas as pd

from fer_video.draw import COLOURS
from fer_video.errors import Cancelled
from fer_video.ui.controls import cancel_handler, frames_progress, session_id, settings_controls, user_errors
from fer_video.ui.jobs import PLOT_COLUMNS, AnnotateOutput, FerVideoUI, colour_map, limits


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
                        elem_id="examples",
                    )
            with gr.Column(scale=1):
                video_out = gr.Video(label="Annotated video", interactive=False, height=320, elem_id="video-out")
                status = gr.Markdown("", elem_id="fer-status")
                with gr.Row():
                    csv_btn = gr.DownloadButton("Timeline CSV", visible=False, elem_id="dl-csv", size="sm")
                    json_btn = gr.DownloadButton("Summary JSON", visible=False, elem_id="dl-json", size="sm")
                    mp4_btn = gr.DownloadButton("Annotated MP4", visible=False, elem_id="dl-mp4", size="sm")
        with gr.Row():
            face_pick = gr.Dropdown([], label="Face", scale=1, interactive=True, elem_id="face-pick")
            plot = gr.LinePlot(
                pd.DataFrame(columns=PLOT_COLUMNS),
                x="time_s",
                y="probability",
                color="emotion",
                title="Emotion over time",
                x_title="time (s)",
                y_title="probability (smoothed)",
                y_lim=[0, 1],
                tooltip="all",
                height=300,
                color_map=colour_map(list(COLOURS)),
                scale=4,
                elem_id="emotion-plot",
            )
        table = gr.Dataframe(label="Per face: share of time per emotion (%)", interactive=False, elem_id="face-table")
        with gr.Row():
            episodes = gr.Dataframe(
                label="Episodes: per face, the stretches of one emotion", interactive=False, elem_id="episodes-table"
            )
        episodes_btn = gr.DownloadButton("Episodes CSV", visible=False, elem_id="dl-episodes", size="sm")
        plot_data = gr.State(None)

        on_annotate = annotate_handler(app)
        job = run.click(
            on_annotate,
            [video_in, *controls],
            [video_out, status, face_pick, plot, table, csv_btn, json_btn, mp4_btn, plot_data, episodes, episodes_btn],
            concurrency_limit=1,
            concurrency_id="annotate",
            api_name="annotate",
            show_progress_on=[video_out],
        )

        stop.click(cancel_handler(app), None, [status], cancels=[job], queue=False, api_visibility="private")

        face_pick.change(on_face, [face_pick, plot_data], [plot], queue=False, api_visibility="private")


def annotate_handler(app: FerVideoUI) -> Callable[..., tuple]:
    """The Annotate button's handler: the job through ``app.annotate``, its result mapped onto the outputs."""

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
        with user_errors(), app.job_cancel(session_id(request)) as cancel:
            progress(0, desc="Checking the video")
            try:
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
                return _cancelled()
        return _shown(out)

    return on_annotate


def _cancelled() -> tuple:
    hidden = gr.DownloadButton(visible=False)
    no_faces = gr.Dropdown(choices=[], value=None)
    return None, "Cancelled: no files were kept.", no_faces, None, None, hidden, hidden, hidden, None, None, hidden


def _shown(out: AnnotateOutput) -> tuple:
    r = out.result
    first = out.faces[0] if out.faces else None
    shown = out.plot[out.plot["face"] == first] if first else out.plot
    return (
        str(r.outputs["video"]),
        out.message,
        gr.Dropdown(choices=out.faces, value=first),
        shown,
        out.table,
        gr.DownloadButton(value=str(r.outputs["csv"]), visible=True),
        gr.DownloadButton(value=str(r.outputs["summary"]), visible=True),
        gr.DownloadButton(value=str(r.outputs["video"]), visible=True),
        out.plot,
        out.episodes,
        gr.DownloadButton(value=str(r.outputs["episodes"]), visible=True),
    )


def on_face(face: str | None, data: pd.DataFrame | None) -> pd.DataFrame | None:
    """The plot of the face picked (all faces' data is kept in a ``gr.State``)."""
    if data is None or not face:
        return None
    return data[data["face"] == face]
