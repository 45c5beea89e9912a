"""One epoch of training, scoring on PublicTest, BatchNorm statistics for a weight average, class weights and the
logit-adjusted loss."""

from __future__ import annotations

import itertools
import math
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_video.predict import Batches, predict, predict_ten_crop
from fer_video.training.augment import Augmentation, student_teacher_inputs, training_inputs
from fer_video.training.distill import Distillation
from fer_video.training.metrics import confusion, summarize


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    data: Batches,
    batch_size: int,
    device: torch.device,
    g: torch.Generator,
    aug: Augmentation | None = None,
    distill: Distillation | None = None,
    autocast: Any = nullcontext,
    frozen: tuple[nn.Module, ...] = (),
) -> dict[str, float]:
    """One pass over ``data``, its batches varied as ``aug`` says; ``autocast`` () -> context manager wraps the
    forward pass (bf16 or none); ``frozen`` parts of the model stay in eval mode (their BatchNorm statistics do
    not move); ``aug`` None: the defaults."""
    aug = aug or Augmentation()
    model.train()
    for part in frozen:
        part.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels, idx in data.shuffled(batch_size, g):
        if len(labels) < 2:  # BatchNorm cannot train on one sample
            continue
        batch = student_teacher_inputs(images, g, aug, device)
        y = labels.to(device)
        with autocast():
            logits = model(batch.student).float()
        loss = batch.loss(criterion, logits, y)
        if distill is not None:
            targets = distill.soft_targets(batch.views, idx, batch)
            loss = (1 - distill.weight) * loss + distill.weight * distill.loss(logits, targets, idx, batch.perm)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1)}


def evaluate(
    model: nn.Module,
    data: Batches,
    classes: tuple[str, ...],
    device: torch.device,
    crop: int = 0,
    ten_crop: bool = True,
) -> dict[str, Any]:
    """Accuracy and per-class figures without and with flip TTA (the centre ``crop`` square when set; then, with
    ``ten_crop``, also with ten-crop TTA: ``accuracy_tencrop``, which costs five times the rest)."""
    probs, probs_tta = predict(model, data, device, crop=crop)
    labels = data.labels.numpy()
    plain = summarize(labels, probs.argmax(1), classes)
    with_tta = summarize(labels, probs_tta.argmax(1), classes)
    extra = {}
    if ten_crop and crop and crop < data.images.shape[-1]:
        ten = predict_ten_crop(model, data, device, crop)
        extra["accuracy_tencrop"] = summarize(labels, ten.argmax(1), classes)["accuracy"]
    return {
        "accuracy": plain["accuracy"],
        "accuracy_tta": with_tta["accuracy"],
        "macro_f1": plain["macro_f1"],
        "macro_f1_tta": with_tta["macro_f1"],
        "per_class": with_tta["per_class"],
        "confusion_tta": confusion(labels, probs_tta.argmax(1), len(classes)).tolist(),
        **extra,
    }


@torch.no_grad()
def recompute_bn(
    model: nn.Module,
    data: Batches,
    batch_size: int,
    device: torch.device,
    seed: int,
    aug: Augmentation,
    images: int,
) -> None:
    """BatchNorm running statistics of ``model`` (a weight average, whose own statistics mean nothing) recomputed
    as the plain average over ``images`` augmented training images: the batches its training saw."""
    g = torch.Generator().manual_seed(seed)
    count = math.ceil(min(images, len(data.labels)) / batch_size)
    inputs = (training_inputs(x, g, aug, device) for x, _, _ in itertools.islice(data.shuffled(batch_size, g), count))
    torch.optim.swa_utils.update_bn(inputs, model)


def class_weights(counts: np.ndarray, power: float) -> torch.Tensor:
    w = (1.0 / np.maximum(counts, 1)) ** power
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


class LogitAdjustedLoss(nn.Module):
    """Cross-entropy of ``logits + tau * log(prior)`` (Menon et al. 2021, "Long-tail learning via logit
    adjustment"; tau 1 is the balanced softmax): training pays for a rare class as if the classes were balanced,
    and inference takes the network's logits as they are, so their argmax favours no class for being common."""

    def __init__(
        self, counts: np.ndarray, tau: float, weight: torch.Tensor | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        prior = np.maximum(counts, 1) / np.maximum(counts, 1).sum()
        self.register_buffer("offset", tau * torch.log(torch.tensor(prior, dtype=torch.float32)))
        self.ce = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.ce(logits + self.offset, labels)
