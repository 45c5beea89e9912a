"""Batch augmentation on whole uint8 batches: affine warp, flip, brightness/contrast, random erasing; and the
student's and teachers' views of a batch (``--video-aug``: video-like degradations for the student only)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fer_video.model import MEAN, STD
from fer_video.training.degrade import degrade


def augment(x: torch.Tensor, g: torch.Generator, erasing: float = 0.5) -> torch.Tensor:
    """Batch augmentation on float images in [0, 1]: flip, rotation +-10 deg, scale 0.9-1.1, shift +-10 %,
    brightness/contrast, random erasing (probability ``erasing``)."""
    n = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    angle = (u(n) * 2 - 1) * math.radians(10)
    scale = 0.9 + u(n) * 0.2
    flip = torch.where(u(n) < 0.5, -1.0, 1.0)
    shift = (u(n, 2) * 2 - 1) * 0.2  # affine_grid units: the image spans [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = 0.7 + u(n, 1, 1, 1) * 0.6
    brightness = (u(n, 1, 1, 1) * 2 - 1) * 0.15
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean + brightness).clamp(0, 1)
    # random erasing: one rectangle of 2-20 % of the area in a share of the images, filled with noise
    size = x.shape[-1]
    area = (0.02 + u(n) * 0.18) * size * size
    aspect = torch.exp((u(n) * 2 - 1) * math.log(3))
    h = (area * aspect).sqrt().clamp(1, size).long()
    w = (area / aspect).sqrt().clamp(1, size).long()
    top = (u(n) * (size - h + 1)).long()
    left = (u(n) * (size - w + 1)).long()
    rows = torch.arange(size).view(1, size, 1)
    cols = torch.arange(size).view(1, 1, size)
    mask = (
        (rows >= top.view(-1, 1, 1))
        & (rows < (top + h).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1))
        & (cols < (left + w).view(-1, 1, 1))
        & (u(n) < erasing).view(-1, 1, 1)
    )
    x = torch.where(mask.unsqueeze(1), torch.rand(x.shape, generator=g), x)
    return x


def training_inputs(images_u8: torch.Tensor, g: torch.Generator, erasing: float, device: torch.device) -> torch.Tensor:
    """A batch as the network trains on it: augmented, normalised, channels_last on ``device``."""
    return _network_input(augment(images_u8.float() / 255.0, g, erasing), device)


def _network_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return ((x - MEAN) / STD).to(device, memory_format=torch.channels_last)


def student_teacher_inputs(
    images_u8: torch.Tensor, g: torch.Generator, erasing: float, video_aug: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The student's batch (augmented, then with video-like degradations on a share ``video_aug`` of the images)
    and the teacher's view of the same images (augmented only: a teacher labels the clean face)."""
    x = augment(images_u8.float() / 255.0, g, erasing)
    clean = _network_input(x, device)
    if video_aug <= 0:
        return clean, clean
    return _network_input(degrade(x, g, video_aug), device), clean
