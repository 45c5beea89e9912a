"""fer-video's Gradio app: annotate a video, a batch of videos, or the live webcam.

Start it with ``fer-video ui``, ``python ui/app.py`` or ``gradio ui/app.py`` (module-level ``demo``).
The parts: ``jobs`` (the handlers, free of Gradio), ``controls`` (what the tabs share), one module per tab
(``video_tab``, ``batch_tab``, ``webcam_tab``), ``page`` (the tabs together) and ``server`` (options, launch).
This module gathers the names callers use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_video.ui import server
from fer_video.ui.controls import user_errors
from fer_video.ui.jobs import (
    AnnotateOutput,
    BatchOutput,
    FerVideoUI,
    UIConfig,
    WebcamSession,
    face_table,
    make_example,
    plot_frame,
    result_message,
    safe_name,
)
from fer_video.ui.page import build_demo
from fer_video.ui.server import build_parser, config_from_args, launch, main

ROOT = Path(__file__).resolve().parent.parent

__all__ = [
    "AnnotateOutput",
    "BatchOutput",
    "FerVideoUI",
    "UIConfig",
    "WebcamSession",
    "build_demo",
    "build_parser",
    "config_from_args",
    "face_table",
    "launch",
    "main",
    "make_example",
    "plot_frame",
    "result_message",
    "safe_name",
    "user_errors",
]


def __getattr__(name: str) -> Any:  # ``demo``: built on first use (``gradio ui/app.py`` looks it up)
    return getattr(server, name)
