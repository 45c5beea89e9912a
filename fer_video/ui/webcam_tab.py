"""The Webcam tab: the browser's camera, annotated live with a per-session tracker."""

from __future__ import annotations

import time

import gradio as gr

from fer_video.ui.controls import user_errors
from fer_video.ui.hooks import CAM_ID, CAM_OUT_ID, CAM_STARTED_ID, CAM_STOPPED_ID
from fer_video.ui.jobs import FerVideoUI, WebcamSession

CAMERA_UNKNOWN = "Checking for a camera…"
STOPPED = "**Stopped.** Press **Start** under the camera to annotate again."
STREAM_EVERY_S = 0.1  # the browser sends a frame at most this often, and only once the last one is answered
CAMERA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}  # enough for faces, cheap to send
RATE_EVERY = 10  # the measured rate is said again every this many frames
#: the tab's camera check (only the browser knows): its message, and the camera row hidden when there is none
CAMERA_CHECK_JS = """
async () => {
  const other = " Use the Video tab with a recorded clip instead.";
  const show = (yes) => ({__type__: "update", visible: yes});
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return ["**Camera unavailable:** browsers allow the camera only on pages opened at localhost / 127.0.0.1 " +
            "or over HTTPS." + other, show(false)];
  }
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    if (!devices.some((d) => d.kind === "videoinput")) {
      return ["**No camera found** on this device (or the browser does not expose it)." + other, show(false)];
    }
  } catch (e) {
    return ["**Camera unavailable** (" + e.name + ")." + other, show(false)];
  }
  return ["Camera found: click the camera box, allow access, then press **Start**.", show(true)];
}
"""


def build(app: FerVideoUI) -> None:
    """Render the tab and wire its events (inside ``gr.Tabs``)."""
    with gr.Tab("Webcam", id="webcam") as webcam_tab:
        gr.Markdown(
            "Live annotation of your camera, in the browser. Frames are annotated on this machine and not "
            "stored. The annotated picture follows the camera a little behind: up to 10 frames a second, fewer "
            "on a busy or slow machine (the rate is shown under it)."
        )
        cam_msg = gr.Markdown(CAMERA_UNKNOWN, elem_id="webcam-help")
        with gr.Row(visible=False, elem_id="cam-row") as cam_row:
            cam = gr.Image(
                sources=["webcam"],
                streaming=True,
                label="Camera",
                elem_id=CAM_ID,
                format="jpeg",
                webcam_options=gr.WebcamOptions(mirror=True, constraints=CAMERA),
                min_width=280,
            )
            cam_out = gr.Image(
                label="Annotated",
                interactive=False,
                elem_id=CAM_OUT_ID,
                format="jpeg",
                buttons=["fullscreen"],  # no share (a local tool) and nothing to download (frames are not stored)
                min_width=280,
            )
        cam_status = gr.Markdown("", elem_id="cam-status")
        cam_state = gr.State(None)
        started = gr.Button("started", visible="hidden", elem_id=CAM_STARTED_ID)  # pressed by the page's hook
        stopped = gr.Button("stopped", visible="hidden", elem_id=CAM_STOPPED_ID)

        def on_frame(image, session: WebcamSession | None):
            with user_errors():
                out, session = app.webcam_frame(image, session)
            if session is not None and session.stopped:  # sent before Stop, answered after it: not shown
                return gr.skip(), gr.skip(), gr.skip()
            return out, session, rate_status(session)

        cam.stream(
            on_frame,
            [cam, cam_state],
            [cam_out, cam_state, cam_status],
            stream_every=STREAM_EVERY_S,
            time_limit=600,
            concurrency_limit=2,
            concurrency_id="webcam",
            show_progress="hidden",
            api_visibility="private",
        )
        cam.clear(
            lambda: (None, None, ""), None, [cam_out, cam_state, cam_status], queue=False, api_visibility="private"
        )
        # the page's hook presses these when the stream starts and ends (Stop, or the time limit)
        started.click(on_started, None, [cam_state, cam_status], queue=False, api_visibility="private")
        stopped.click(on_stopped, [cam_state], [cam_out, cam_status], queue=False, api_visibility="private")
        # whether a camera exists is only known in the browser: ask it when the tab opens
        webcam_tab.select(None, None, [cam_msg, cam_row], js=CAMERA_CHECK_JS, queue=False, api_visibility="private")


def on_started() -> tuple[None, str]:
    """A stream starts: a fresh session (tracker, face ids, clock) with its first frame."""
    return None, "**Live**: starting…"


def on_stopped(session: WebcamSession | None) -> tuple[None, str]:
    """The stream ended: the annotated picture cleared and "Stopped" said. The session stays, marked stopped, so
    that frames still on their way are dropped (the same object their handlers hold), until the next Start."""
    if session is not None:
        session.stopped = True
    return None, STOPPED


def rate_status(session: WebcamSession | None, now: float | None = None):
    """ "Live" with the annotated frames per second so far, said again every ``RATE_EVERY`` frames (in between
    the status line is left as it is)."""
    if session is None or session.index % RATE_EVERY != 3:
        return gr.skip()
    elapsed = (time.monotonic() if now is None else now) - session.start
    rate = session.index / elapsed if elapsed > 0 else 0.0
    return f"**Live**: {rate:.1f} annotated frames a second (the camera's own preview runs ahead of them)."
