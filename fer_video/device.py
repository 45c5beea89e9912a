"""Device and batch sizes, chosen in one place for inference and training."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Compute:
    """Where the networks run and how many items go into one forward pass."""

    device: torch.device
    detect_batch: int  # frames per MTCNN call
    classify_batch: int  # face crops per ResNet forward pass


def resolve_device(requested: str | None = "auto", cuda_available: bool | None = None) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cpu``/``cuda``/``cuda:N`` as asked (clear error if absent)."""
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    name = (requested or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    if name.startswith("cuda") and not has_cuda:
        raise ValueError(f"device {requested!r} asked for but CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {requested!r} (use auto, cpu or cuda[:N])") from exc


def choose_compute(requested: str | None = "auto", cuda_available: bool | None = None) -> Compute:
    """Device plus batch sizes: a GPU takes many frames per call; on a CPU small batches keep latency and memory low."""
    device = resolve_device(requested, cuda_available)
    if device.type == "cuda":
        return Compute(device, detect_batch=32, classify_batch=256)
    return Compute(device, detect_batch=8, classify_batch=64)
