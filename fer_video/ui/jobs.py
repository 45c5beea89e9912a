"""The web app's jobs, free of Gradio: settings from the controls, upload checks, one folder per job, the
Video, Batch and Webcam handlers (the tests call these directly; the tabs only map them onto components)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
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

import pandas as pd

from fer_video.batch import BatchRow, run_batch, write_batch_csv
from fer_video.device import resolve_device
from fer_video.draw import draw_faces
from fer_video.episodes import read_episodes
from fer_video.errors import Cancelled, FerVideoError, InputError
from fer_video.options import OPTIONS
from fer_video.outputs import unique_names
from fer_video.pipeline import FaceAnnotator, annotate_video
from fer_video.plot import line_colour
from fer_video.stages import Models, default_weights, load_models
from fer_video.timeline import read_timeline
from fer_video.types import Frame, Progress, Settings, VideoInfo, VideoResult
from fer_video.ui.faces import Faces, face_order, list_faces
from fer_video.ui.memory import return_freed_memory
from fer_video.video import VideoReader

DEFAULTS = Settings()  # the library's defaults, read-only: the UI starts from them

log = logging.getLogger("fer_video.ui")

#: the research settings (episodes, time range) that the job handlers take as keywords
RESEARCH = ("min_episode", "start", "end")
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
    max_queue: int = 16  # jobs waiting at most (a full queue is refused: "busy, try again")


@dataclass
class AnnotateOutput:
    """What one Video-tab job gives back (plain data; the Gradio handler maps it onto components)."""

    result: VideoResult
    job_dir: Path
    message: str
    faces: list[str]  # face ids as shown in the face picker, longest-seen first
    plot: pd.DataFrame  # long format: PLOT_COLUMNS, every face
    table: pd.DataFrame  # one row per face, in the order of ``faces``
    episodes: pd.DataFrame  # NAME.episodes.csv
    face_list: Faces | None = None  # the order again, the brief tracks and a thumbnail per face


@dataclass
class BatchOutput:
    rows: list[BatchRow]
    table: pd.DataFrame
    zip_path: Path
    job_dir: Path
    message: str


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch is: the input at work among every input given, and the share of the whole batch done."""

    index: int  # 0-based position of the current input among all inputs (failed checks included)
    total: int  # every input given
    name: str
    fraction: float  # (inputs done + share of the current one) / total; never decreases
    frames: Progress | None = None  # the current input's frames, once it is being annotated


class BatchProgressTracker:
    """Turns run_batch's start and per-frame reports into ``BatchProgress`` (monotone fraction)."""

    def __init__(self, total: int, done_before: int, report: Callable[[BatchProgress], None] | None) -> None:
        self.total = max(total, 1)
        self.done_before = done_before  # inputs already finished (refused by the checks) before any runs
        self.report = report
        self.index = 0
        self.started = 0
        self.name = ""
        self.fraction = done_before / self.total

    def start(self, index: int, name: str) -> None:
        """Input ``index`` (its position among all inputs) starts."""
        self.index, self.name = index, name
        self._emit(self.done_before + self.started, None)
        self.started += 1

    def frames(self, p: Progress) -> None:
        share = min(p.done / p.total, 1.0) if p.total else 0.0
        self._emit(self.done_before + self.started - 1 + share, p)

    def _emit(self, done: float, frames: Progress | None) -> None:
        self.fraction = max(self.fraction, min(done / self.total, 1.0))
        if self.report is not None:
            self.report(BatchProgress(self.index, self.total, self.name, self.fraction, frames))


@dataclass
class WebcamSession:
    """Per-browser-session webcam state (kept in gr.State): the stateful annotator and the stream clock."""

    annotator: FaceAnnotator
    start: float
    index: int = 0
    stopped: bool = False  # Stop was pressed: frames still on their way are dropped


def safe_name(filename: str | Path | None, default: str = "video") -> str:
    """A file stem fit to be a path component: no folders, no dots in front, only ``[A-Za-z0-9._-]``."""
    stem = Path(Path(str(filename or "")).name).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:60]
    return stem or default


def fmt_seconds(s: float) -> str:
    s = max(0, int(round(s)))
    return f"{s // 60}:{s % 60:02d}" if s >= 60 else f"{s} s"


def limits(cfg: UIConfig) -> str:
    """The upload limits, as the Video and Batch tabs state them."""
    return (
        f"Up to {cfg.max_upload_mb:g} MB and {fmt_seconds(cfg.max_duration_s)} per video. Files are "
        "processed on this machine and deleted after a while."
    )


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


def name_input(result: VideoResult, shown: str) -> None:
    """Record the user's file name as the summary's ``input``, not the server's temporary upload path."""
    path = result.outputs["summary"]
    summary = json.loads(path.read_text())
    summary["input"] = shown
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    result.summary["input"] = shown


