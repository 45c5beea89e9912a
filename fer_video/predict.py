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
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities (of logits / ``temperature``) without and with horizontal-flip test-time augmentation."""
    model.eval()
    plain, tta = [], []
    for images, _ in data.ordered(batch_size):
        x = normalize(images, mean, std).to(device, memory_format=torch.channels_last)
        p = F.softmax(model(x) / temperature, 1)
        pf = F.softmax(model(torch.flip(x, dims=[3])) / temperature, 1)
        plain.append(p.cpu())
        tta.append(((p + pf) / 2).cpu())
    return torch.cat(plain).numpy(), torch.cat(tta).numpy()


def predict_loaded(
    model: nn.Module, card: ModelCard, data: Batches, device: torch.device, *, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """predict() for a model from load_model(): channels_last like its inputs, the normalisation its card records."""
    model = model.to(memory_format=torch.channels_last)
    return predict(model, data, device, temperature=temperature, mean=card.mean[0], std=card.std[0])
