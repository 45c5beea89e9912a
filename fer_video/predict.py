"""Class probabilities for an in-memory set of face images (evaluation, distillation targets, benchmarks).

Inference-side: it never imports the training package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_video.model import MEAN, STD, ModelCard

if TYPE_CHECKING:
    from fer_video.training.data import FaceDataset


@dataclass
class Batches:
    """In-memory images (N,1,48,48) uint8 and labels, served as shuffled batches."""

    images: torch.Tensor
    labels: torch.Tensor

    @classmethod
    def from_dataset(cls, ds: FaceDataset, limit: int = 0) -> Batches:
        images, labels = ds.images, ds.labels
        if limit:
            idx = np.random.default_rng(0).permutation(len(labels))[:limit]
            images, labels = images[idx], labels[idx]
        return cls(torch.from_numpy(images).unsqueeze(1).contiguous(), torch.from_numpy(labels))

    def shuffled(self, batch_size: int, generator: torch.Generator):
        """Batches of (images, labels, indices into this set) in a random order."""
        order = torch.randperm(len(self.labels), generator=generator)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            yield self.images[idx], self.labels[idx], idx

    def ordered(self, batch_size: int):
        for start in range(0, len(self.labels), batch_size):
            yield self.images[start : start + batch_size], self.labels[start : start + batch_size]


def normalize(images_u8: torch.Tensor, mean: float = MEAN, std: float = STD) -> torch.Tensor:
    return (images_u8.float() / 255.0 - mean) / std


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The centre ``size`` x ``size`` square of (N, C, H, W) images (0 or >= H: unchanged)."""
    full = x.shape[-1]
    if not size or size >= full:
        return x
    top = (full - size) // 2
    return x[..., top : top + size, top : top + size]


def ten_crops(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """torchvision's TenCrop on a batch: the four corner squares and the centre one, each also mirrored."""
    full = x.shape[-1]
    far = full - size
    views = [x[..., t : t + size, l : l + size] for t, l in ((0, 0), (0, far), (far, 0), (far, far))]
    views.append(centre_crop(x, size))
    return views + [torch.flip(v, dims=[3]) for v in views]


@torch.inference_mode()
def predict(
    model: nn.Module,
    data: Batches,
    device: torch.device,
    batch_size: int = 256,
    *,
    temperature: float = 1.0,
    mean: float = MEAN,
    std: float = STD,
    crop: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (of logits / ``temperature``) without and with horizontal-flip test-time augmentation,
    of the centre ``crop`` square of each image when ``crop`` is set."""
    model.eval()
    plain, tta = [], []
    for images, _ in data.ordered(batch_size):
        x = centre_crop(normalize(images, mean, std), crop).to(device, memory_format=torch.channels_last)
        p = F.softmax(model(x) / temperature, 1)
        pf = F.softmax(model(torch.flip(x, dims=[3])) / temperature, 1)
        plain.append(p.cpu())
        tta.append(((p + pf) / 2).cpu())
    return torch.cat(plain).numpy(), torch.cat(tta).numpy()


@torch.inference_mode()
def predict_ten_crop(
    model: nn.Module,
    data: Batches,
    device: torch.device,
    crop: int,
    batch_size: int = 256,
    *,
    mean: float = MEAN,
    std: float = STD,
) -> np.ndarray:
    """Mean softmax probabilities over the ten ``crop`` x ``crop`` views of each image (``ten_crops``)."""
    model.eval()
    out = []
    for images, _ in data.ordered(batch_size):
        x = normalize(images, mean, std)
        views = [v.to(device, memory_format=torch.channels_last) for v in ten_crops(x, crop)]
        out.append(torch.stack([F.softmax(model(v), 1) for v in views]).mean(0).cpu())
    return torch.cat(out).numpy()


def card_crop(card: ModelCard) -> int:
    """The centre square a model with ``card`` sees of a face resized to ``card.resize_size`` (0: the whole face)."""
    return card.input_size if card.resize_size and card.resize_size != card.input_size else 0


def predict_loaded(
    model: nn.Module, card: ModelCard, data: Batches, device: torch.device, *, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """predict() for a model from load_model(): channels_last like its inputs, the normalisation and centre crop its
    card records (``data`` holds faces at the card's ``resize_size``, or ``input_size`` without one)."""
    model = model.to(memory_format=torch.channels_last)
    return predict(
        model, data, device, temperature=temperature, mean=card.mean[0], std=card.std[0], crop=card_crop(card)
    )
