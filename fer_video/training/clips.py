"""Training faces from labelled video clips: the crops inference itself gives the classifier.

Each clip of a labels table (``file,label[,subject]``, the table ``fer-video evaluate --videos`` reads) is
annotated with the default settings; the largest face (as the video evaluation picks it) is cropped on every
frame where it is seen, with the model card's crop rule, exactly as ``annotate`` crops it. The crops are cached
per clip in ``cache`` (keyed by the clip's size and modification time and the crop settings), so the folds of a
leave-one-subject-out run extract each clip once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_video.errors import DataError
from fer_video.types import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipFaces:
    """Grey crops ``images`` (N, size, size) uint8 of the clips' largest faces, ``labels`` (N,) int64 indexing
    the run's classes, and for each crop its clip ``files`` and ``subjects`` (the file name when the table has
    no subject column)."""

    images: np.ndarray
    labels: np.ndarray
    files: np.ndarray
    subjects: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def read_clip_table(labels: str | Path, classes: tuple[str, ...]) -> pd.DataFrame:
    """The labels table with a ``subject`` column (one line of error for labels outside ``classes``)."""
    from fer_video.evaluate_videos import read_labels

    table = read_labels(labels)
    if "subject" not in table.columns:
        table["subject"] = table["file"]
    table["subject"] = table["subject"].astype(str).str.strip()
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        raise DataError(f"{labels}: labels {', '.join(unknown)} are not among the classes {', '.join(classes)}")
    return table


#: the settings that decide a clip's largest face and its boxes (no other setting changes the crops)
CROP_SETTINGS = ("device", "detect_every", "detect_max_side", "min_face", "det_threshold", "iou_match", "max_missed_s")


def cache_key(path: Path, settings: Settings, weights: Path) -> str:
    """The cache name of a clip's crops: the file (name, size, time), the settings that decide its boxes and the
    card's crop rule."""
    stat = path.stat()
    card = json.loads(weights.with_suffix(".json").read_text())
    rule = {k: card.get(k) for k in ("input_size", "channels", "crop_margin", "crop_rule")}
    if card.get("resize_size"):
        rule["resize_size"] = card["resize_size"]
    boxes = {k: getattr(settings, k) for k in CROP_SETTINGS}
    text = json.dumps([path.name, stat.st_size, int(stat.st_mtime), boxes, rule], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def largest_face_crops(path: Path, settings: Settings, models) -> np.ndarray:
    """(N, size, size) uint8 crops of the clip's largest face, one per frame where it is seen."""
    import tempfile

    from fer_video.evaluate_videos import largest_face
    from fer_video.pipeline import annotate_video
    from fer_video.video import VideoReader

    with tempfile.TemporaryDirectory(prefix="fer-video-clip-") as work:
        result = annotate_video(path, work, settings, models=models)
        rows = largest_face(pd.read_csv(result.outputs["csv"], dtype={"face_id": "Int64"}))
    boxes = {int(r.frame): np.array([r.x1, r.y1, r.x2, r.y2]) for r in rows.itertuples()}
    crops = []
    for frame in VideoReader(path):
        if frame.index in boxes:
            crops.append(models.classifier.crops(frame.image, boxes[frame.index][None], whole=True)[0, :, :, 0])
    size = models.classifier.card.resize_size or models.classifier.card.input_size
    return np.stack(crops) if crops else np.zeros((0, size, size), np.uint8)


def load_clip_faces(
    videos: str | Path,
    labels: str | Path,
    classes: tuple[str, ...],
    cache: str | Path,
    exclude: tuple[str, ...] = (),
    weights: str | Path | None = None,
) -> ClipFaces:
    """The largest-face crops of every clip in ``labels`` whose subject is not in ``exclude``."""
    from fer_video.pipeline import load_models

    videos, cache = Path(videos), Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    table = read_clip_table(labels, classes)
    missing = [s for s in exclude if s not in set(table["subject"])]
    if missing:
        raise DataError(f"{labels}: no clips of the excluded subject(s) {', '.join(missing)}")
    settings = Settings(write_video=False, write_plot=False, **({"weights": str(weights)} if weights else {}))
    models = None
    parts: list[tuple[np.ndarray, str, str, int]] = []
    for row in table.itertuples(index=False):
        if row.subject in exclude:
            continue
        path = videos / row.file
        if not path.is_file():
            raise DataError(f"{path}: no such clip")
        if models is None:
            models = load_models(settings)
        file = cache / f"{path.name}.{cache_key(path, settings, Path(models.weights))}.npy"
        if file.is_file():
            crops = np.load(file)
        else:
            crops = largest_face_crops(path, settings, models)
            tmp = file.with_name(file.name + ".tmp.npy")
            np.save(tmp, crops)
            tmp.replace(file)
            log.info("clip faces: %s, %d crops (cached in %s)", row.file, len(crops), file)
        parts.append((crops, row.file, row.subject, classes.index(row.label)))
    if not parts:
        raise DataError(f"{labels}: no clips left to train on")
    return ClipFaces(
        images=np.concatenate([p[0] for p in parts]),
        labels=np.concatenate([np.full(len(p[0]), p[3], np.int64) for p in parts]),
        files=np.concatenate([np.full(len(p[0]), p[1], object) for p in parts]),
        subjects=np.concatenate([np.full(len(p[0]), p[2], object) for p in parts]),
    )
