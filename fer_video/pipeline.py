"""``annotate_video()``: the one place that knows the order of the stages.

frames (video.VideoReader) -> detections (stages.Detector) -> face ids (stages.Tracker)
-> probabilities (stages.Classifier) -> smoothed (smooth.ProbabilitySmoother)
-> writers (draw + video.SegmentedWriter, timeline.TimelineWriter, summary JSON, plot), committed by an OutputSet;
checkpoints (checkpoint.Checkpoints) between chunks of frames let an interrupted run continue
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fer_video import __version__
from fer_video.checkpoint import CheckpointError, Checkpoints, Saved, fingerprint, note_discarded
from fer_video.draw import draw_faces
from fer_video.elan import write_eaf
from fer_video.episodes import EpisodeRules, episode_counts, episodes_from_csv, write_episodes
from fer_video.errors import Cancelled, OutputError
from fer_video.outputs import OUTPUT_SUFFIXES, OutputSet, os_error_reason, output_paths, prepare_output_folder
from fer_video.smooth import ProbabilitySmoother
from fer_video.stages import DEFAULT_MODEL, Models, default_weights, load_models
from fer_video.timeline import TimelineWriter, plot_timeline
from fer_video.timerange import TimeRange
from fer_video.track import SceneCutDetector
from fer_video.types import Detections, Frame, FrameResult, Progress, Settings, VideoInfo, VideoResult
from fer_video.video import Encoding, Segment, SegmentedWriter, VideoReader, join_segments, mux_audio
from fer_video.workers import Background, Later, Prefetch

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "OUTPUT_SUFFIXES",
    "FaceAnnotator",
    "Models",
    "annotate_video",
    "default_weights",
    "load_models",
    "os_error_reason",
    "output_paths",
    "prepare_output_folder",
]


class StageTimer:
    """Seconds spent per stage (for the summary and the benchmark), added up from any of the run's threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - t
            with self._lock:
                self.seconds[stage] += spent


@dataclasses.dataclass
class Found:
    """One chunk of frames after detection: its scene cuts, the faces found on the frames detected on (by frame
    number), and the detection side's state before the chunk (for a checkpoint taken there)."""

    frames: list[Frame]
    cuts: list[bool]
    detections: dict[int, Detections]
    state_before: dict[str, Any]


