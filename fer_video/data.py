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
    names = [FER2013_CLASSES[i] for i in frame["emotion"].astype(int)]
    keep = np.array([n in classes for n in names], dtype=bool)
    frame = frame[keep]
    if frame.empty:
        raise DataError(f"{path}: no rows for split {split!r} and classes {', '.join(classes)}")
    pixels = np.stack([np.asarray(p.split(), dtype=np.uint8) for p in frame["pixels"]])
    if pixels.shape[1] != IMAGE_SIZE * IMAGE_SIZE:
        raise DataError(f"{path}: each 'pixels' cell must hold {IMAGE_SIZE * IMAGE_SIZE} values")
    labels = np.asarray([classes.index(FER2013_CLASSES[i]) for i in frame["emotion"].astype(int)], dtype=np.int64)
    return FaceDataset(pixels.reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels, classes, str(path))
