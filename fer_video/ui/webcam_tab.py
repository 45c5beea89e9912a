"""The Webcam tab: the browser's camera, annotated live with a per-session tracker."""

from __future__ import annotations

import gradio as gr

from fer_video.ui.controls import user_errors
from fer_video.ui.jobs import FerVideoUI

CAMERA_UNKNOWN = "Checking for a camera…"
CAMERA_CHECK_JS = """
async () => {
  const other = " Use the Video tab with a recorded clip instead.";
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return "**Camera unavailable:** browsers allow the camera only on pages opened at localhost / 127.0.0.1 " +
           "or over HTTPS." + other;
  }
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    if (!devices.some((d) => d.kind === "videoinput")) {
      return "**No camera found** on this device (or the browser does not expose it)." + other;
    }
  } catch (e) {
    return "**Camera unavailable** (" + e.name + ")." + other;
  }
  return "Camera found. If the picture stays empty, check that the browser may use the camera.";
}
"""


def build(app: FerVideoUI) -> None:
    """Render the tab and wire its events (inside ``gr.Tabs``)."""
    with gr.Tab("Webcam", id="webcam") as webcam_tab:
        gr.Markdown(
            "Live annotation of your camera, in the browser: click the camera box, allow access, "
            "then start recording. Frames are annotated on this machine and not stored."
        )
        cam_msg = gr.Markdown(CAMERA_UNKNOWN, elem_id="webcam-help")
        with gr.Row():
            cam = gr.Image(
                sources=["webcam"],
                streaming=True,
                label="Camera",
                elem_id="cam",
                webcam_options=gr.WebcamOptions(mirror=True),
            )
            cam_out = gr.Image(label="Annotated", interactive=False, elem_id="cam-out")
        cam_state = gr.State(None)

        def on_frame(image, session):
            with user_errors():
                return app.webcam_frame(image, session)

        cam.stream(
            on_frame,
            [cam, cam_state],
            [cam_out, cam_state],
            stream_every=0.25,
            time_limit=600,
            concurrency_limit=2,
            concurrency_id="webcam",
            show_progress="hidden",
            api_visibility="private",
        )
        cam.clear(lambda: (None, None), None, [cam_out, cam_state], queue=False, api_visibility="private")
        # whether a camera exists is only known in the browser: ask it when the tab opens
        webcam_tab.select(None, None, [cam_msg], js=CAMERA_CHECK_JS, queue=False, api_visibility="private")
