"""The ``fer-video`` command: one sub-command per job (annotate, demo, train, evaluate, ui).

Errors are one line on stderr (``fer-video: error: clip.mp4: no video stream``), tracebacks only with
``--debug``. Exit codes: 0 all inputs ok, 1 some input failed (or a job error), 2 usage error, 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM); both remove the unfinished outputs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
from pathlib import Path

from fer_video import __version__
from fer_video.errors import FerVideoError, SettingsError

log = logging.getLogger("fer_video")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``) turned into an exception, so partial outputs are removed as for Ctrl-C."""


def _shown(text: object) -> str:
    """``text`` fit for any terminal: file-name bytes that are not UTF-8 (kept by Python as lone surrogates,
    which a strict stdout cannot encode) become U+FFFD."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _OnSigterm:
    """The SIGTERM handler: raises ``_Terminated`` and remembers that it came (a blocking Ray call turns what a
    signal handler raises into a plain ``KeyboardInterrupt``)."""

    def __init__(self) -> None:
        self.received = False

    def __call__(self, signum, frame) -> None:
        self.received = True
        raise _Terminated()


def _handle_sigterm(handler: _OnSigterm):
    """Install ``handler`` for SIGTERM; returns the previous one (None when not in the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread (e.g. called from the UI): leave signals alone
        return None


def _add_annotate_options(p: argparse.ArgumentParser) -> None:
    from fer_video.options import add_arguments
    from fer_video.types import Settings

    p.add_argument("--out", "-o", default="results", help="output folder (default: results/)")
    add_arguments(p, Settings())
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def _add_ray_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("many cores or machines (Ray)", 'needs Ray: pip install "fer-video[ray]"')
    g.add_argument("--ray", action="store_true", help="run the batch on a local Ray with this machine's cores")
    g.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="run it on a running Ray cluster: auto, HOST:PORT or ray://HOST:10001; --out must be a folder every "
        "node mounts at the same path",
    )
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="Ray workers, each with the models and its share of the cores (default: one per GPU, else per 2 cores)",
    )


def _ray_options(args: argparse.Namespace):
    """The Ray options of ``annotate`` (None: the batch runs in this process); a usage error as a string."""
    wanted = getattr(args, "ray", False) or getattr(args, "ray_address", None)  # the demo has no such options
    workers = getattr(args, "workers", None)
    if workers is not None and not wanted:
        return "--workers needs --ray or --ray-address"
    if not wanted:
        return None
    if workers is not None and workers < 1:
        return "--workers must be 1 or more"
    from fer_video.ray_engine import RayOptions, import_ray

    import_ray()  # the one-line error naming the extra, before any work
    return RayOptions(workers=workers, address=args.ray_address, worker_logs=args.debug)


