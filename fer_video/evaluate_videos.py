"""Evaluate the whole pipeline on labelled videos: ``fer-video evaluate --videos DIR --labels labels.csv``.

Each video is annotated with the given settings (no annotated video, no plot). Its clip prediction is the argmax
of the mean smoothed probability of the largest face (the face id with the largest median box area) over the
frames where that face is seen; the same is reported with the raw (unsmoothed) probabilities. Frame-level
accuracy scores every frame of the largest face against the clip's label.

A row that cannot be scored (a label the model does not know, a missing file, a file that is not a video) gets
a one-line message and is left out; the rest is evaluated.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fer_video.errors import DataError, FerVideoError, OutputError
from fer_video.training.metrics import confusion, save_confusion, summarize
from fer_video.types import Settings

if TYPE_CHECKING:
    from fer_video.pipeline import Models

log = logging.getLogger(__name__)


@dataclass
class ClipScore:
    """One labelled video as the pipeline saw it."""

    file: str
    label: str
    predicted: str | None  # from the mean smoothed probabilities of the largest face; None: no face
    predicted_raw: str | None  # the same from the raw probabilities
    face_frames: int  # frames where the largest face is seen
    frames_right: int  # of those, frames whose smoothed emotion is the label
    probabilities: dict[str, float]  # the mean smoothed probabilities of the largest face


def read_labels(path: str | Path) -> pd.DataFrame:
    """``file,label`` rows (other columns kept) of a labels CSV; a clear one-line error when it is unusable."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such labels file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    missing = {"file", "label"} - set(table.columns)
    if missing:
        raise DataError(f"{path}: needs the columns file and label (missing: {', '.join(sorted(missing))})")
    table["file"] = table["file"].str.strip()
    table["label"] = table["label"].str.strip().str.lower()
    return table


def largest_face(timeline: pd.DataFrame) -> pd.DataFrame:
    """The rows of the face id with the largest median box area (empty when no face was seen)."""
    faces = timeline.dropna(subset=["face_id"])
    if faces.empty:
        return faces
    area = (faces["x2"] - faces["x1"]) * (faces["y2"] - faces["y1"])
    biggest = area.groupby(faces["face_id"]).median().idxmax()
    return faces[faces["face_id"] == biggest]


def score_clip(file: str, label: str, timeline: pd.DataFrame, classes: list[str]) -> ClipScore:
    rows = largest_face(timeline)
    if rows.empty:
        return ClipScore(file, label, None, None, 0, 0, {})
    smoothed = rows[classes].to_numpy(dtype=np.float64).mean(0)
    raw = rows[[f"raw_{c}" for c in classes]].to_numpy(dtype=np.float64).mean(0)
    return ClipScore(
        file=file,
        label=label,
        predicted=classes[int(smoothed.argmax())],
        predicted_raw=classes[int(raw.argmax())],
        face_frames=len(rows),
        frames_right=int((rows["emotion"] == label).sum()),
        probabilities={c: round(float(p), 4) for c, p in zip(classes, smoothed, strict=True)},
    )


def evaluate_videos(
    videos: str | Path,
    labels: str | Path,
    settings: Settings | None = None,
    out: str | Path | None = None,
    on_error: Callable[[str], None] | None = None,
    models: Models | None = None,
) -> dict[str, Any]:
    """Annotate every labelled video of ``videos`` and score the clip predictions (see the module's text).

    ``on_error`` receives the one-line message of each row that could not be scored; ``models``: already loaded
    networks to reuse (they must match ``settings``)."""
    from fer_video.pipeline import annotate_video, load_models, os_error_reason, prepare_output_folder

    settings = settings or Settings()
    settings = Settings(**{**asdict(settings), "write_video": False, "write_plot": False})
    table = read_labels(labels)
    if out:
        out = Path(out)
        prepare_output_folder(out)
    models = models or load_models(settings)
    classes = list(models.classifier.classes)
    videos = Path(videos)
    t0 = time.perf_counter()
    scores, errors = [], []
    with tempfile.TemporaryDirectory(prefix="fer-video-eval-") as work:
        for row in table.itertuples(index=False):
            if row.label not in classes:
                errors.append(
                    f"{row.file}: label {row.label!r} is not one of the model's classes ({', '.join(classes)})"
                )
            else:
                try:
                    result = annotate_video(videos / row.file, work, settings, models=models)
                except FerVideoError as exc:
                    errors.append(str(exc))
                else:
                    timeline = pd.read_csv(result.outputs["csv"], dtype={"face_id": "Int64"})
                    scores.append(score_clip(row.file, row.label, timeline, classes))
                    continue
            if on_error:
                on_error(errors[-1])
    report = build_report(scores, classes, errors, time.perf_counter() - t0)
    report.update(
        videos=str(videos), labels=str(labels), weights=str(models.weights), model=models.classifier.card.name
    )
    if out:
        try:
            save_outputs(report, scores, classes, out)
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the evaluation outputs ({os_error_reason(exc)})") from None
    return report


