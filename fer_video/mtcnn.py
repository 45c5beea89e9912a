"""MTCNN's three-stage cascade over a batch of frames, with facenet-pytorch's networks and box helpers
(``fer_video.nets`` and ``fer_video.mtcnn_boxes``: the same, without importing facenet-pytorch's package).

facenet-pytorch's own ``detect_face`` resamples with ``torch.nn.functional.interpolate(mode="area")`` (an
adaptive average pool): once per pyramid scale on the whole batch and once per candidate box (about a hundred
per frame before the second stage), a third or more of detection time in CPU profiles. Here the same averages
come from one integral image per frame (``cv2.integral``) and four gathers for all boxes at once: the same
windows, the same means, so the same boxes (tests/test_mtcnn.py compares with facenet-pytorch's
``MTCNN.detect``), for 10-26 % less detection CPU (docs/performance.md). The networks, thresholds, box
regression and non-maximum suppression are facenet-pytorch's, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from fer_video.mtcnn_boxes import batched_nms_numpy, bbreg, generate_bounding_box, pad, rerec
from fer_video.nets import BatchedNMS, mtcnn_nets


@dataclass(frozen=True)
class CascadeParams:
    """facenet-pytorch's MTCNN defaults: stage thresholds and the pyramid's scale factor."""

    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709


class MTCNNCascade:
    """P-Net on an image pyramid -> R-Net on 24 px crops -> O-Net on 48 px crops; boxes with scores."""

    def __init__(self, device: torch.device, channels_last: bool = True, params: CascadeParams = CascadeParams()):
        self.device = device
        self.params = params
        self.pnet, self.rnet, self.onet = mtcnn_nets()  # facenet-pytorch's networks, weights from its wheel
        self.batched_nms = BatchedNMS()
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        for net in (self.pnet, self.rnet, self.onet):
            # PyTorch's CPU max-pool is several times faster on channels_last tensors (docs/performance.md)
            net.to(device, memory_format=memory_format)
        self.memory_format = memory_format

    def _net_input(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) float32 pixels (a fresh array, normalised in place) -> the networks' NCHW tensor (on the
        CPU in channels_last, the layout the pixels already have: no copy)."""
        images -= 127.5
        images *= 0.0078125
        x = torch.from_numpy(images).permute(0, 3, 1, 2)
        return x.to(self.device).contiguous(memory_format=self.memory_format)

    def _crops(self, sums: np.ndarray, boxes: torch.Tensor, inds: torch.Tensor, size: int) -> torch.Tensor:
        """The (clipped) box regions resized to ``size`` px (as facenet-pytorch crops them), the next net's input."""
        h, w = sums.shape[1] - 1, sums.shape[2] - 1
        y, ey, x, ex = pad(boxes, w, h)
        return self._net_input(area_resize_regions(sums, inds.numpy(), y - 1, ey, x - 1, ex, size, size))

    def _refine(
        self,
        net: torch.nn.Module,
        sums: np.ndarray,
        boxes: torch.Tensor,
        inds: torch.Tensor,
        size: int,
        threshold: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Score the candidates inside the frame with ``net`` on ``size`` px crops; keep those above ``threshold``:
        their boxes (with the new score), image indices and box regression."""
        h, w = sums.shape[1] - 1, sums.shape[2] - 1
        boxes, inds = _inside(boxes, inds, w, h)
        if not len(boxes):
            return boxes, inds, torch.zeros((0, 4))
        out = net(self._crops(sums, boxes, inds, size))  # R-Net: (regression, probs); O-Net: (.., landmarks, probs)
        reg, score = out[0].float().cpu(), out[-1][:, 1].float().cpu()
        keep = score > threshold
        return torch.cat([boxes[keep, :4], score[keep, None]], dim=1), inds[keep], reg[keep]

    @torch.inference_mode()
    def detect(self, frames: np.ndarray, min_size: int) -> list[np.ndarray]:
        """Faces of at least ``min_size`` px in each of ``frames`` ((N, H, W, 3) uint8 RGB): (k, 5) arrays of
        x1, y1, x2, y2, score."""
        th = self.params.thresholds
        n, h, w = frames.shape[:3]
        sums = integral_images(frames)
        scale = 12.0 / min_size
        scales = []
        shortest = min(h, w) * scale
        while shortest >= 12:
            scales.append(scale)
            scale *= self.params.factor
            shortest *= self.params.factor

        boxes_all, inds_all = [], []
        for scale in scales:
            level = area_resize_frames(sums, int(h * scale + 1), int(w * scale + 1))
            reg, probs = self.pnet(self._net_input(level))
            boxes, inds = generate_bounding_box(reg.float().cpu(), probs[:, 1].float().cpu(), scale, th[0])
            pick = self.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.5)  # within each scale and image
            boxes_all.append(boxes[pick])
            inds_all.append(inds[pick])
        if not boxes_all:
            return [np.zeros((0, 5), np.float32) for _ in range(n)]
        boxes, inds = torch.cat(boxes_all), torch.cat(inds_all)
        pick = self.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)  # within each image
        boxes, inds = boxes[pick], inds[pick]
        regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = torch.stack(
            [
                boxes[:, 0] + boxes[:, 5] * regw,
                boxes[:, 1] + boxes[:, 6] * regh,
                boxes[:, 2] + boxes[:, 7] * regw,
                boxes[:, 3] + boxes[:, 8] * regh,
                boxes[:, 4],
            ],
            dim=1,
        )
        boxes = rerec(boxes)

        boxes, inds, reg = self._refine(self.rnet, sums, boxes, inds, 24, th[1])  # second stage: R-Net
        if len(boxes):
            pick = self.batched_nms(boxes[:, :4], boxes[:, 4], inds, 0.7)
            boxes, inds, reg = boxes[pick], inds[pick], reg[pick]
            boxes = rerec(bbreg(boxes, reg))

        boxes, inds, reg = self._refine(self.onet, sums, boxes, inds, 48, th[2])  # third stage: O-Net
        if len(boxes):
            boxes = bbreg(boxes, reg)
            pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], inds, 0.7, "Min")
            boxes, inds = boxes[pick], inds[pick]

        boxes_np, inds_np = boxes.numpy().astype(np.float32), inds.numpy()
        return [boxes_np[inds_np == i] for i in range(n)]


def _inside(boxes: torch.Tensor, inds: torch.Tensor, w: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop candidates with no pixel inside the frame (facenet-pytorch skips their crops too)."""
    if not len(boxes):
        return boxes, inds
    y, ey, x, ex = pad(boxes.clone(), w, h)
    keep = torch.from_numpy((ey > y - 1) & (ex > x - 1))
    return boxes[keep], inds[keep]


def integral_images(frames: np.ndarray) -> np.ndarray:
    """(N, H+1, W+1, C) integral images of uint8 ``frames``: exact pixel sums, in int32 when every sum fits (up to
    3840x2160: half the memory traffic of float64 in the gathers that follow), else float64 (exact below 2**53;
    OpenCV has no int64 integral)."""
    n, h, w, c = frames.shape
    depth, dtype = (cv2.CV_32S, np.int32) if h * w * 255 < 2**31 else (cv2.CV_64F, np.float64)
    sums = np.empty((n, h + 1, w + 1, c), dtype)
    for i, f in enumerate(frames):
        sums[i] = cv2.integral(f, sdepth=depth).reshape(h + 1, w + 1, c)
    return sums


def area_resize_frames(sums: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Whole images resized to (out_h, out_w) by area averaging (as ``area_resize_regions``), rows then columns."""
    h, w = sums.shape[1] - 1, sums.shape[2] - 1
    r0, r1 = (v[0] for v in _windows(np.zeros(1, np.int64), np.array([h]), out_h))
    c0, c1 = (v[0] for v in _windows(np.zeros(1, np.int64), np.array([w]), out_w))
    rows = sums.take(r1, 1) - sums.take(r0, 1)  # (N, out_h, W+1, C): sums over row windows
    total = (rows.take(c1, 2) - rows.take(c0, 2)).astype(np.float32)
    total *= (1.0 / ((r1 - r0)[:, None] * (c1 - c0)[None, :])).astype(np.float32)[None, :, :, None]
    return total


def area_resize_regions(
    sums: np.ndarray,
    index: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    out_h: int,
    out_w: int,
) -> np.ndarray:
    """Regions ``[y0:y1, x0:x1]`` of images ``index`` resized to (out_h, out_w) by area averaging, all at once.

    ``sums`` are the images' integral images (N, H+1, W+1, C). Output pixel (i, j) is the mean over rows
    ``floor(i*h/out_h) .. ceil((i+1)*h/out_h)`` and the matching columns: PyTorch's adaptive average pooling,
    which is what ``interpolate(mode="area")`` runs. Returns (K, out_h, out_w, C) float32.
    """
    y0, y1, x0, x1 = (np.asarray(v, dtype=np.int64) for v in (y0, y1, x0, x1))
    rows_start, rows_end = _windows(y0, y1 - y0, out_h)
    cols_start, cols_end = _windows(x0, x1 - x0, out_w)
    _, rows, cols, channels = sums.shape
    flat = sums.reshape(-1, channels)
    base = (np.asarray(index, dtype=np.int64) * rows * cols)[:, None, None]
    r0, r1 = base + rows_start[:, :, None] * cols, base + rows_end[:, :, None] * cols
    c0, c1 = cols_start[:, None, :], cols_end[:, None, :]
    # one flat take per corner of every window (much faster than 3-D fancy indexing)
    total = flat.take(r1 + c1, 0) - flat.take(r0 + c1, 0) - flat.take(r1 + c0, 0) + flat.take(r0 + c0, 0)
    total = total.astype(np.float32)
    count = (rows_end - rows_start)[:, :, None] * (cols_end - cols_start)[:, None, :]
    total *= (1.0 / count).astype(np.float32)[..., None]
    return total


def _windows(start: np.ndarray, length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Per region (K,) the (K, out) first and one-past-last input index of each output pixel's window."""
    i = np.arange(out, dtype=np.int64)[None, :]
    length = length[:, None]
    first = (i * length) // out
    last = -((-(i + 1) * length) // out)  # ceil
    return start[:, None] + first, start[:, None] + last
