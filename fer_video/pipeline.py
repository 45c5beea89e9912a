"""``annotate_video()``: the one place that knows the order of the stages.

frames (video.VideoReader) -> detections (detect.FaceDetector) -> face ids (track.FaceTracker)
-> probabilities (classify.EmotionClassifier) -> smoothed (smooth.ProbabilitySmoother)
-> writers (draw + video.VideoWriter, timeline.TimelineWriter, summary JSON, plot)
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_video import __version__
from fer_video.classify import EmotionClassifier
from fer_video.detect import FaceDetector
from fer_video.device import Compute, apply_threads, choose_compute
from fer_video.draw import draw_faces
from fer_video.errors import Cancelled, FerVideoError, OutputError
from fer_video.smooth import ProbabilitySmoother
from fer_video.timeline import TimelineWriter, plot_timeline, preload_plotting
from fer_video.track import FaceTracker, SceneCutDetector
from fer_video.types import Detections, Frame, FrameResult, Progress, Settings, VideoResult
from fer_video.video import VideoReader, VideoWriter, mux_audio
from fer_video.workers import Background, Prefetch

log = logging.getLogger(__name__)

DEFAULT_MODEL = "fer2013_resnet18.pt"
OUTPUT_SUFFIXES = {
    "video": ".annotated.mp4",
    "csv": ".timeline.csv",
    "plot": ".timeline.png",
    "summary": ".summary.json",
}


def default_weights() -> Path:
    """``$FER_VIDEO_WEIGHTS`` if set, else the shipped model: ``fer_video/weights/`` in an installed wheel, the
    project's ``weights/`` folder in a source checkout (an editable install)."""
    env = os.environ.get("FER_VIDEO_WEIGHTS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent
    installed = package / "weights" / DEFAULT_MODEL
    return installed if installed.is_file() else package.parent / "weights" / DEFAULT_MODEL


@dataclass
class Models:
    """The loaded networks and where they run; load once, reuse for many videos (the UI and batches do)."""

    compute: Compute
    detector: FaceDetector
    classifier: EmotionClassifier
    weights: Path


def load_models(settings: Settings) -> Models:
    settings.check()
    try:
        compute = choose_compute(settings.device)
    except ValueError as exc:
        raise FerVideoError(str(exc)) from None
    apply_threads(compute)
    weights = Path(settings.weights) if settings.weights else default_weights()
    classifier = EmotionClassifier.from_weights(str(weights), compute.device, compute.classify_batch, settings.tta)
    detector = FaceDetector(compute.device, settings.min_face, settings.det_threshold, settings.detect_max_side)
    return Models(compute, detector, classifier, weights)


class StageTimer:
    """Seconds spent per stage (for the summary and the benchmark)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t


class FaceAnnotator:
    """The per-stream state (tracker, smoother, scene-cut detector) over the shared models.

    ``process`` takes consecutive frames (one detector batch) and returns their ``FrameResult``s; the
    webcam tab of the UI feeds it one frame at a time.
    """

    def __init__(self, models: Models, settings: Settings, timer: StageTimer | None = None) -> None:
        self.models = models
        self.settings = settings
        self.tracker = FaceTracker(settings.iou_match, settings.max_missed_s)
        self.smoother = ProbabilitySmoother(settings.smoothing)
        self.cuts = SceneCutDetector()
        self.timer = timer or StageTimer()
        self.every = max(1, int(settings.detect_every))

    def process(self, frames: list[Frame]) -> list[FrameResult]:
        t = self.timer
        with t("track"):
            cuts = [self.cuts.is_cut(f.image) for f in frames]
        # every Nth frame, and the first frame after a scene cut (the tracker has nothing to carry there)
        to_detect = [f for f, cut in zip(frames, cuts, strict=True) if cut or f.index % self.every == 0]
        with t("detect"):
            images = [f.image for f in to_detect]
            s = self.settings
            detections = self.models.detector.detect(images, s.min_face, s.det_threshold, s.detect_max_side)
            found = dict(zip((f.index for f in to_detect), detections, strict=True))
        tracked: list[Detections] = []
        with t("track"):
            for f, cut in zip(frames, cuts, strict=True):
                if cut:
                    self.tracker.reset()
                    self.smoother.reset()
                if f.index in found:
                    tracked.append(self.tracker.update(found[f.index], f.time_s))
                else:
                    tracked.append(self.tracker.carry(f.time_s))
        clf = self.models.classifier
        with t("classify"):
            crops = [clf.crops(f.image, d.xyxy) for f, d in zip(frames, tracked, strict=True)]
            probs = clf.predict(np.concatenate(crops), self.settings.tta) if any(len(c) for c in crops) else None
        results, start = [], 0
        with t("smooth"):
            for f, d in zip(frames, tracked, strict=True):
                p = probs[start : start + len(d)] if probs is not None else np.zeros((0, len(clf.classes)), np.float32)
                start += len(d)
                results.append(FrameResult(f, d, p, self.smoother.update(d.face_id, p, f.time_s)))
        return results


def output_paths(out_dir: Path, name: str) -> dict[str, Path]:
    return {key: out_dir / f"{name}{suffix}" for key, suffix in OUTPUT_SUFFIXES.items()}


def os_error_reason(exc: OSError) -> str:
    """A short reason for an OSError in a one-line message: "disk full", else the OS's own words."""
    return "disk full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc) or exc.__class__.__name__)


def prepare_output_folder(out_dir: Path) -> None:
    """Create ``out_dir`` and check it is writable, before any work (one clear error instead of one per file)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{out_dir}: output folder is a file") from None
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create output folder ({os_error_reason(exc)})") from None
    if not os.access(out_dir, os.W_OK):
        raise OutputError(f"{out_dir}: output folder is not writable")


def _temp(path: Path) -> Path:
    return path.with_name(f".{path.name}.part")


def _chunks(frames: Iterator[Frame], size: int, timer: StageTimer) -> Iterator[list[Frame]]:
    while True:
        with timer("decode"):
            chunk = []
            for f in frames:
                chunk.append(f)
                if len(chunk) == size:
                    break
        if not chunk:
            return
        yield chunk


def annotate_video(
    input_path: str | Path,
    out_dir: str | Path,
    settings: Settings | None = None,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    models: Models | None = None,
    name: str | None = None,
) -> VideoResult:
    """Annotate one video; write ``NAME.annotated.mp4``, ``NAME.timeline.csv``, ``NAME.timeline.png`` and
    ``NAME.summary.json`` into ``out_dir`` (``NAME`` = the input's stem unless given).

    Outputs appear under their final names only when complete (the summary last). Raises ``FerVideoError``
    subclasses with one-line messages; ``Cancelled`` when ``cancel`` is set during the run.
    """
    settings = settings or Settings()
    settings.check()
    input_path = Path(input_path)
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    models = models or load_models(settings)
    name = name or input_path.stem
    prepare_output_folder(out_dir)
    if settings.write_plot:
        preload_plotting()
    final = output_paths(out_dir, name)
    temps = {k: _temp(p) for k, p in final.items()}
    video_only = out_dir / f".{name}.video.mp4.part"
    timer = StageTimer()
    try:
        with VideoReader(input_path) as reader:
            info = reader.info
            annotator = FaceAnnotator(models, settings, timer)
            classes = models.classifier.classes
            timeline = TimelineWriter(temps["csv"], classes)
            writer = (
                VideoWriter(
                    video_only,
                    info.width,
                    info.height,
                    info.fps,
                    settings.crf,
                    settings.preset,
                    info.sample_aspect_ratio,
                )
                if settings.write_video
                else None
            )
            done = 0

            def write(results: list[FrameResult]) -> None:
                for result in results:
                    with timer("csv"):
                        timeline.add(result)
                    if writer is not None:
                        with timer("draw"):
                            image = draw_faces(
                                result.frame.image, result.faces.xyxy, result.faces.face_id, result.smoothed, classes
                            )
                        with timer("encode"):
                            writer.write(image, result.frame.time_s)

            # three stages overlap: decoding (thread) -> models (here) -> CSV, drawing, encoding (thread);
            # one chunk queued between stages keeps memory flat
            chunk_size = models.compute.chunk_frames(settings.detect_every, info.width, info.height)
            frames_in = Prefetch(_chunks(iter(reader), chunk_size, timer))
            results_out = Background(write)
            try:
                for chunk in frames_in:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"{input_path.name}: cancelled")
                    results_out.submit(annotator.process(chunk))
                    done += len(chunk)
                    if progress is not None:
                        progress(
                            Progress(
                                done, info.frame_count if info.frame_count >= done else 0, time.perf_counter() - t_start
                            )
                        )
                results_out.finish()
            finally:
                frames_in.close()
                results_out.abort()
                if writer is not None:
                    with timer("encode"):
                        writer.close()
            with timer("csv"):
                timeline.flush()
            truncated_at = reader.truncated_at
        if writer is not None:
            with timer("mux"):
                if info.has_audio and mux_audio(video_only, input_path, temps["video"]):
                    video_only.unlink()
                else:
                    os.replace(video_only, temps["video"])
        if settings.write_plot:
            with timer("plot"):
                shown = os.fsencode(input_path.name).decode("utf-8", "replace")  # undecodable bytes in names
                plot_timeline(temps["csv"], temps["plot"], classes, title=f"{shown}: smoothed probabilities")
        seconds = time.perf_counter() - t_start
        summary = _summary(input_path, info, settings, models, timeline, seconds, timer, truncated_at, final)
        _write_json(temps["summary"], summary)
        for key in ("video", "csv", "plot", "summary"):  # the summary last: it marks a complete result
            if temps[key].exists():
                os.replace(temps[key], final[key])
    except OSError as exc:
        _cleanup([*temps.values(), video_only])
        raise OutputError(f"{input_path.name}: cannot write outputs to {out_dir} ({os_error_reason(exc)})") from None
    except BaseException:
        _cleanup([*temps.values(), video_only])
        raise
    outputs = {k: p for k, p in final.items() if p.exists()}
    return VideoResult(
        input=input_path,
        info=info,
        outputs=outputs,
        frames=timeline.frames,
        faces=len(timeline.faces),
        dominant_emotion=timeline.dominant_emotion(),
        seconds=round(seconds, 3),
        summary=summary,
    )


def _summary(
    input_path: Path,
    info: Any,
    settings: Settings,
    models: Models,
    timeline: TimelineWriter,
    seconds: float,
    timer: StageTimer,
    truncated_at: int | None,
    final: dict[str, Path],
) -> dict[str, Any]:
    card = models.classifier.card
    faces = timeline.face_summaries()
    return {
        "input": str(input_path),
        "fer_video_version": __version__,
        "video": dataclasses.asdict(info),
        "settings": {
            **dataclasses.asdict(settings),
            "device_used": str(models.compute.device),
            "weights_used": str(models.weights),
        },
        "model": {
            "name": card.name,
            "sha256": card.sha256,
            "classes": card.classes,
            "publictest_accuracy_tta": card.metrics.get("accuracy_tta"),
        },
        "frames": timeline.frames,
        "frames_with_faces": timeline.frames_with_faces,
        "faces": len(faces),
        "no_faces": not faces,
        "message": "no face detected in any frame" if not faces else None,
        "dominant_emotion": timeline.dominant_emotion(),
        "truncated_at_frame": truncated_at,
        "per_face": faces,
        "processing": {
            "seconds": round(seconds, 3),
            "fps": round(timeline.frames / max(seconds, 1e-9), 3),
            "stage_seconds": {k: round(v, 3) for k, v in timer.seconds.items()},
        },
        "outputs": {
            k: p.name
            for k, p in final.items()
            if (k != "plot" or settings.write_plot) and (k != "video" or settings.write_video)
        },
    }


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")


def _cleanup(paths: list[Path]) -> None:
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError:
            pass
