"""fer-video's Gradio app: annotate a video, a batch of videos, or the live webcam.

Start it with ``fer-video ui``, ``python ui/app.py`` or ``gradio ui/app.py`` (module-level ``demo``).
Every handler calls the library (``annotate_video``, ``run_batch``, ``FaceAnnotator``); the UI only checks
uploads against its limits, gives each job its own folder, shows progress and turns ``FerVideoError`` into
``gr.Error`` in one place (``user_errors``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python ui/app.py` and `gradio ui/app.py` from a checkout; an installed wheel has this file as fer_video/ui/app.py
if (ROOT / "fer_video").is_dir() and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from fer_video.batch import BatchRow, run_batch, write_batch_csv  # noqa: E402
from fer_video.draw import COLOURS, draw_faces  # noqa: E402
from fer_video.errors import Cancelled, FerVideoError, InputError  # noqa: E402
from fer_video.pipeline import FaceAnnotator, Models, annotate_video, default_weights, load_models  # noqa: E402
from fer_video.timeline import read_timeline  # noqa: E402
from fer_video.types import Frame, Progress, Settings, VideoInfo, VideoResult  # noqa: E402
from fer_video.video import VideoReader  # noqa: E402

DEFAULTS = Settings()  # the library's defaults, read-only: the UI starts from them

log = logging.getLogger("fer_video.ui")

PLOT_POINTS = 400  # time points per face sent to the browser (longer timelines are averaged into bins)
PLOT_COLUMNS = ["time_s", "probability", "emotion", "face"]
EXAMPLE_NAME = "fer-video-demo.mp4"


@dataclass
class UIConfig:
    """What the operator sets with flags: limits, where jobs live, which model."""

    max_upload_mb: float = 500.0
    max_duration_s: float = 600.0
    max_batch_files: int = 20
    work_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "fer-video-ui")
    keep_jobs_s: float = 2 * 3600.0  # job folders older than this are deleted when the next job starts
    weights: str | None = None  # None: $FER_VIDEO_WEIGHTS or the shipped model
    device: str = "auto"
    examples: bool = True  # make the bundled demo clip at start-up


@dataclass
class AnnotateOutput:
    """What one Video-tab job gives back (plain data; the Gradio handler maps it onto components)."""

    result: VideoResult
    job_dir: Path
    message: str
    faces: list[str]  # face ids as shown in the face picker, longest-seen first
    plot: pd.DataFrame  # long format: PLOT_COLUMNS, every face
    table: pd.DataFrame  # one row per face


@dataclass
class BatchOutput:
    rows: list[BatchRow]
    table: pd.DataFrame
    zip_path: Path
    job_dir: Path
    message: str


@dataclass
class WebcamSession:
    """Per-browser-session webcam state (kept in gr.State): the stateful annotator and the stream clock."""

    annotator: FaceAnnotator
    start: float
    index: int = 0


# --------------------------------------------------------------------------------------------- helpers


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


def safe_name(filename: str | Path | None, default: str = "video") -> str:
    """A file stem fit to be a path component: no folders, no dots in front, only ``[A-Za-z0-9._-]``."""
    stem = Path(Path(str(filename or "")).name).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60]
    return stem or default


def _fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


def plot_frame(csv_path: Path, classes: list[str], max_points: int = PLOT_POINTS) -> pd.DataFrame:
    """Long-format smoothed probabilities per face from a timeline CSV; long timelines averaged into bins."""
    df = read_timeline(csv_path)
    df = df.dropna(subset=["face_id"])
    parts = []
    for fid, face in df.groupby("face_id", sort=True):
        face = face[["time_s", *classes]]
        if len(face) > max_points:
            bins = pd.cut(face["time_s"], max_points, labels=False)
            face = face.groupby(bins).mean()
        long = face.melt(id_vars="time_s", value_vars=classes, var_name="emotion", value_name="probability")
        long["face"] = f"face {int(fid)}"
        parts.append(long)
    if not parts:
        return pd.DataFrame(
            {
                "time_s": pd.Series(dtype=float),
                "probability": pd.Series(dtype=float),
                "emotion": pd.Series(dtype=str),
                "face": pd.Series(dtype=str),
            }
        )
    out = pd.concat(parts, ignore_index=True)[PLOT_COLUMNS]
    out["time_s"] = out["time_s"].round(3)
    out["probability"] = out["probability"].round(4)
    return out


def face_table(summary: dict[str, Any], classes: list[str]) -> pd.DataFrame:
    """One row per face: when it was seen, its dominant emotion and the share of time per emotion (%)."""
    rows = []
    for fid, face in summary.get("per_face", {}).items():
        row = {
            "face": f"face {fid}",
            "seen": f"{face['first_s']:.1f}–{face['last_s']:.1f} s",
            "frames": face["frames"],
            "dominant": face["dominant_emotion"],
        }
        row.update({c: round(100 * face["share"].get(c, 0.0), 1) for c in classes})
        rows.append(row)
    return pd.DataFrame(rows, columns=["face", "seen", "frames", "dominant", *classes])


def result_message(r: VideoResult) -> str:
    info = r.info
    head = f"{info.width}×{info.height}, {r.frames} frames ({r.frames / max(info.fps, 1e-9):.1f} s)"
    if not r.faces:
        return (
            f"**No face detected** in this video ({head}). The annotated video and the CSV are still "
            "available; a smaller minimum face size may help with small or distant faces."
        )
    faces = "1 face" if r.faces == 1 else f"{r.faces} faces"
    return f"**{faces}** · dominant emotion **{r.dominant_emotion}** · {head} · processed in {r.seconds:.1f} s"


def colour_map(classes: list[str]) -> dict[str, str]:
    return {c: "#{:02x}{:02x}{:02x}".format(*COLOURS.get(c, (128, 128, 128))) for c in classes}


def make_example(folder: Path) -> Path:
    """The bundled example: fer_video.demo's synthetic clip, made once into ``folder`` (never committed)."""
    from fer_video.demo import make_demo_video

    path = folder / EXAMPLE_NAME
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{uuid.uuid4().hex}.mp4"
        make_demo_video(tmp, width=640, height=360, fps=15.0, seconds=8.0)  # 120 frames: several chunks
        os.replace(tmp, path)
    return path


