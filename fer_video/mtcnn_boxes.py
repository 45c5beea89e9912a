"""MTCNN's box helpers, as facenet-pytorch 2.5.3 has them (``models/utils/detect_face.py``, MIT licence, (c) 2019
Timothy Esler): the same arithmetic in the same order, so the same boxes. Here so that detection does not import
facenet-pytorch's package, whose ``__init__`` imports all of torchvision (see ``fer_video.nets``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def bbreg(boxes: Tensor, reg: Tensor) -> Tensor:
    """Apply the networks' box regression ``reg`` (N, 4) to ``boxes`` (N, >=4), in place; returns ``boxes``."""
    if reg.shape[1] == 1:
        reg = torch.reshape(reg, (reg.shape[2], reg.shape[3]))
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    b1 = boxes[:, 0] + reg[:, 0] * w
    b2 = boxes[:, 1] + reg[:, 1] * h
    b3 = boxes[:, 2] + reg[:, 2] * w
    b4 = boxes[:, 3] + reg[:, 3] * h
    boxes[:, :4] = torch.stack([b1, b2, b3, b4]).permute(1, 0)
    return boxes


def generate_bounding_box(reg: Tensor, probs: Tensor, scale: float, thresh: float) -> tuple[Tensor, Tensor]:
    """P-Net's map cells scoring at least ``thresh`` as boxes in image pixels: (K, 9) rows of x1, y1, x2, y2,
    score and the four regression values, and each box's image index."""
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= thresh
    mask_inds = mask.nonzero()
    image_inds = mask_inds[:, 0]
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    bb = mask_inds[:, 1:].type(reg.dtype).flip(1)
    q1 = ((stride * bb + 1) / scale).floor()
    q2 = ((stride * bb + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1), image_inds


def _nms_numpy(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str) -> np.ndarray:
    if boxes.size == 0:
        return np.empty((0, 3))
    x1, y1, x2, y2 = (boxes[:, k].copy() for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = np.zeros_like(scores, dtype=np.int16)
    counter = 0
    while order.size > 0:
        i = order[-1]
        pick[counter] = i
        counter += 1
        rest = order[0:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        if method == "Min":
            overlap = inter / np.minimum(area[i], area[rest])
        else:
            overlap = inter / (area[i] + area[rest] - inter)
        order = order[np.where(overlap <= threshold)]
    return pick[:counter].copy()


def batched_nms_numpy(boxes: Tensor, scores: Tensor, idxs: Tensor, threshold: float, method: str) -> Tensor:
    """Non-maximum suppression within each image (``idxs``); ``method`` "Min" divides by the smaller area."""
    device = boxes.device
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)  # images moved apart, so their boxes never overlap
    keep = _nms_numpy((boxes + offsets[:, None]).cpu().numpy(), scores.cpu().numpy(), threshold, method)
    return torch.as_tensor(keep, dtype=torch.long, device=device)


def pad(boxes: Tensor, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer box corners clipped to a ``w`` x ``h`` image (1-based): y, ey, x, ex."""
    b = boxes.trunc().int().cpu().numpy()
    x, y, ex, ey = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    return y, ey, x, ex


def rerec(boxes: Tensor) -> Tensor:
    """Boxes made square around their centres (side: the longer side), in place; returns ``boxes``."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.repeat(2, 1).permute(1, 0)
    return boxes
