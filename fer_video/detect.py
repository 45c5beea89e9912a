"""Face detection: MTCNN (``fer_video.mtcnn``) over batches of RGB frames, on a downscaled copy of large frames."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from fer_video.mtcnn import MTCNNCascade
from fer_video.types import Detections

log = logging.getLogger(__name__)


class FaceDetector:
    """MTCNN (facenet-pytorch's networks; their weights ship inside its wheel, nothing is downloaded).

    ``max_side``: frames whose longer side exceeds it are downscaled before detection (MTCNN's cost grows with
    the pixel count) and the boxes scaled back. ``min_face`` is in pixels of the original frame.
    """

    def __init__(
        self,
        device: torch.device,
        min_face: int = 40,
        threshold: float = 0.9,
        max_side: int = 640,
        channels_last: bool = True,
        cascade: MTCNNCascade | None = None,
    ) -> None:
        """``cascade``: already loaded MTCNN networks to share (one per settings, loaded once)."""
        self.device = device
        self.min_face = min_face
        self.threshold = threshold
        self.max_side = max_side
        self.cascade = cascade or MTCNNCascade(device, channels_last=channels_last and device.type == "cpu")

    def scale_for(self, width: int, height: int) -> float:
        longer = max(width, height)
        return self.max_side / longer if self.max_side and longer > self.max_side else 1.0

    @torch.inference_mode()
    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """Faces in each of ``images`` (same-size RGB uint8 frames), boxes in original pixels, clipped."""
        if not images:
            return []
        min_face, threshold = self.min_face, self.threshold
        h, w = images[0].shape[:2]
        scale = self.scale_for(w, h)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            batch = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images])
        else:
            batch = np.stack(images)
        # MTCNN cannot look for faces smaller than 12 px; below that the pyramid is empty
        min_size = max(12, int(round(min_face * scale)))
        if min(batch.shape[1:3]) < min_size:
            return [Detections.empty() for _ in images]
        out = []
        for found in self.cascade.detect(batch, min_size):
            found = found[np.argsort(-(found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1]), kind="stable")]
            b, p = found[:, :4] / scale, found[:, 4].copy()  # largest face first, as facenet-pytorch orders them
            b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
            b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
            keep = (p >= threshold) & (b[:, 2] - b[:, 0] >= 2) & (b[:, 3] - b[:, 1] >= 2)
            out.append(Detections(b[keep], p[keep]))
        return out
