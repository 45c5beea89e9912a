"""The Batch tab: several uploads -> a results table and one zip."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import gradio as gr

from fer_video.errors import Cancelled
from fer_video.ui.controls import cancel_handler, error_status, named, session_id, settings_controls, user_errors
from fer_video.ui.jobs import BatchProgress, FerVideoUI, limits


def build(app: FerVideoUI, devices: list[str]) -> None:
    """Render the tab and wire its events (inside ``gr.Tabs``)."""
    with gr.Tab("Batch", id="batch"):
        gr.Markdown(
            f"Annotate several videos at once (up to {app.config.max_batch_files}); one bad file never "
            f"stops the batch. {limits(app.config)}"
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                batch_files = gr.File(
                    label="Videos", file_count="multiple", file_types=["video"], elem_id="batch-files"
                )
                with gr.Accordion("Settings", open=False):
                    controls = settings_controls(devices, app.config.device)
                with gr.Row():
                    b_run = gr.Button("Annotate all", variant="primary", elem_id="batch-run")
                    b_stop = gr.Button("Cancel", variant="stop")
            with gr.Column():
                b_status = gr.Markdown("", elem_id="batch-status")  # also where the batch's progress bar shows
                b_table = gr.Dataframe(label="Results", interactive=False, visible=False, elem_id="batch-table")
                b_zip = gr.DownloadButton("All outputs (zip)", visible=False, elem_id="batch-zip")

        on_batch = batch_handler(app)
        b_job = b_run.click(
            on_batch,
            [batch_files, *controls],
            [b_status, b_table, b_zip],
            concurrency_limit=1,
            concurrency_id="annotate",
            api_visibility="private",
            show_progress_on=[b_status],
        )
        b_stop.click(cancel_handler(app), None, [b_status], cancels=[b_job], queue=False, api_visibility="private")


def batch_handler(app: FerVideoUI) -> Callable[..., Iterator[tuple]]:
    """The Annotate-all button's handler: earlier results cleared first; an error stays in the status line."""

    def on_batch(
        files,
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
        hidden = gr.DownloadButton(visible=False)
        no_table = gr.Dataframe(value=None, visible=False)  # hidden, not an empty grid headed "1 2 3"
        yield "Annotating…", no_table, hidden
        try:
            with user_errors(), app.job_cancel(session_id(request)) as cancel:
                settings = named((every_n, smooth_s, min_px, min_ep, start, end, dev, tta))
                out = app.batch(files, cancel=cancel, progress=batch_progress(progress), **settings)
        except Cancelled:
            gr.Info("Batch cancelled.")
            yield "Cancelled: no files were kept.", no_table, hidden
            return
        except gr.Error as err:
            gr.Warning(err.message, title="Cannot process these videos")
            yield error_status(err.message, "these videos"), no_table, hidden
            return
        table = gr.Dataframe(value=out.table, visible=True)
        yield out.message, table, gr.DownloadButton(value=str(out.zip_path), visible=True)

    return on_batch


def batch_progress(progress: gr.Progress) -> Callable[[BatchProgress], None]:
    """One bar for the whole batch: the share of all inputs done, the current video and its frames."""

    def update(b: BatchProgress) -> None:
        desc = f"Video {b.index + 1} of {b.total}: {b.name}"
        if b.frames is not None and b.frames.total:
            desc += f" · frame {b.frames.done}/{b.frames.total}"
        progress(b.fraction, desc=desc)

    return update