def face_table(summary: dict[str, Any], classes: list[str]) -> pd.DataFrame:
    """One row per face, most frames first: when it was seen, its dominant emotion and the share of time per
    emotion (%)."""
    rows = []
    per_face = summary.get("per_face", {})
    rank = {face: k for k, face in enumerate(face_order(per_face))}
    for fid, face in sorted(per_face.items(), key=lambda kv: rank[f"face {kv[0]}"]):
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
    return {c: "#{:02x}{:02x}{:02x}".format(*line_colour(c)) for c in classes}  # as in the PNG plot (on white)


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
        shown = {"detect_every": detect_every, "smoothing": smoothing, "min_face": min_face}
        shown.update({k: extra.pop(k) for k in RESEARCH if k in extra})
        values = {name: OPTIONS[name].from_control(v, getattr(DEFAULTS, name)) for name, v in shown.items()}
        settings = Settings(weights=self.config.weights, device=device, **values, **extra)
        settings.check()  # SettingsError: shown in the browser like any other FerVideoError
        return settings

    def models(self, settings: Settings) -> Models:
        """Loaded once per (weights, device) and shared by every job and webcam session; the device as it
        resolves ("auto", "cpu" and " CPU " are one copy of the models, not one per spelling a client sends)."""
        weights = str(Path(settings.weights).resolve()) if settings.weights else str(default_weights().resolve())
        try:
            key = (weights, str(resolve_device(settings.device)))
        except ValueError:  # not a device: loading says so
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
                f"{display}: video too long ({fmt_seconds(duration)}; the limit is "
                f"{fmt_seconds(self.config.max_duration_s)})"
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
        **research: Any,
    ) -> AnnotateOutput:
        """Check the upload, annotate it into a fresh job folder, and shape the result for display.
        ``research``: ``min_episode``, ``start``, ``end`` (as the Settings fields; "" leaves a time unset).

        Raises FerVideoError subclasses (``Cancelled`` when ``cancel`` is set; the job folder is removed)."""
        settings = self.settings(detect_every, smoothing, min_face, device, **research)
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
                    f"{Path(video).name}: video too long (over {fmt_seconds(self.config.max_duration_s)}, the limit)"
                ) from None
            raise
        finally:
            return_freed_memory()
        if cancel.is_set():  # Cancel pressed as the last frames finished: the user was told nothing is kept
            shutil.rmtree(job, ignore_errors=True)
            raise Cancelled(f"{Path(video).name}: cancelled")
        name_input(result, Path(video).name)
        classes = models.classifier.classes
        plot = plot_frame(result.outputs["csv"], classes)
        listing = list_faces(result.summary, result.info.fps, Path(video), result.outputs["csv"], job / "faces")
        table = face_table(result.summary, classes)
        episodes = read_episodes(result.outputs["episodes"])
        return AnnotateOutput(result, job, result_message(result), listing.order, plot, table, episodes, listing)

    # -- Batch tab

    def batch(
        self,
        files: list[str | Path] | None,
        detect_every: float = DEFAULTS.detect_every,
        smoothing: float = DEFAULTS.smoothing,
        min_face: float = DEFAULTS.min_face,
        device: str | None = None,
        *,
        progress: Callable[[BatchProgress], None] | None = None,
        cancel: threading.Event | None = None,
        **research: Any,
    ) -> BatchOutput:
        """Annotate every file into one job folder; files that fail the checks get a failed row, not an abort."""
        files = [Path(f) for f in (files or [])]
        if not files:
            raise InputError("No videos: add one or more video files first.")
        if len(files) > self.config.max_batch_files:
            raise InputError(f"Too many files ({len(files)}); the limit is {self.config.max_batch_files} per batch.")
        settings = self.settings(detect_every, smoothing, min_face, device, **research)
        models = self.models(settings)
        job = self.new_job()
        inputs_dir, out_dir = job / "inputs", job / "outputs"
        inputs_dir.mkdir()
        rows: list[BatchRow | None] = []
        todo: list[tuple[int, Path]] = []
        for i, (f, name) in enumerate(
            zip(files, unique_names([safe_name(f) for f in files], fold_case=True), strict=True)
        ):
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
            tracker = BatchProgressTracker(len(files), len(files) - len(todo), progress)
            try:
                done = run_batch(
                    [p for _, p in todo],
                    out_dir,
                    settings,
                    models=models,
                    on_start=lambda k, path: tracker.start(todo[k][0], path.name),
                    progress=tracker.frames,
                    cancel=cancel,
                )
            except BaseException:
                shutil.rmtree(job, ignore_errors=True)
                raise
            finally:
                return_freed_memory()
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