class FaceAnnotator:
    """The per-stream state (detector, tracker, smoother, scene-cut detector) over the shared models.

    ``process`` takes consecutive frames (one detector batch) and returns their ``FrameResult``s; the
    webcam tab of the UI feeds it one frame at a time. It is ``finish(detect(frames))``: the two halves touch
    separate state, so a video's run detects on the next chunk in one thread while another tracks and
    classifies the chunk before it (``_Run.stages``).
    """

    def __init__(self, models: Models, settings: Settings, timer: StageTimer | None = None) -> None:
        self.models = models
        self.settings = settings
        self.detector = models.detector_for(settings)
        self.tracker = models.tracker_for(settings)
        self.classifier = models.classifier
        self.smoother = ProbabilitySmoother(settings.smoothing)
        self.cuts = SceneCutDetector()
        self.timer = timer or StageTimer()
        self.every = max(1, int(settings.detect_every))
        self.classify_every = max(1, int(settings.classify_every))
        self._next_index: int | None = None  # the frame expected next: a jump (a range's start) forces a detection
        # with classify_every > 1: per face id, the frame it was last classified on and its probabilities then
        self._classified_at: dict[int, int] = {}
        self._last_probs: dict[int, np.ndarray] = {}

    def process(self, frames: list[Frame]) -> list[FrameResult]:
        return self.finish(self.detect(frames))

    def detect(self, frames: list[Frame]) -> Found:
        """Scene cuts and detections of consecutive ``frames`` (moves only the detection side's state: the scene-cut
        detector and the frame expected next)."""
        t = self.timer
        before = self._detection_state()
        with t("track"):
            cuts = [self.cuts.is_cut(f.image) for f in frames]
        # every Nth frame, the first frame after a scene cut and the first of a stream or a time range (the
        # tracker has nothing to carry there)
        to_detect = []
        for f, cut in zip(frames, cuts, strict=True):
            if cut or f.index % self.every == 0 or f.index != self._next_index:
                to_detect.append(f)
            self._next_index = f.index + 1
        with t("detect"):
            detections = self.detector.detect([f.image for f in to_detect])
            by_frame = dict(zip((f.index for f in to_detect), detections, strict=True))
        return Found(frames, cuts, by_frame, before)

    def finish(self, found: Found) -> list[FrameResult]:
        """The frames of ``detect``'s result tracked, classified and smoothed (in the order ``detect`` saw them)."""
        t, frames, cuts = self.timer, found.frames, found.cuts
        with t("track"):
            tracked = [self._track(f, cut, found.detections.get(f.index)) for f, cut in zip(frames, cuts, strict=True)]
        clf = self.classifier
        with t("classify"):
            chosen = [self._to_classify(f, d, cut) for f, d, cut in zip(frames, tracked, cuts, strict=True)]
            crops = [clf.crops(f.image, d.xyxy[m]) for f, d, m in zip(frames, tracked, chosen, strict=True)]
            probs = clf.predict(np.concatenate(crops), self.settings.tta) if any(len(c) for c in crops) else None
        results, start = [], 0
        with t("smooth"):
            for f, d, m in zip(frames, tracked, chosen, strict=True):
                n = int(m.sum())
                fresh = probs[start : start + n] if probs is not None else np.zeros((0, len(clf.classes)), np.float32)
                start += n
                p = self._with_carried(d, m, fresh)
                marks = m if self.classify_every > 1 else None
                results.append(FrameResult(f, d, p, self.smoother.update(d.face_id, p, f.time_s), marks))
        return results

    def _to_classify(self, frame: Frame, faces: Detections, cut: bool) -> np.ndarray:
        """Which of the frame's faces to classify: all of them, or with ``classify_every`` N > 1 each face on its
        first frame and then every Nth frame (the others keep their last probabilities)."""
        if self.classify_every == 1:
            return np.ones(len(faces), bool)
        if cut:  # new ids after a cut: every face is classified again
            self._classified_at.clear()
        ids = [int(i) for i in faces.face_id]
        last = {fid: self._classified_at[fid] for fid in ids if fid in self._classified_at}  # faces gone: dropped
        due = np.array([fid not in last or frame.index - last[fid] >= self.classify_every for fid in ids], bool)
        self._classified_at = {**last, **{fid: frame.index for fid, d in zip(ids, due, strict=True) if d}}
        return due

    def _with_carried(self, faces: Detections, classified: np.ndarray, fresh: np.ndarray) -> np.ndarray:
        """The frame's probabilities: ``fresh`` for the faces classified on it, the last ones for the others."""
        if self.classify_every == 1:
            return fresh
        ids = [int(i) for i in faces.face_id]
        out = np.empty((len(ids), fresh.shape[1]), np.float32)
        out[classified] = fresh
        for k in np.flatnonzero(~classified):
            out[k] = self._last_probs[ids[k]]
        self._last_probs = {fid: out[k] for k, fid in enumerate(ids)}
        return out

    @property
    def resumable(self) -> bool:
        """Whether the tracker can save and restore its state (the shipped one does; a swapped-in one may not)."""
        return all(callable(getattr(self.tracker, m, None)) for m in ("state", "restore"))

    def state(self, found: Found | None = None) -> dict[str, Any]:
        """Everything the next frames' results depend on, for a checkpoint (a snapshot: later frames change none
        of it); ``found``: the state before that chunk, which ``detect`` has seen but ``finish`` has not yet."""
        detection = found.state_before if found is not None else self._detection_state()
        return {
            "next_index": detection["next_index"],
            "tracker": self.tracker.state(),  # type: ignore[attr-defined]
            "smoother": self.smoother.state(),
            "cuts": detection["cuts"],
            "classified_at": [[fid, at] for fid, at in self._classified_at.items()],
            "last_probs": [[fid, p.tolist()] for fid, p in self._last_probs.items()],
        }

    def _detection_state(self) -> dict[str, Any]:
        return {"next_index": self._next_index, "cuts": self.cuts.state()}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of an earlier run."""
        self._next_index = state["next_index"]
        self.tracker.restore(state["tracker"])  # type: ignore[attr-defined]
        self.smoother.restore(state["smoother"])
        self.cuts.restore(state["cuts"])
        self._classified_at = {int(fid): int(at) for fid, at in state["classified_at"]}
        self._last_probs = {int(fid): np.asarray(p, np.float32) for fid, p in state["last_probs"]}

    def _track(self, frame: Frame, cut: bool, found: Detections | None) -> Detections:
        """The frame's faces with ids, clipped to the frame (a tracker may move boxes past its edges; the CSV
        contract says clipped, and a box wholly outside is no face of this frame)."""
        if cut:
            self.tracker.reset()
            self.smoother.reset()
        faces = self.tracker.carry(frame.time_s) if found is None else self.tracker.update(found, frame.time_s)
        return faces.clipped(frame.image.shape[1], frame.image.shape[0])


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
    resume: bool = False,
) -> VideoResult:
    """Annotate one video; write ``NAME.annotated.mp4``, ``NAME.timeline.csv``, ``NAME.timeline.png`` and
    ``NAME.summary.json`` into ``out_dir`` (``NAME`` = the input's stem unless given).

    Outputs appear under their final names only when complete (the summary last). Raises ``FerVideoError``
    subclasses with one-line messages; ``Cancelled`` when ``cancel`` is set during the run. Every
    ``settings.checkpoint_s`` seconds of video a checkpoint is saved; ``resume``: continue from the checkpoint an
    interrupted run left (a checkpoint of another input, version or settings is discarded with a warning).
    """
    settings = settings or Settings()
    settings.check()
    input_path = Path(input_path)
    out_dir = Path(out_dir)
    t_start = time.perf_counter()
    loading = Later(load_models, settings) if models is None else None  # overlaps with opening the video
    prepare_output_folder(out_dir)
    name = name or input_path.stem
    attempt = functools.partial(_annotate, input_path, out_dir, settings, name, models, loading, progress, cancel)
    try:
        return attempt(t_start, resume)
    except CheckpointError as exc:  # found out only once the video was opened: start again without it
        note_discarded(name, str(exc))
        return attempt(t_start, False)


def _annotate(
    input_path: Path,
    out_dir: Path,
    settings: Settings,
    name: str,
    models: Models | None,
    loading: Later | None,
    progress: Callable[[Progress], None] | None,
    cancel: threading.Event | None,
    t_start: float,
    resume: bool,
) -> VideoResult:
    """``annotate_video`` once: from the checkpoint when ``resume`` finds a usable one, else from the start."""
    timer = StageTimer()
    time_range = settings.time_range()
    try:
        with OutputSet(out_dir, name) as outputs, Checkpoints(out_dir, name, settings.checkpoint_s) as checkpoints:
            with VideoReader(input_path, time_range=time_range) as reader:
                models = models or loading.result()
                run = _Run(input_path, settings, models, timer, progress, cancel, t_start, time_range)
                timeline = run.stages(reader, outputs, checkpoints, resume)
                info, truncated_at = reader.info, reader.truncated_at
            if timeline.path != outputs.temp("csv"):
                checkpoints.share_csv(outputs.temp("csv"))
            run.finish_video(info, outputs)
            episodes = run.write_episodes(outputs, timeline.classes)
            if settings.write_plot:
                with timer("plot"):
                    shown = os.fsencode(input_path.name).decode("utf-8", "replace")  # undecodable bytes in names
                    title = f"{shown}: smoothed probabilities"
                    plot_timeline(outputs.temp("csv"), outputs.temp("plot"), timeline.classes, title=title)
            seconds = time.perf_counter() - t_start
            summary = _summary(input_path, info, settings, models, timeline, seconds, timer, truncated_at, outputs)
            _add_research(summary, run, episodes)
            summary["processing"].update(run.resume_report(checkpoints))
            _write_json(outputs.temp("summary"), summary)
            written = outputs.commit()
            checkpoints.remove()
    except OSError as exc:
        raise OutputError(f"{input_path.name}: cannot write outputs to {out_dir} ({os_error_reason(exc)})") from None
    return VideoResult(
        input=input_path,
        info=info,
        outputs=written,
        frames=timeline.frames,
        faces=len(timeline.faces),
        dominant_emotion=timeline.dominant_emotion(),
        seconds=round(seconds, 3),
        summary=summary,
    )


@dataclasses.dataclass
class _Written:
    """One chunk's results for the writing thread, and the checkpoint to save before them (None: none)."""

    results: list[FrameResult]
    checkpoint: _Mark | None = None


@dataclasses.dataclass
class _Mark:
    """A checkpoint before frame ``next_frame``: the stream's state after the frames before it."""

    next_frame: int
    next_time_s: float
    stream: dict[str, Any]


@dataclasses.dataclass
class _Run:
    """One video's run of the stages: decoding (thread) -> models (here) -> CSV, drawing, encoding (thread)."""

    input_path: Path
    settings: Settings
    models: Models
    timer: StageTimer
    progress: Callable[[Progress], None] | None
    cancel: threading.Event | None
    t_start: float
    time_range: TimeRange = dataclasses.field(default_factory=TimeRange)
    span: FrameSpan = dataclasses.field(default_factory=lambda: FrameSpan())
    segments: list[Segment] = dataclasses.field(default_factory=list)  # the annotated video, without audio
    resumed_at: int | None = None  # the frame this run continued from
    frames_annotated: int = 0  # by this run

    def stages(self, reader: VideoReader, outputs: OutputSet, checkpoints: Checkpoints, resume: bool) -> TimelineWriter:
        """Every frame through the stages into the timeline and (unless turned off) the video without audio,
        from the checkpoint an interrupted run left when ``resume``; checkpoints saved on the way."""
        info, timer, settings = reader.info, self.timer, self.settings
        annotator = FaceAnnotator(self.models, settings, timer)
        classes = self.models.classifier.classes
        # one chunk queued between stages keeps memory flat
        chunk_size = self.models.compute.chunk_frames(settings.detect_every, info.width, info.height)
        found = fingerprint(self.input_path, settings, self.models, chunk_size) if annotator.resumable else None
        saved = checkpoints.start(found, resume)
        csv_path = checkpoints.csv_path if checkpoints.enabled else outputs.temp("csv")
        timeline = TimelineWriter(csv_path, classes, classified=settings.classify_every > 1)
        if saved is not None:
            self._restore(saved, annotator, timeline, reader)
        encoding = Encoding(info.width, info.height, info.fps, settings.crf, settings.preset, info.sample_aspect_ratio)
        done = saved.segments if saved is not None else ()
        writer = SegmentedWriter(outputs.scratch("video.mp4"), encoding, done) if settings.write_video else None

        span = self.span
        cut = bool(self.time_range.start)  # a range starts the annotated video at 0; a whole video keeps its times

        def write(item: _Written) -> None:
            if item.checkpoint is not None:
                with timer("checkpoint"):
                    mark = item.checkpoint
                    if writer is not None:
                        writer.cut(checkpoints.segment_path(len(writer.segments)))
                    segments = writer.segments if writer is not None else []
                    span_state = dataclasses.asdict(span)
                    checkpoints.save(mark.next_frame, mark.next_time_s, mark.stream, timeline, span_state, segments)
            for result in item.results:
                span.add(result.frame)
                with timer("csv"):
                    timeline.add(result)
                if writer is not None:
                    with timer("draw"):
                        faces = result.faces
                        image = draw_faces(result.frame.image, faces.xyxy, faces.face_id, result.smoothed, classes)
                    with timer("encode"):
                        writer.write(image, result.frame.time_s - (span.first_s if cut else 0.0))

        # four threads, each a chunk ahead of the next: decoding | detection | tracking, classification and
        # smoothing (here) | drawing and encoding
        frames_in = Prefetch(_chunks(iter(reader), chunk_size, timer))
        found_in = Prefetch(map(annotator.detect, frames_in), name="fer-video-detect")
        results_out = Background(write)
        try:
            done = timeline.frames
            for found in found_in:
                chunk = found.frames
                if self.cancel is not None and self.cancel.is_set():
                    raise Cancelled(f"{self.input_path.name}: cancelled")
                if saved is not None and not self.frames_annotated:
                    _check_continues(saved, chunk[0])
                # the state before the chunk, taken before the models move it on
                due = checkpoints.due(chunk[0].time_s)
                mark = _Mark(chunk[0].index, chunk[0].time_s, annotator.state(found)) if due else None
                results_out.submit(_Written(annotator.finish(found), mark))
                done += len(chunk)
                self.frames_annotated += len(chunk)
                self._report(done, info)
            results_out.finish()
        finally:
            found_in.close()  # before the decoding it reads from
            frames_in.close()
            results_out.abort()
            if writer is not None:
                with timer("encode"):
                    self.segments = writer.close()
        with timer("csv"):
            timeline.flush()
        return timeline

    def _restore(self, saved: Saved, annotator: FaceAnnotator, timeline: TimelineWriter, reader: VideoReader) -> None:
        """The stages as the checkpoint left them; the reader sent to the frame after it."""
        try:
            annotator.restore(saved.stream)
            timeline.restore(saved.timeline)
            self.span = FrameSpan(**saved.span)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"corrupt state ({exc.__class__.__name__})") from None
        reader.start_at(saved.next_time_s, saved.next_frame)
        self.resumed_at = saved.next_frame

    def resume_report(self, checkpoints: Checkpoints) -> dict[str, Any]:
        """For the summary's ``processing``: where this run started, how many frames it annotated, checkpoints."""
        return {
            "resumed_at_frame": self.resumed_at,
            "frames_annotated": self.frames_annotated,
            "checkpoints_saved": checkpoints.saved,
        }

    def _report(self, done: int, info: VideoInfo) -> None:
        if self.progress is not None:
            total = self.time_range.frames_in(info.duration_s, info.fps) or info.frame_count
            total = total if total >= done else 0
            self.progress(Progress(done, total, time.perf_counter() - self.t_start))

    def finish_video(self, info: VideoInfo, outputs: OutputSet) -> None:
        """The video's segments joined (stream copy) with the input's audio muxed in (or the video alone when
        there is none)."""
        if not self.settings.write_video:
            return
        segments, out = self.segments, outputs.temp("video")
        start = self.span.first_s if self.time_range.start else 0.0
        with self.timer("mux"):
            if info.has_audio and mux_audio(segments, self.input_path, out, start, self.time_range.end_s):
                return
            if len(segments) == 1:
                os.replace(segments[0].path, out)
            else:
                join_segments(segments, out)

    def write_episodes(self, outputs: OutputSet, classes: list[str]) -> pd.DataFrame:
        """``NAME.episodes.csv`` from the finished timeline CSV, and ``NAME.eaf`` when asked for."""
        settings = self.settings
        with self.timer("episodes"):
            rules = EpisodeRules(min_episode_s=settings.min_episode, max_gap_s=settings.max_missed_s)
            episodes = episodes_from_csv(outputs.temp("csv"), rules, classes)
            write_episodes(episodes, outputs.temp("episodes"))
            if settings.elan:
                write_eaf(episodes, self.input_path, outputs.temp("elan"), classes, final_path=outputs.final["elan"])
        return episodes


