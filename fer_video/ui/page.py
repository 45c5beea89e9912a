"""The page: title and the three tabs, each built by its own module."""

from __future__ import annotations

import gradio as gr

from fer_video.ui import batch_tab, hooks, video_tab, webcam_tab
from fer_video.ui.jobs import FerVideoUI, log, make_example

CSS = (
    """
#fer-title h1 {margin-bottom: 0}
#fer-status {min-height: 2.5em}
#batch-status {min-height: 4em}
/* the webcam's Start/Stop button under the picture, not over it (on a phone it would cover the face) */
#cam .button-wrap {position: static; transform: none; margin: 8px auto 0; width: fit-content}
#cam .wrap {height: auto}
"""
    + hooks.CSS
)
#: the webcam's button says Start, not Record: nothing is stored (Gradio's own texts, English pages)
I18N = {"en": {"audio.record": "Start"}}


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
        demo.load(None, None, None, js=hooks.PAGE_JS, queue=False, api_visibility="private")
    return demo