# ------------------------------------------------------------------------------------------------ the app


class FerVideoUI:
    """The app's state and its handlers, independent of Gradio components (tests call these directly)."""

    def __init__(self, config: UIConfig | None = None, load: Callable[[Settings], Models] = load_models) -> None:
        self.config = config or UIConfig()
        self._load = load
        self._models: dict[tuple[str, str], Models] = {}
        self._models_lock = threading.Lock()
        self._cancels: dict[str, threading.Event] = {}

    # -- models and settings

    def settings(
        self,
        detect_every: float = DEFAULTS.detect_every,
        smoothing: float = DEFAULTS.smoothing,
        min_face: float = DEFAULTS.min_face,
        device: str | None = None,
        **extra: Any,
    ) -> Settings:
        device = device or self.config.device
        settings = Settings(
            weights=self.config.weights,
            device=device,
            detect_every=int(detect_every or DEFAULTS.detect_every),
            smoothing=float(smoothing or 0),
            min_face=int(min_face or DEFAULTS.min_face),
            **extra,
        )
        settings.check()  # SettingsError: shown in the browser like any other FerVideoError
        return settings

    def models(self, settings: Settings) -> Models:
        """Loaded once per (weights, device) and shared by every job and webcam session."""
        weights = str(Path(settings.weights).resolve()) if settings.weights else str(default_weights().resolve())
        key = (weights, settings.device)
        with self._models_lock:
            if key not in self._models:
                self._models[key] = self._load(settings)
            return self._models[key]

    # -- job folders

    @property
    def jobs_dir(self) -> Path:
        return self.config.work_dir / "jobs"

    def new_job(self) -> Path:
        self.cleanup_jobs()
        job = self.jobs_dir / uuid.uuid4().hex
        job.mkdir(parents=True)
        return job

    def cleanup_jobs(self, now: float | None = None) -> list[Path]:
        """Delete job folders last touched more than ``keep_jobs_s`` ago; returns what was removed."""
        now = time.time() if now is None else now
        removed = []
        if not self.jobs_dir.is_dir():
            return removed
        for job in self.jobs_dir.iterdir():
            try:
                if job.is_dir() and now - job.stat().st_mtime > self.config.keep_jobs_s:
                    shutil.rmtree(job, ignore_errors=True)
                    removed.append(job)
            except OSError:
                continue
        return removed

    # -- uploads

    def check_upload(self, path: str | Path | None) -> VideoInfo:
        """Refuse what is not a readable video, or is over the size or duration limit (InputError)."""
        if not path:
            raise InputError("No video: upload or drop a video file first (or click the example).")
        path = Path(path)
        display = path.name
        if not path.is_file():
            raise InputError(f"{display}: the upload is missing; please upload it again")
        size_mb = path.stat().st_size / 1e6
        if size_mb > self.config.max_upload_mb:
            raise InputError(
                f"{display}: file too large ({size_mb:.0f} MB; the limit is {self.config.max_upload_mb:g} MB)"
            )
        with VideoReader(path) as reader:
            info = reader.info
        duration = info.duration_s or (info.frame_count / info.fps if info.fps else 0.0)
        if duration > self.config.max_duration_s:
            raise InputError(
                f"{display}: video too long ({_fmt_seconds(duration)}; the limit is "
                f"{_fmt_seconds(self.config.max_duration_s)})"
            )
        return info

    # -- Video tab

    def annotate(
        self,
        video: str | Path | None,
        detect_every: float = DEFAULTS.detect_every,
        smoothing: float = DEFAULTS.smoothing,
        min_face: float = DEFAULTS.min_face,
        device: str | None = None,
        *,
        progress: Callable[[Progress], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> AnnotateOutput:
        """Check the upload, annotate it into a fresh job folder, and shape the result for display.

        Raises FerVideoError subclasses (``Cancelled`` when ``cancel`` is set; the job folder is removed)."""
        settings = self.settings(detect_every, smoothing, min_face, device)
        info = self.check_upload(video)
        models = self.models(settings)
        job = self.new_job()
        cancel = cancel or threading.Event()
        frame_limit = int(self.config.max_duration_s * (info.fps or 30.0) * 1.05) + 1
        too_long = threading.Event()

        def on_progress(p: Progress) -> None:
            if p.done > frame_limit:  # the container under-reported its duration: stop at the limit
                too_long.set()
                cancel.set()
            if progress is not None:
                progress(p)

        try:
            result = annotate_video(
                video, job, settings, progress=on_progress, cancel=cancel, models=models, name=safe_name(video)
            )
        except BaseException as exc:
            shutil.rmtree(job, ignore_errors=True)
            if isinstance(exc, Cancelled) and too_long.is_set():
                raise InputError(
                    f"{Path(video).name}: video too long (over {_fmt_seconds(self.config.max_duration_s)}, the limit)"
                ) from None
            raise
        classes = models.classifier.classes
        plot = plot_frame(result.outputs["csv"], classes)
        per_face = result.summary.get("per_face", {})
        faces = [f"face {fid}" for fid in sorted(per_face, key=lambda f: -per_face[f]["frames"])]
        return AnnotateOutput(result, job, result_message(result), faces, plot, face_table(result.summary, classes))

    # -- Batch tab

    def batch(
        self,
        files: list[str | Path] | None,
        detect_every: float = DEFAULTS.detect_every,
        smoothing: float = DEFAULTS.smoothing,
        min_face: float = DEFAULTS.min_face,
        device: str | None = None,
        *,
        progress: Callable[[int, int, str, Progress | None], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> BatchOutput:
        """Annotate every file into one job folder; files that fail the checks get a failed row, not an abort."""
        files = [Path(f) for f in (files or [])]
        if not files:
            raise InputError("No videos: add one or more video files first.")
        if len(files) > self.config.max_batch_files:
            raise InputError(f"Too many files ({len(files)}); the limit is {self.config.max_batch_files} per batch.")
        settings = self.settings(detect_every, smoothing, min_face, device)
        models = self.models(settings)
        job = self.new_job()
        inputs_dir, out_dir = job / "inputs", job / "outputs"
        inputs_dir.mkdir()
        rows: list[BatchRow | None] = []
        todo: list[tuple[int, Path]] = []
        used: set[str] = set()
        for i, f in enumerate(files):
            name, k = safe_name(f), 2
            while name.lower() in used:
                name, k = f"{safe_name(f)}-{k}", k + 1
            used.add(name.lower())
            shown = f"{name}{f.suffix.lower()}" if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", f.suffix) else name
            try:
                self.check_upload(f)
            except FerVideoError as exc:
                rows.append(BatchRow(shown, "failed", str(exc).replace(f.name, shown, 1)))
                continue
            local = inputs_dir / shown
            try:
                os.symlink(f.resolve(), local)
            except OSError:
                shutil.copyfile(f, local)
            rows.append(None)
            todo.append((i, local))
        if todo:
            cancel = cancel or threading.Event()
            current = [0]

            def on_start(k: int, path: Path) -> None:
                current[0] = k
                if progress is not None:
                    progress(k, len(todo), path.name, None)

            def on_progress(p: Progress) -> None:
                if progress is not None:
                    progress(current[0], len(todo), todo[current[0]][1].name, p)

            try:
                done = run_batch(
                    [p for _, p in todo],
                    out_dir,
                    settings,
                    models=models,
                    on_start=on_start,
                    progress=on_progress,
                    cancel=cancel,
                )
            except BaseException:
                shutil.rmtree(job, ignore_errors=True)
                raise
            for (i, _), row in zip(todo, done, strict=True):
                row.input = Path(row.input).name
                rows[i] = row
        final = [r for r in rows if r is not None]
        out_dir.mkdir(exist_ok=True)
        write_batch_csv(final, out_dir / "batch.csv")
        zip_path = job / "fer-video-batch.zip"
        with zipfile.ZipFile(zip_path, "w") as zf:
            for p in sorted(out_dir.iterdir()):
                if p.is_file() and not p.name.startswith("."):  # video and PNG are compressed already
                    packed = zipfile.ZIP_STORED if p.suffix in {".mp4", ".png"} else zipfile.ZIP_DEFLATED
                    zf.write(p, p.name, compress_type=packed)
        shutil.rmtree(inputs_dir, ignore_errors=True)
        ok = sum(r.status == "ok" for r in final)
        table = pd.DataFrame([dataclasses.asdict(r) for r in final]).rename(columns={"input": "file"})
        message = f"**{ok} of {len(final)}** videos annotated" + (
            f"; {len(final) - ok} failed (see the reason column)." if ok < len(final) else "."
        )
        return BatchOutput(final, table, zip_path, job, message)

    # -- Webcam tab

    def webcam_frame(
        self, image: Any, session: WebcamSession | None, settings: Settings | None = None
    ) -> tuple[Any, WebcamSession | None]:
        """Annotate one camera frame with the session's own tracker/smoother; returns (image, session)."""
        if image is None:
            return None, session
        if session is None:
            settings = settings or self.settings(1, 0.3, 40)
            session = WebcamSession(FaceAnnotator(self.models(settings), settings), time.monotonic())
        frame = Frame(session.index, time.monotonic() - session.start, image)
        session.index += 1
        result = session.annotator.process([frame])[0]
        classes = session.annotator.models.classifier.classes
        out = draw_faces(image.copy(), result.faces.xyxy, result.faces.face_id, result.smoothed, classes)
        return out, session

    # -- cancel registry (one running job per browser session)

    @contextmanager
    def job_cancel(self, session: str | None) -> Iterator[threading.Event]:
        event = threading.Event()
        if session:
            self._cancels[session] = event
        try:
            yield event
        finally:
            if session and self._cancels.get(session) is event:
                del self._cancels[session]

    def request_cancel(self, session: str | None) -> bool:
        event = self._cancels.get(session or "")
        if event is None:
            return False
        event.set()
        return True


# ------------------------------------------------------------------------------------------------ the page


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None) if request is not None else None


def _frames_progress(progress: gr.Progress, desc: str) -> Callable[[Progress], None]:
    def update(p: Progress) -> None:
        if p.total and p.done:
            eta = p.elapsed_s / p.done * (p.total - p.done)
            progress((p.done, p.total), desc=f"{desc} · about {_fmt_seconds(eta)} left", unit="frames")
        else:
            progress((p.done, None), desc=desc, unit="frames")

    return update


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
    limits = (
        f"Up to {cfg.max_upload_mb:g} MB and {_fmt_seconds(cfg.max_duration_s)} per video. Files are "
        "processed on this machine and deleted after a while."
    )

    with gr.Blocks(title="fer-video", delete_cache=(1800, int(cfg.keep_jobs_s))) as demo:
        gr.Markdown(
            "# fer-video\nFacial-expression recognition for videos: faces are found, followed and "
            "labelled with one of seven emotions, frame by frame.",
            elem_id="fer-title",
        )
        with gr.Tabs():
            # ---------------------------------------------------------------- Video
            with gr.Tab("Video", id="video"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1):
                        video_in = gr.Video(label="Video", sources=["upload"], height=320, elem_id="video-in")
                        gr.Markdown(limits)
                        with gr.Accordion("Settings", open=False):
                            every = gr.Slider(
                                1,
                                10,
                                value=DEFAULTS.detect_every,
                                step=1,
                                label="Detect faces every N frames",
                                info="Higher is faster; the tracker carries boxes in between.",
                            )
                            smoothing = gr.Slider(
                                0,
                                2,
                                value=DEFAULTS.smoothing,
                                step=0.05,
                                label="Smoothing (seconds)",
                                info="0 turns smoothing off.",
                            )
                            min_face = gr.Slider(
                                12, 300, value=DEFAULTS.min_face, step=1, label="Minimum face size (pixels)"
                            )
                            device = gr.Dropdown(
                                devices, value=cfg.device if cfg.device in devices else "auto", label="Device"
                            )
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
                        video_out = gr.Video(
                            label="Annotated video", interactive=False, height=320, elem_id="video-out"
                        )
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
                table = gr.Dataframe(
                    label="Per face: share of time per emotion (%)", interactive=False, elem_id="face-table"
                )
                plot_data = gr.State(None)

                def on_annotate(video, every_n, smooth_s, min_px, dev, request: gr.Request, progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
                    with user_errors(), app.job_cancel(_session(request)) as cancel:
                        progress(0, desc="Checking the video")
                        try:
                            out = app.annotate(
                                video,
                                every_n,
                                smooth_s,
                                min_px,
                                dev,
                                cancel=cancel,
                                progress=_frames_progress(progress, "Annotating"),
                            )
                        except Cancelled:
                            gr.Info("Job cancelled.")
                            hidden = gr.DownloadButton(visible=False)
                            return (
                                None,
                                "Cancelled: no files were kept.",
                                gr.Dropdown(choices=[], value=None),
                                None,
                                None,
                                hidden,
                                hidden,
                                hidden,
                                None,
                            )
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
                    )

                job = run.click(
                    on_annotate,
                    [video_in, every, smoothing, min_face, device],
                    [video_out, status, face_pick, plot, table, csv_btn, json_btn, mp4_btn, plot_data],
                    concurrency_limit=1,
                    concurrency_id="annotate",
                    api_name="annotate",
                    show_progress_on=[video_out],
                )

                def on_cancel(request: gr.Request):
                    app.request_cancel(_session(request))
                    return "Cancelled: no files were kept."

                stop.click(on_cancel, None, [status], cancels=[job], queue=False, api_visibility="private")

                def on_face(face, data):
                    if data is None or not face:
                        return None
                    return data[data["face"] == face]

                face_pick.change(on_face, [face_pick, plot_data], [plot], queue=False, api_visibility="private")

            # ---------------------------------------------------------------- Batch
            with gr.Tab("Batch", id="batch"):
                gr.Markdown(
                    f"Annotate several videos at once (up to {cfg.max_batch_files}); one bad file never "
                    f"stops the batch. {limits}"
                )
                with gr.Row(equal_height=False):
                    with gr.Column():
                        batch_files = gr.File(
                            label="Videos", file_count="multiple", file_types=["video"], elem_id="batch-files"
                        )
                        with gr.Accordion("Settings", open=False):
                            b_every = gr.Slider(
                                1, 10, value=DEFAULTS.detect_every, step=1, label="Detect faces every N frames"
                            )
                            b_smoothing = gr.Slider(
                                0, 2, value=DEFAULTS.smoothing, step=0.05, label="Smoothing (seconds)"
                            )
                            b_min_face = gr.Slider(
                                12, 300, value=DEFAULTS.min_face, step=1, label="Minimum face size (pixels)"
                            )
                            b_device = gr.Dropdown(
                                devices, value=cfg.device if cfg.device in devices else "auto", label="Device"
                            )
                        with gr.Row():
                            b_run = gr.Button("Annotate all", variant="primary", elem_id="batch-run")
                            b_stop = gr.Button("Cancel", variant="stop")
                    with gr.Column():
                        b_status = gr.Markdown("")
                        b_table = gr.Dataframe(label="Results", interactive=False, elem_id="batch-table")
                        b_zip = gr.DownloadButton("All outputs (zip)", visible=False, elem_id="batch-zip")

                def on_batch(files, every_n, smooth_s, min_px, dev, request: gr.Request, progress=gr.Progress()):  # noqa: B008
                    def update(k: int, n: int, name: str, p: Progress | None) -> None:
                        desc = f"Video {k + 1} of {n}: {name}"
                        if p is None:
                            progress((k, n), desc=desc, unit="videos")
                        else:
                            _frames_progress(progress, desc)(p)

                    with user_errors(), app.job_cancel(_session(request)) as cancel:
                        try:
                            out = app.batch(files, every_n, smooth_s, min_px, dev, cancel=cancel, progress=update)
                        except Cancelled:
                            gr.Info("Batch cancelled.")
                            return "Cancelled: no files were kept.", None, gr.DownloadButton(visible=False)
                    return out.message, out.table, gr.DownloadButton(value=str(out.zip_path), visible=True)

                b_job = b_run.click(
                    on_batch,
                    [batch_files, b_every, b_smoothing, b_min_face, b_device],
                    [b_status, b_table, b_zip],
                    concurrency_limit=1,
                    concurrency_id="annotate",
                    api_name="batch",
                )
                b_stop.click(on_cancel, None, [b_status], cancels=[b_job], queue=False, api_visibility="private")

            # ---------------------------------------------------------------- Webcam
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
    return demo


def launch(
    app: FerVideoUI,
    host: str = "127.0.0.1",
    port: int = 7860,
    share: bool = False,
    block: bool = True,
    quiet: bool = False,
) -> gr.Blocks:
    """Build the page, size the queue for this CPU, and serve it (``block=False`` returns once it is up)."""
    app.config.work_dir.mkdir(parents=True, exist_ok=True)
    app.cleanup_jobs()
    blocks = build_demo(app)
    blocks.queue(default_concurrency_limit=1, max_size=32)
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
        footer_links=["api", "gradio"],
    )
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
    if args.max_upload_mb <= 0 or args.max_duration_s <= 0 or args.max_batch_files < 1 or args.keep_hours <= 0:
        raise SystemExit("fer-video ui: error: limits must be positive")
    return UIConfig(
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration_s,
        max_batch_files=args.max_batch_files,
        work_dir=args.work_dir,
        keep_jobs_s=args.keep_hours * 3600,
        weights=args.weights,
        device=args.device,
        examples=not args.no_example,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    return build_demo(FerVideoUI(UIConfig()))


def __getattr__(name: str) -> Any:
    # ``demo`` is built on first use, so importing this module (the tests, ``fer-video ui``) stays cheap
    if name == "demo":
        global demo
        demo = _module_demo()
        return demo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(main(sys.argv[1:]))
