"""The stage seams: what a detector, a tracker and a classifier take and return, and the one factory that
builds them from ``Settings``.

``load_models(settings)`` loads the networks once (a ``Models``); ``Models.detector_for(settings)`` and
``Models.tracker_for(settings)`` give one stream its configured detector and tracker. To swap a stage, give
``Models`` another factory (``dataclasses.replace(models, tracker_for=...)``); no other module changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fer_video.device import Compute, apply_threads, choose_compute
from fer_video.errors import SettingsError
from fer_video.types import Detections, Settings

DEFAULT_MODEL = "fer2013_resnet18.pt"


@runtime_checkable
class Detector(Protocol):
    """Faces in each of a batch of same-size RGB uint8 frames, boxes in pixels of those frames."""

    def detect(self, images: list[np.ndarray]) -> list[Detections]: ...


@runtime_checkable
class Tracker(Protocol):
    """Gives faces stable ids: ``update`` on a detection frame, ``carry`` in between, ``reset`` after a cut."""

    def update(self, dets: Detections, time_s: float) -> Detections: ...

    def carry(self, time_s: float) -> Detections: ...

    def reset(self) -> None: ...


@runtime_checkable
class Classifier(Protocol):
    """Face crops -> class probabilities (N, len(classes)); ``describe`` is what the summary says of it."""

    classes: list[str]

    def crops(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray: ...

    def predict(self, crops: np.ndarray, tta: bool | None = None) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


def default_weights() -> Path:
    """``$FER_VIDEO_WEIGHTS`` if set, else the shipped model: ``fer_video/weights/`` in an installed wheel, the
    project's ``weights/`` folder in a source checkout (an editable install)."""
    env = os.environ.get("FER_VIDEO_WEIGHTS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parent
    installed = package / "weights" / DEFAULT_MODEL
    return installed if installed.is_file() else package.parent / "weights" / DEFAULT_MODEL


def tracker_from_settings(settings: Settings) -> Tracker:
    """The IoU tracker with the settings' matching threshold and memory."""
    from fer_video.track import FaceTracker

    return FaceTracker(settings.iou_match, settings.max_missed_s)


@dataclass
class Models:
    """The loaded networks and where they run; load once, reuse for many videos (the UI and batches do).

    ``detector_for`` and ``tracker_for`` build one stream's detector and tracker from its ``Settings``
    (the detector shares the loaded networks)."""

    compute: Compute
    classifier: Classifier
    weights: Path
    detector_for: Callable[[Settings], Detector]
    tracker_for: Callable[[Settings], Tracker] = field(default=tracker_from_settings)


def load_models(settings: Settings) -> Models:
    """The one factory: the device, the classifier from the weights, MTCNN; ``SettingsError`` on bad values."""
    from fer_video.classify import EmotionClassifier
    from fer_video.detect import FaceDetector
    from fer_video.mtcnn import MTCNNCascade

    settings.check()
    try:
        compute = choose_compute(settings.device)
    except ValueError as exc:
        raise SettingsError(f"--device: {exc}") from None
    apply_threads(compute)
    weights = Path(settings.weights) if settings.weights else default_weights()
    classifier = EmotionClassifier.from_weights(
        str(weights), compute.device, compute.classify_batch, settings.tta, settings.precision, settings.ten_crop
    )
    cascade = MTCNNCascade(compute.device, channels_last=compute.device.type == "cpu")

    def detector_for(s: Settings) -> Detector:
        return FaceDetector(compute.device, s.min_face, s.det_threshold, s.detect_max_side, cascade=cascade)

    return Models(compute, classifier, weights, detector_for)
