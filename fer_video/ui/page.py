"""The page: title and the three tabs, each built by its own module."""

from __future__ import annotations

import gradio as gr

from fer_video.ui import batch_tab, video_tab, webcam_tab
from fer_video.ui.jobs import FerVideoUI, log, make_example

CSS = """
#fer-title h1 {margin-bottom: 0}
#fer-status {min-height: 2.5em}
"""


def build_demo(app: FerVideoUI) -> gr.Blocks:
    cfg = app.config
    import torch

    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    example = None
    if cfg.examples:
        try:
            example = make_example(cfg.work_dir / "examples")
        except Exception:  # an example is a nicety: the app still starts without it
            log.warning("could not make the example clip", exc_info=True)

    with gr.Blocks(title="fer-video", delete_cache=(1800, int(cfg.keep_jobs_s))) as demo:
        gr.Markdown(
            "# fer-video\nFacial-expression recognition for videos: faces are found, followed and "
            "labelled with one of seven emotions, frame by frame.",
            elem_id="fer-title",
        )
        with gr.Tabs():
            video_tab.build(app, devices, example)
            batch_tab.build(app, devices)
            webcam_tab.build(app)
    return demo