def build_report(scores: list[ClipScore], classes: list[str], errors: list[str], seconds: float) -> dict[str, Any]:
    """Clip accuracy (smoothed and raw), per-class precision/recall, confusion, frame-level accuracy."""
    seen = [s for s in scores if s.predicted is not None]
    truth = np.array([classes.index(s.label) for s in seen], dtype=np.int64)
    pred = np.array([classes.index(s.predicted) for s in seen], dtype=np.int64)
    pred_raw = np.array([classes.index(s.predicted_raw) for s in seen], dtype=np.int64)
    smoothed, raw = summarize(truth, pred, classes), summarize(truth, pred_raw, classes)
    face_frames = sum(s.face_frames for s in seen)
    return {
        "clips": len(scores),
        "clips_with_face": len(seen),
        "clips_without_face": [s.file for s in scores if s.predicted is None],
        # a clip without a face counts as wrong: the user asked about it and got no answer
        "clip_accuracy": float((truth == pred).sum() / max(len(scores), 1)),
        "clip_accuracy_raw": float((truth == pred_raw).sum() / max(len(scores), 1)),
        "frame_accuracy": sum(s.frames_right for s in seen) / max(face_frames, 1),
        "face_frames": face_frames,
        "per_class": smoothed["per_class"],
        "per_class_raw": raw["per_class"],
        "confusion": confusion(truth, pred, len(classes)).tolist(),
        "classes": classes,
        "per_clip": [asdict(s) for s in scores],
        "errors": errors,
        "seconds": round(seconds, 1),
    }


def save_outputs(report: dict[str, Any], scores: list[ClipScore], classes: list[str], out: Path) -> None:
    cm = np.array(report["confusion"], dtype=np.int64).reshape(len(classes), len(classes))
    title = f"{report['model']}: clip accuracy {report['clip_accuracy']:.3f} ({report['clips']} clips)"
    save_confusion(cm, classes, out / "video_confusion.png", title)
    pd.DataFrame([asdict(s) for s in scores]).drop(columns="probabilities").to_csv(out / "video_clips.csv", index=False)
    (out / "video_metrics.json").write_text(json.dumps(report, indent=2) + "\n")


def format_report(r: dict[str, Any]) -> str:
    n = r["clips"]
    right = round(r["clip_accuracy"] * n)
    right_raw = round(r["clip_accuracy_raw"] * n)
    lines = [
        f"{r['model']} on {n} labelled clips in {r['videos']} ({r['seconds']} s)",
        f"clip accuracy {r['clip_accuracy']:.3f} ({right}/{n}; raw probabilities {r['clip_accuracy_raw']:.3f}, "
        f"{right_raw}/{n})",
        f"frame accuracy {r['frame_accuracy']:.3f} ({r['face_frames']} frames of the largest face)",
        f"{'class':<10}{'precision':>10}{'recall':>8}{'clips':>7}",
    ]
    for c, m in r["per_class"].items():
        if m["support"] or m["precision"]:
            lines.append(f"{c:<10}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['support']:>7d}")
    for clip in r["per_clip"]:
        mark = "ok " if clip["predicted"] == clip["label"] else "   "
        lines.append(f"{mark}{clip['file']}: {clip['label']} -> {clip['predicted'] or 'no face'}")
    if r["clips_without_face"]:
        lines.append(f"no face in: {', '.join(r['clips_without_face'])}")
    return "\n".join(lines)
