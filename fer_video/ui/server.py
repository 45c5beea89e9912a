"""The web app's server: its options (``fer-video ui --help``), the queue, and ``launch``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import gradio as gr

from fer_video.errors import FerVideoError
from fer_video.ui.controls import session_id
from fer_video.ui.jobs import FerVideoUI, UIConfig
from fer_video.ui.memory import limit_arenas
from fer_video.ui.page import CSS, I18N, build_demo


def launch(
    app: FerVideoUI,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> gr.Blocks:
    """Build the page, queue its jobs (one annotation at a time, at most ``max_queue`` waiting: more are refused
    with "queue is full, try again"), and serve it (``block=False`` returns once it is up)."""
    app.config.work_dir.mkdir(parents=True, exist_ok=True)
    app.cleanup_jobs()
    blocks = build(app)
    blocks.queue(default_concurrency_limit=1, max_size=app.config.max_queue)
    blocks.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=not block,
        quiet=quiet,
        max_file_size=f"{int(app.config.max_upload_mb)}mb",
        allowed_paths=[str(app.config.work_dir)],
        theme=gr.themes.Soft(),
        css=CSS,
        i18n=gr.I18n(**I18N),
        footer_links=["api", "gradio"],
    )
    return blocks


def build(app: FerVideoUI) -> gr.Blocks:
    """The page, and what a session's end does: a closed (or reloaded) tab, or a script's client that goes away,
    stops its heartbeat, and Gradio runs the page's ``unload`` event, which cancels that session's running job
    like its Cancel button (Gradio itself only drops the job's result: the annotation would run to the end)."""
    blocks = build_demo(app)

    def on_close(request: gr.Request) -> None:
        app.request_cancel(session_id(request))

    with blocks:
        blocks.unload(on_close)
    return blocks


def build_parser() -> argparse.ArgumentParser:
    d = UIConfig()
    p = argparse.ArgumentParser(prog="fer-video ui", description="Start the fer-video web app (Gradio).")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio share link (off by default)")
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=d.max_upload_mb,
        help=f"largest accepted upload in MB (default {d.max_upload_mb:g})",
    )
    p.add_argument(
        "--max-duration-s",
        type=float,
        default=d.max_duration_s,
        help=f"longest accepted video in seconds (default {d.max_duration_s:g})",
    )
    p.add_argument(
        "--max-batch-files",
        type=int,
        default=d.max_batch_files,
        help=f"most files in one batch (default {d.max_batch_files})",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help=f"most jobs waiting; more are refused with 'busy, try again' (default {d.max_queue})",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=d.work_dir,
        help=f"where job folders and the example clip live (default {d.work_dir})",
    )
    p.add_argument(
        "--keep-hours",
        type=float,
        default=d.keep_jobs_s / 3600,
        help=f"delete job folders older than this (default {d.keep_jobs_s / 3600:g})",
    )
    p.add_argument("--weights", default=None, help="model .pt with its .json beside it (default: weights/)")
    p.add_argument("--device", default=d.device, help="default device: auto, cpu, cuda, cuda:N (default auto)")
    p.add_argument("--no-example", action="store_true", help="do not make the bundled example clip")
    return p


def config_from_args(args: argparse.Namespace) -> UIConfig:
    positive = (args.max_upload_mb, args.max_duration_s, args.max_batch_files, args.keep_hours, args.max_queue)
    if min(positive) <= 0 or args.max_batch_files < 1 or args.max_queue < 1:
        raise SystemExit("fer-video ui: error: limits must be positive")
    return UIConfig(
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration_s,
        max_batch_files=args.max_batch_files,
        max_queue=args.max_queue,
        work_dir=args.work_dir,
        keep_jobs_s=args.keep_hours * 3600,
        weights=args.weights,
        device=args.device,
        examples=not args.no_example,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_arenas()  # before the models and the server's threads allocate anything
    global demo
    app = FerVideoUI(config_from_args(args))
    try:  # load the models now: a missing or broken --weights stops the start-up, not every job
        app.models(app.settings())
    except FerVideoError as exc:
        raise SystemExit(f"fer-video ui: error: {exc}") from None
    demo = launch(app, args.host, args.port, args.share, block=False)
    _serve_forever(demo)
    return 0


def _serve_forever(blocks: gr.Blocks) -> None:
    """Block like ``launch()`` does, after ``demo`` has been set (``gradio ui/app.py`` looks it up)."""
    try:
        blocks.block_thread()
    except (KeyboardInterrupt, OSError):
        blocks.close()


def _module_demo() -> gr.Blocks:
    """The ``demo`` that ``gradio ui/app.py`` reloads (default limits; FER_VIDEO_WEIGHTS honoured)."""
    return build(FerVideoUI(UIConfig()))


def __getattr__(name: str) -> Any:
    # ``demo`` is built on first use, so importing this module (the tests, ``fer-video ui``) stays cheap
    if name == "demo":
        global demo
        demo = _module_demo()
        return demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # python -m fer_video.ui.server
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(main())