def command_of(argv: list[str]) -> str:
    """The sub-command named in ``argv`` (the first word that is not an option), or "" when there is none."""
    return next((a for a in argv if not a.startswith("-")), "")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` given, the options of the other heavy sub-commands (train,
    evaluate: their modules import torch) are left out, so ``fer-video --help`` and ``annotate`` start fast."""
    parser = argparse.ArgumentParser(prog="fer-video", description="Facial-expression recognition for videos.")
    parser.add_argument("--version", action="version", version=f"fer-video {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    a = sub.add_parser("annotate", help="annotate videos: files, folders or globs")
    a.add_argument("inputs", nargs="+", help="video files, folders or glob patterns")
    a.add_argument("--recursive", "-r", action="store_true", help="look into sub-folders too")
    a.add_argument("--skip-existing", action="store_true", help="skip inputs whose outputs exist (resume a batch)")
    _add_annotate_options(a)
    _add_ray_options(a)

    d = sub.add_parser("demo", help="make a synthetic demo clip (package-shipped faces) and annotate it")
    _add_annotate_options(d)

    t = sub.add_parser("train", help="train the ResNet18 on FER2013")
    e = sub.add_parser("evaluate", help="evaluate a model on FER2013 (PublicTest by default) or on labelled videos")
    if command in (None, "train"):
        from fer_video.training import run as train

        train.get_args_parser(t)
    if command in (None, "evaluate"):
        from fer_video import evaluate

        evaluate.get_args_parser(e)

    # the app has its own parser (--host, --port, --share, limits; `fer-video ui --help`): main() hands it the rest
    sub.add_parser(
        "ui", help="start the Gradio app (http://127.0.0.1:7860); options: fer-video ui --help", add_help=False
    )
    return parser


def _settings(args: argparse.Namespace):
    from fer_video.options import settings_kwargs
    from fer_video.types import Settings

    return Settings(**settings_kwargs(args))


def _annotate(inputs: list[Path], out: Path, args: argparse.Namespace, batch_csv: bool) -> int:
    from tqdm import tqdm

    from fer_video.batch import check_range, run_batch
    from fer_video.options import flag_of
    from fer_video.stages import load_models

    settings = _settings(args)
    wrong = settings.problems()
    if wrong:
        return _usage("; ".join(f"{flag_of(n)} {why}" for n, why in wrong))
    try:
        check_range(inputs, settings.time_range())  # every input, before any work
    except SettingsError as exc:
        return _usage(str(exc))
    ray = _ray_options(args)
    if isinstance(ray, str):
        return _usage(ray)
    if ray is None:
        try:
            models = load_models(settings)
        except SettingsError as exc:  # e.g. --device: a bad value is a usage error
            return _usage(str(exc))
    else:
        from fer_video.device import resolve_device

        models = None  # each worker loads them, on its own device: only --device's spelling is checked here
        try:
            resolve_device(settings.device, cuda_available=True)
        except ValueError as exc:
            return _usage(f"--device: {exc}")
    files_bar = tqdm(
        total=len(inputs), unit="video", disable=args.quiet or (len(inputs) < 2 and ray is None), position=0
    )
    frame_bar: list = [None]

    def on_start(i: int, path: Path) -> None:
        if frame_bar[0] is not None:
            frame_bar[0].close()
        frame_bar[0] = tqdm(
            total=0,
            unit="frame",
            desc=_shown(path.name[:40]),
            disable=args.quiet,
            leave=len(inputs) < 2,
            position=1 if len(inputs) > 1 else 0,
        )

    def progress(p) -> None:
        bar = frame_bar[0]
        if bar is not None:
            bar.total = p.total or None  # 0: the container does not say
            bar.update(p.done - bar.n)

    def on_done(row) -> None:
        if frame_bar[0] is not None:
            frame_bar[0].close()
            frame_bar[0] = None
        files_bar.update(1)
        if row.status == "failed":
            tqdm.write(_shown(f"fer-video: error: {row.reason}"), file=sys.stderr)
        elif not args.quiet:
            tqdm.write(
                _shown(
                    f"{row.input}: {row.status} {row.reason} ".rstrip()
                    + (f" ({row.frames} frames, {row.faces} faces, {row.seconds}s)" if row.status == "ok" else "")
                )
            )

    rows = run_batch(
        inputs,
        out,
        settings,
        models=models,
        skip_existing=getattr(args, "skip_existing", False),  # the demo has no such option
        batch_csv=batch_csv,
        on_start=on_start,
        on_done=on_done,
        progress=progress,
        engine="local" if ray is None else "ray",
        ray=ray,
    )
    files_bar.close()
    failed = sum(r.status == "failed" for r in rows)
    locked = sum(r.status == "locked" for r in rows)  # another run annotates them and writes their rows
    if not args.quiet:
        print(
            _shown(
                f"{len(rows) - failed - locked}/{len(rows)} ok"
                + (f", {locked} being annotated by another run" if locked else "")
                + f", outputs in {out}"
                + (f", see {out / 'batch.csv'}" if batch_csv else "")
            )
        )
    return EXIT_FAILED if failed else EXIT_OK


def _usage(message: str) -> int:
    print(_shown(f"fer-video: error: {message}"), file=sys.stderr)
    return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    if args.command == "annotate":
        from fer_video.batch import collect_inputs

        inputs = collect_inputs(args.inputs, args.recursive)
        if not inputs:
            return _usage("no video found in " + " ".join(args.inputs))
        several = len(inputs) > 1 or any(Path(s).is_dir() or any(ch in s for ch in "*?[") for s in args.inputs)
        return _annotate(inputs, Path(args.out), args, batch_csv=several)
    if args.command == "demo":
        from fer_video.demo import make_demo_video
        from fer_video.outputs import prepare_output_folder

        out = Path(args.out)
        prepare_output_folder(out)  # a clear error before the clip is made
        clip = make_demo_video(out / "demo.mp4")
        return _annotate([clip], out, args, batch_csv=False)
    if args.command == "train":
        from fer_video.training import run as train

        return train.run(args, "fer-video " + " ".join(shlex.quote(a) for a in args.argv))
    if args.command == "evaluate":
        from fer_video import evaluate

        try:
            return evaluate.run(args)
        except SettingsError as exc:  # option values that cannot work: a usage error, before any work
            return _usage(str(exc))
    if args.command == "ui":
        try:
            import gradio  # noqa: F401
        except ModuleNotFoundError:
            raise FerVideoError("the web app needs Gradio 6: pip install 'fer-video[ui]'") from None
        from fer_video.ui.app import main as ui_main

        return int(ui_main(args.ui_args) or 0)
    return _usage(f"unknown command {args.command!r}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(command_of(argv))
    args, rest = parser.parse_known_args(argv)  # argparse exits with 2 on usage errors
    if args.command == "ui":
        args.ui_args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.argv = argv
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command in {"train", "evaluate"}:
        logging.getLogger().setLevel(logging.INFO)
    sigterm = _OnSigterm()
    previous = _handle_sigterm(sigterm)
    try:
        return _run(args)
    except FerVideoError as exc:
        if args.debug:
            raise
        print(_shown(f"fer-video: error: {exc}"), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, _Terminated) or sigterm.received
        print(
            f"fer-video: {'terminated' if terminated else 'interrupted'}"
            + (
                " (unfinished outputs removed; rerun with --skip-existing to resume)"
                if args.command == "annotate"
                else ""
            ),
            file=sys.stderr,
        )
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
