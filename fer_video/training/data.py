"""FER2013 loaders: the image-folder layout and the Kaggle CSV, both into uint8 arrays in memory.

The whole dataset is 35k 48x48 grey images (about 80 MB as uint8), so it is decoded once and kept as one
array; augmentation then runs on batches of tensors (see ``train.py``) instead of per-image PIL calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_video.errors import DataError

log = logging.getLogger(__name__)

#: FER2013's own label order (the ``emotion`` column of the CSV release).
FER2013_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48

#: split name -> (folder names tried in the image layout, ``Usage`` value in the CSV)
_SPLITS: dict[str, tuple[tuple[str, ...], str]] = {
    "train": (("train", "Training"), "Training"),
    "test": (("test", "PublicTest", "val"), "PublicTest"),
    "private": (("private", "PrivateTest"), "PrivateTest"),
}


@dataclass(frozen=True)
class FaceDataset:
    """Grey faces ``images`` (N, 48, 48) uint8 with ``labels`` (N,) int64 indexing ``classes``."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))


def parse_classes(spec: str | None) -> tuple[str, ...]:
    """``"angry,happy,sad,neutral"`` -> a tuple in that order; ``None`` -> the 7 FER2013 classes."""
    if not spec:
        return FER2013_CLASSES
    classes = tuple(c.strip().lower() for c in spec.split(",") if c.strip())
    unknown = [c for c in classes if c not in FER2013_CLASSES]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise DataError(f"--classes must be 2+ distinct names among {', '.join(FER2013_CLASSES)}; got {spec!r}")
    return classes


def load_dataset(path: str | Path, split: str = "train", classes: tuple[str, ...] = FER2013_CLASSES) -> FaceDataset:
    """Load ``split`` ("train", "test" = PublicTest, "private") from a folder or a ``fer2013.csv``.

    A folder may hold the split folders (``train/``, ``test/``) each with one sub-folder per class, or be
    the class folders themselves (then ``split`` is ignored). Images of classes not in ``classes`` are dropped.
    """
    path = Path(path)
    if split not in _SPLITS:
        raise DataError(f"unknown split {split!r}; use one of {', '.join(_SPLITS)}")
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        return _load_csv(path, split, classes)
    return _load_folder(path, split, classes)


def _find_split_dir(root: Path, split: str, classes: tuple[str, ...]) -> Path:
    if any((root / c).is_dir() for c in classes):
        return root
    for name in _SPLITS[split][0]:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root}: no '{_SPLITS[split][0][0]}/' folder and no class folders ({', '.join(classes)})")


def _load_folder(root: Path, split: str, classes: tuple[str, ...]) -> FaceDataset:
    folder = _find_split_dir(root, split, classes)
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            log.warning("%s: no folder for class %r", folder, name)
            continue
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in {".jpg", ".jpeg", ".png", ".bmp"}:
                continue
            img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise DataError(f"{file}: cannot read image")
            if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
                img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            images.append(img)
            labels.append(label)
    if not images:
        raise DataError(f"{folder}: no images found for classes {', '.join(classes)}")
    return FaceDataset(np.stack(images), np.asarray(labels, dtype=np.int64), classes, str(folder))


def _load_csv(path: Path, split: str, classes: tuple[str, ...]) -> FaceDataset:
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a FER2013 CSV ({exc})") from exc
    missing = {"emotion", "pixels"} - set(frame.columns)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected emotion,pixels,Usage")
    if "Usage" in frame.columns:
        frame = frame[frame["Usage"] == _SPLITS[split][1]]
    emotion = _check_labels(path, frame["emotion"])
    names = [FER2013_CLASSES[i] for i in emotion]
    keep = np.array([n in classes for n in names], dtype=bool)
    frame, emotion = frame[keep], emotion[keep]
    if frame.empty:
        raise DataError(f"{path}: no rows for split {split!r} and classes {', '.join(classes)}")
    pixels = np.stack(_parse_pixels(path, frame["pixels"]))
    labels = np.asarray([classes.index(FER2013_CLASSES[i]) for i in emotion], dtype=np.int64)
    return FaceDataset(pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels, classes, str(path))


def _line(index: int) -> int:
    """The CSV line of a row of ``pd.read_csv``'s default index: line 1 is the header."""
    return int(index) + 2


def _not_a_byte(values: list[str]) -> str:
    for v in values:
        try:
            if 0 <= int(v) <= 255:
                continue
        except ValueError:
            pass
        return v
    return "?"


def _check_labels(path: Path, emotion: pd.Series) -> np.ndarray:
    """The ``emotion`` column as int64, or a DataError naming the first row that is not a label 0-6."""
    values = pd.to_numeric(emotion, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~((values >= 0) & (values < len(FER2013_CLASSES)) & (values == np.floor(values)))
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: line {_line(emotion.index[first])}: emotion {emotion.iloc[first]} is not a FER2013 label "
            f"(0-{len(FER2013_CLASSES) - 1})"
        )
    return values.astype(np.int64)


def _parse_pixels(path: Path, cells: pd.Series) -> list[np.ndarray]:
    """Each ``pixels`` cell as IMAGE_SIZE**2 uint8 values, or a DataError naming the first bad row."""
    size = IMAGE_SIZE * IMAGE_SIZE
    rows = []
    for index, cell in zip(cells.index, cells.fillna("").astype(str), strict=True):
        values = cell.split()
        if len(values) != size:
            raise DataError(f"{path}: line {_line(index)}: 'pixels' has {len(values)} values, expected {size}")
        try:
            rows.append(np.asarray(values, dtype=np.uint8))
        except (ValueError, OverflowError):
            wrong = _not_a_byte(values)
            raise DataError(f"{path}: line {_line(index)}: 'pixels' holds {wrong!r}, not an integer 0-255") from None
    return rows
