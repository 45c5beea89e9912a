"""Face detection: facenet-pytorch's MTCNN over batches of RGB frames, on a downscaled copy of large frames."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch

from fer_video.types import Detections

log = logging.getLogger(__name__)


class FaceDetector:
    """MTCNN (weights ship inside the facenet-pytorch wheel; nothing is downloaded).

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
    ) -> None:
        from facenet_pytorch import MTCNN

        self.device = device
        self.channels_last = channels_last
        self.min_face = min_face
        self.threshold = threshold
        self.max_side = max_side
        self._mtcnn_by_min: dict[int, object] = {}
        self._mtcnn_cls = MTCNN

    def _mtcnn(self, min_size: int):
        if min_size not in self._mtcnn_by_min:
            mtcnn = self._mtcnn_cls(keep_all=True, min_face_size=min_size, device=self.device, post_process=False)
            if self.device.type == "cpu" and self.channels_last:
                # PyTorch's CPU max-pool is several times faster on channels_last tensors: -35 % CPU per frame
                # for the same boxes (benchmarks/micro.py detect, docs/performance.md)
                for net in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet):
                    net.to(memory_format=torch.channels_last)
            self._mtcnn_by_min[min_size] = mtcnn
        return self._mtcnn_by_min[min_size]

    def scale_for(self, width: int, height: int, max_side: int | None = None) -> float:
        max_side = self.max_side if max_side is None else max_side
        longer = max(width, height)
        return max_side / longer if max_side and longer > max_side else 1.0

    @torch.inference_mode()
    def detect(
        self,
        images: list[np.ndarray],
        min_face: int | None = None,
        threshold: float | None = None,
        max_side: int | None = None,
    ) -> list[Detections]:
        """Faces in each of ``images`` (same-size RGB uint8 frames), boxes in original pixels, clipped.

        ``min_face``, ``threshold`` and ``max_side`` override the constructor's values for this call (so one
        loaded detector serves runs with different settings)."""
        if not images:
            return []
        min_face = self.min_face if min_face is None else min_face
        threshold = self.threshold if threshold is None else threshold
        h, w = images[0].shape[:2]
        scale = self.scale_for(w, h, max_side)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            batch = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in images])
        else:
            batch = np.stack(images)
        # MTCNN cannot look for faces smaller than 12 px; below that the pyramid is empty
        min_size = max(12, int(round(min_face * scale)))
        if min(batch.shape[1:3]) < min_size:
            return [Detections.empty() for _ in images]
        boxes, probs = self._mtcnn(min_size).detect(batch)
        out = []
        for b, p in zip(boxes, probs, strict=True):
            if b is None:
                out.append(Detections.empty())
                continue
            b = np.asarray(b, dtype=np.float32).reshape(-1, 4) / scale
            p = np.asarray(p, dtype=np.float32).reshape(-1)
            b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
            b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
            keep = (p >= threshold) & (b[:, 2] - b[:, 0] >= 2) & (b[:, 3] - b[:, 1] >= 2)
            out.append(Detections(b[keep], p[keep]))
        return out
