"""Batch augmentation on whole uint8 batches: affine warp, flip, brightness/contrast, random erasing, random
crops, mixup; and the student's and teachers' views of a batch (``--video-aug``: video-like degradations for the
student only). ``Augmentation`` holds the training options that shape them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from fer_video.model import MEAN, STD
from fer_video.training.degrade import degrade


@dataclass(frozen=True)
class Augmentation:
    """How a training batch is varied: ``--augment`` (``full``: flip, rotation, scale, shift, brightness and
    contrast; ``flip``: the mirror image only), ``--erasing``, ``--video-aug``, ``--crop`` and ``--mixup``."""

    mode: str = "full"
    erasing: float = 0.5
    video_aug: float = 0.0
    crop: int = 0
    mixup: float = 0.0


MODES = ("full", "flip")


def augment(x: torch.Tensor, g: torch.Generator, erasing: float = 0.5, mode: str = "full") -> torch.Tensor:
    """Batch augmentation on float images in [0, 1]: flip, rotation +-10 deg, scale 0.9-1.1, shift +-10 %,
    brightness/contrast (``mode`` "flip": the flip only), random erasing (probability ``erasing``)."""
    n = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    if mode == "flip":
        x = torch.where((u(n) < 0.5).view(-1, 1, 1, 1), torch.flip(x, dims=[3]), x)
        return _erase(x, u, erasing, g) if erasing > 0 else x
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
    return _erase(x, u, erasing, g)


def _erase(x: torch.Tensor, u, erasing: float, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
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


def random_crop(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """A ``size`` x ``size`` square of each image at its own random position (``--crop``; 0 or the image's own
    size: unchanged)."""
    full = x.shape[-1]
    if not size or size >= full:
        return x
    n = x.shape[0]
    top = torch.randint(0, full - size + 1, (n,), generator=g)
    left = torch.randint(0, full - size + 1, (n,), generator=g)
    steps = torch.arange(size)
    rows = (top.view(n, 1) + steps).view(n, 1, size, 1).expand(n, x.shape[1], size, full)
    x = torch.gather(x, 2, rows)
    cols = (left.view(n, 1) + steps).view(n, 1, 1, size).expand(n, x.shape[1], size, size)
    return torch.gather(x, 3, cols)


def _augmented(images_u8: torch.Tensor, g: torch.Generator, aug: Augmentation) -> torch.Tensor:
    return random_crop(augment(images_u8.float() / 255.0, g, aug.erasing, aug.mode), aug.crop, g)


def training_inputs(
    images_u8: torch.Tensor, g: torch.Generator, aug: Augmentation, device: torch.device
) -> torch.Tensor:
    """A batch as the network trains on it: augmented, randomly cropped (``aug.crop``), normalised, channels_last
    (no video-like degradations)."""
    return _network_input(_augmented(images_u8, g, aug), device)


def _network_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return ((x - MEAN) / STD).to(device, memory_format=torch.channels_last)


@dataclass
class TrainingBatch:
    """One step's inputs: what the student sees, the clean views the teachers may see (by side in px: the
    student's crop and the whole face), and the mixup that made them (``lam`` of each image, ``1 - lam`` of
    image ``perm``; no ``perm``: not mixed)."""

    student: torch.Tensor
    views: dict[int, torch.Tensor] = field(default_factory=dict)
    lam: float = 1.0
    perm: torch.Tensor | None = None

    def mixed(self, values: torch.Tensor) -> torch.Tensor:
        """Per-image rows (targets, probabilities) mixed as the images were."""
        return values if self.perm is None else self.lam * values + (1 - self.lam) * values[self.perm.to(values.device)]

    def loss(self, criterion, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``criterion`` against the labels of both mixed images, weighted by their shares (Zhang et al. 2018)."""
        if self.perm is None:
            return criterion(logits, labels)
        perm = self.perm.to(labels.device)
        return self.lam * criterion(logits, labels) + (1 - self.lam) * criterion(logits, labels[perm])


def mixup_draw(n: int, alpha: float, g: torch.Generator) -> tuple[float, torch.Tensor]:
    """Mixup's share ``lam`` ~ Beta(alpha, alpha) and the partner of each image, both drawn from ``g`` (a resumed
    run draws the same)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    return float(np.random.default_rng(seed).beta(alpha, alpha)), torch.randperm(n, generator=g)


def student_teacher_inputs(
    images_u8: torch.Tensor, g: torch.Generator, aug: Augmentation, device: torch.device
) -> TrainingBatch:
    """The student's batch (augmented, randomly cropped to ``aug.crop`` px when set, mixed with ``aug.mixup``,
    then with video-like degradations on a share ``aug.video_aug`` of the images) and the teachers' clean views of
    the same images: the student's crop and the whole augmented face, mixed alike (a teacher labels the clean
    face; one trained on whole faces sees the whole face)."""
    whole = augment(images_u8.float() / 255.0, g, aug.erasing, aug.mode)
    x = random_crop(whole, aug.crop, g)
    lam, perm = 1.0, None
    if aug.mixup > 0:
        lam, perm = mixup_draw(len(x), aug.mixup, g)
        x = lam * x + (1 - lam) * x[perm]
        whole = lam * whole + (1 - lam) * whole[perm] if whole.shape != x.shape else x
    clean = _network_input(x, device)
    views = {x.shape[-1]: clean}
    if whole.shape[-1] != x.shape[-1]:
        views[whole.shape[-1]] = _network_input(whole, device)
    student = clean if aug.video_aug <= 0 else _network_input(degrade(x, g, aug.video_aug), device)
    return TrainingBatch(student, views, lam, perm)