@dataclasses.dataclass
class FrameSpan:
    """The first and last frame written (numbers and times of the source video)."""

    first: int | None = None
    last: int | None = None
    first_s: float = 0.0
    last_s: float = 0.0

    def add(self, frame: Frame) -> None:
        if self.first is None:
            self.first, self.first_s = frame.index, frame.time_s
        self.last, self.last_s = frame.index, frame.time_s


def _check_continues(saved: Saved, first: Frame) -> None:
    """The resumed reader's first frame must be the checkpoint's next frame (same number, same time)."""
    if (first.index, first.time_s) != (saved.next_frame, saved.next_time_s):
        raise CheckpointError(
            f"the video does not continue at its frame {saved.next_frame} ({saved.next_time_s} s) here "
            f"(frame {first.index}, {first.time_s} s)"
        )


def _add_research(summary: dict[str, Any], run: _Run, episodes: pd.DataFrame) -> None:
    """The time range and the episode counts into the summary."""
    r, span = run.time_range, run.span
    summary["range"] = (
        None
        if r.is_whole
        else {
            **r.as_dict(),
            "first_frame": span.first,
            "last_frame": span.last,
            "first_s": span.first_s,
            "last_s": span.last_s,
        }
    )
    counts = episode_counts(episodes)
    summary["episodes"] = int(len(episodes))
    for fid, face in summary["per_face"].items():
        face["episodes"] = counts.get(fid, {"count": 0, "per_emotion": {}, "seconds_per_emotion": {}})


def _summary(
    input_path: Path,
    info: VideoInfo,
    settings: Settings,
    models: Models,
    timeline: TimelineWriter,
    seconds: float,
    timer: StageTimer,
    truncated_at: int | None,
    outputs: OutputSet,
) -> dict[str, Any]:
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
        "model": models.classifier.describe(),
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
            for k, p in outputs.final.items()
            if (k != "plot" or settings.write_plot)
            and (k != "video" or settings.write_video)
            and (k != "elan" or settings.elan)
        },
    }


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, default=str) + "\n")
