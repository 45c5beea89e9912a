"""Video-like degradations of training faces: what a face looks like after a camera, a codec, MTCNN and the
resize to 48 px (``fer-video train --video-aug P``).

Each image is degraded with probability ``p``; a degraded image gets each of these with probability one half,
in this order: a small out-of-plane turn (perspective), down- then up-scaling, blur (Gaussian or motion),
gamma / low light, sensor noise, JPEG compression. All draws come from the generator ``g`` (deterministic).
Inputs and outputs are float images in [0, 1], shape (N, 1, H, W).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

_SIZES = (12, 16, 20, 24, 32)  # down-scaling targets in px (of a 48 px face)
_KERNEL = 7  # blur kernel side


def degrade(x: torch.Tensor, g: torch.Generator, p: float) -> torch.Tensor:
    """A degraded copy of the batch ``x`` (N, 1, H, W) in [0, 1]; ``p``: share of images degraded."""
    n = x.shape[0]
    if p <= 0 or n == 0:
        return x
    chosen = torch.rand(n, generator=g) < p

    def pick() -> torch.Tensor:  # the images that get one step: chosen, and a coin flip each
        return chosen & (torch.rand(n, generator=g) < 0.5)

    x = _turn(x, pick(), g)
    x = _rescale(x, pick(), g)
    x = _blur(x, pick(), g)
    x = _light(x, pick(), g)
    x = _noise(x, pick(), g)
    return _jpeg(x, pick(), g)


def _where(mask: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), new, old)


def _turn(x: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A head turned a little about the vertical axis: one side foreshortened (a perspective warp)."""
    n, _, h, w = x.shape
    a = (torch.rand(n, generator=g) * 2 - 1) * 0.3  # perspective strength: about +-15 degrees of yaw
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    denom = 1 + a.view(-1, 1, 1) * xs  # points on the far side lie deeper and look smaller
    grid = torch.stack([xs / denom * (1 + a.abs().view(-1, 1, 1) / 2), ys / denom], dim=-1)
    turned = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return _where(mask, turned, x)


def _rescale(x: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A small face in the frame: down-scaled (area) to 12-32 px, then up-scaled back (bilinear)."""
    size = x.shape[-1]
    which = (torch.rand(x.shape[0], generator=g) * len(_SIZES)).long()
    out = x
    for k, small in enumerate(_SIZES):
        sel = mask & (which == k)
        if sel.any():
            low = F.interpolate(x[sel], size=(small, small), mode="area")
            up = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
            out = out.clone() if out is x else out
            out[sel] = up
    return out


def _blur(x: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Out of focus (Gaussian, sigma 0.4-1.4 px) or moving (a line 3-7 px long at any angle), half each."""
    n = x.shape[0]
    r = _KERNEL // 2
    ys, xs = torch.meshgrid(torch.arange(-r, r + 1.0), torch.arange(-r, r + 1.0), indexing="ij")
    sigma = (0.4 + torch.rand(n, generator=g)).view(-1, 1, 1)
    gauss = torch.exp(-(xs**2 + ys**2) / (2 * sigma**2))
    angle = (torch.rand(n, generator=g) * math.pi).view(-1, 1, 1)
    length = (1.5 + torch.rand(n, generator=g) * 2).view(-1, 1, 1)  # half length 1.5-3.5 px
    along = xs * torch.cos(angle) + ys * torch.sin(angle)
    across = -xs * torch.sin(angle) + ys * torch.cos(angle)
    motion = ((along.abs() <= length) & (across.abs() <= 0.5)).float()
    kernel = torch.where((torch.rand(n, generator=g) < 0.5).view(-1, 1, 1), gauss, motion)
    kernel = kernel / kernel.sum(dim=(1, 2), keepdim=True)
    padded = F.pad(x.transpose(0, 1), (r, r, r, r), mode="replicate")  # (1, N, H, W): one group per image
    blurred = F.conv2d(padded, kernel.unsqueeze(1), groups=n).transpose(0, 1)
    return _where(mask, blurred, x)


def _light(x: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Gamma 0.6-1.65 and, for half of them, a dim room (x 0.35-1)."""
    n = x.shape[0]
    gamma = torch.exp((torch.rand(n, generator=g) * 2 - 1) * 0.5).view(-1, 1, 1, 1)
    dim = torch.where(torch.rand(n, generator=g) < 0.5, 0.35 + torch.rand(n, generator=g) * 0.65, torch.ones(n))
    lit = x.clamp(0, 1) ** gamma * dim.view(-1, 1, 1, 1)
    return _where(mask, lit, x)


def _noise(x: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Sensor noise: Gaussian, sigma 0.01-0.05."""
    sigma = (0.01 + torch.rand(x.shape[0], generator=g) * 0.04).view(-1, 1, 1, 1)
    noisy = (x + torch.randn(x.shape, generator=g) * sigma).clamp(0, 1)
    return _where(mask, noisy, x)


def _jpeg(x: torch.Tensor, mask: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Codec artefacts: JPEG at quality 15-60 (OpenCV), as blocky as a low-bit-rate video."""
    quality = (15 + torch.rand(x.shape[0], generator=g) * 45).long()
    idx = torch.nonzero(mask).flatten().tolist()
    if not idx:
        return x
    out = x.clone()
    for i in idx:
        img = (x[i, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality[i])])
        if ok:
            dec = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_GRAYSCALE)
            out[i, 0] = torch.from_numpy(dec).float() / 255.0
    return out
