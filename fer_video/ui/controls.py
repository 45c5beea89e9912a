"""What the tabs share: library errors as browser messages, progress, and the settings controls (made from
the options table, ``fer_video.options``, like the CLI's flags)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

from fer_video.errors import FerVideoError
from fer_video.options import OPTIONS, Field, Toggle
from fer_video.types import Progress, Settings
from fer_video.ui.jobs import FerVideoUI, fmt_seconds, log

#: the settings the web app shows, in this order (the handlers' and the API's order too): each a row of the
#: options table with a ``ui`` control, and the device picker (its choices are the machine's)
SHOWN = ("detect_every", "smoothing", "min_face", "min_episode", "start", "end", "device", "tta")


@contextmanager
def user_errors() -> Iterator[None]:
    """The one place where library errors become messages in the browser."""
    try:
        yield
    except gr.Error:
        raise
    except FerVideoError as exc:
        raise gr.Error(str(exc), title="Cannot process this video") from None
    except Exception as exc:
        log.exception("unexpected error in the UI")
        raise gr.Error(f"Unexpected error ({exc.__class__.__name__}); see the server log for details.") from exc


def error_status(message: str, what: str = "this video") -> str:
    """The status line after a failed job: the one-line message, kept until the next action."""
    return f"**Cannot process {what}:** {message}"


def session_id(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def frames_progress(progress: gr.Progress, desc: str) -> Callable[[Progress], None]:
    def update(p: Progress) -> None:
        if p.total and p.done:
            eta = p.elapsed_s / p.done * (p.total - p.done)
            progress((p.done, p.total), desc=f"{desc} · about {fmt_seconds(eta)} left", unit="frames")
        else:
            progress((p.done, None), desc=desc, unit="frames")

    return update


def settings_controls(devices: list[str], device: str) -> list[gr.components.Component]:
    """One control per shown option (range, default, label and help from the options table) and the device
    picker, in the order of ``SHOWN``; ``named`` gives their values back by name."""
    defaults = Settings()
    controls: list[gr.components.Component] = []
    for name in SHOWN:
        if name == "device":
            controls.append(gr.Dropdown(devices, value=device if device in devices else "auto", label="Device"))
            continue
        ui = OPTIONS[name].ui
        assert ui is not None, name
        value = getattr(defaults, name)
        if isinstance(ui, Field):
            controls.append(gr.Textbox(value or "", label=ui.label, placeholder=ui.placeholder, info=ui.info))
        elif isinstance(ui, Toggle):
            controls.append(gr.Checkbox(bool(value), label=ui.label, info=ui.info))
        else:
            controls.append(gr.Slider(ui.low, ui.high, value=value, step=ui.step, label=ui.label, info=ui.info))
    return controls


def named(values: tuple[Any, ...]) -> dict[str, Any]:
    """The settings controls' values (in ``SHOWN`` order) as the job handlers' keywords."""
    if len(values) != len(SHOWN):
        raise ValueError(f"expected {len(SHOWN)} settings values, got {len(values)}")
    return dict(zip(SHOWN, values, strict=True))


def cancel_handler(app: FerVideoUI) -> Callable[[gr.Request], str]:
    """The Cancel buttons' handler: stop this browser session's running job."""

    def on_cancel(request: gr.Request):
        app.request_cancel(session_id(request))
        return "Cancelled: no files were kept."

    return on_cancel
