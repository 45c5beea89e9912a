"""Knowledge distillation from fer-video models (Hinton et al.): soft targets computed once per teacher and
cached, or (``--teacher-mode consistent``) the teachers run on each augmented batch."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from fer_video.errors import WeightsError
from fer_video.model import MEAN, STD, ModelCard, load_model
from fer_video.predict import Batches, centre_crop, predict_loaded
from fer_video.training.checkpoint import atomic_save

if TYPE_CHECKING:
    from fer_video.training.augment import TrainingBatch

log = logging.getLogger(__name__)


@dataclass
class Distillation:
    """Soft targets from teacher models (at ``temperature``): fixed rows, one per training image, or the
    ``teachers`` themselves, run on each batch as the student sees it (consistent teaching)."""

    weight: float
    temperature: float
    targets: torch.Tensor | None = None  # (N, classes) float32, rows sum to 1, in the order of the training Batches
    teachers: list[nn.Module] = field(default_factory=list)  # eval mode, on the training device
    autocast: Any = nullcontext  # () -> context manager for the teachers' forward passes
    taught: torch.Tensor | None = None  # (N,) bool: the training images the teachers teach (None: all)
    sizes: list[int] = field(default_factory=list)  # each teacher's input side in px, to pick its view

    @torch.inference_mode()
    def soft_targets(
        self, views: torch.Tensor | dict[int, torch.Tensor], idx: torch.Tensor, batch: TrainingBatch | None = None
    ) -> torch.Tensor:
        """The teachers' mean softened probabilities for the batch (the training images ``idx``). ``views``: one
        tensor every teacher sees, or the batch's views by side (each teacher sees the one of its input size, or
        the centre square of that size of the whole face).
        Fixed targets are the rows of ``idx``, mixed as ``batch`` mixed its images; consistent teachers see the
        views, which are mixed already."""
        if self.targets is not None:
            device = views.device if isinstance(views, torch.Tensor) else next(iter(views.values())).device
            rows = self.targets[idx].to(device)
            return batch.mixed(rows) if batch is not None else rows
        probs = []
        with self.autocast():
            for k, teacher in enumerate(self.teachers):
                x = views if isinstance(views, torch.Tensor) else _view(views, self.sizes[k])
                probs.append(F.softmax(teacher(x).float() / self.temperature, 1))
        return torch.stack(probs).mean(0)

    def loss(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        idx: torch.Tensor | None = None,
        perm: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hinton et al.'s term: KL(teacher || student) of the softened distributions, scaled by T^2, averaged
        over the batch's taught images (``idx``: the batch's indices into the training set; ``perm``: mixup's
        partners, an image mixed with an untaught one is not taught)."""
        t = self.temperature
        student = F.log_softmax(logits.float() / t, 1)
        if self.taught is None or idx is None:
            return F.kl_div(student, targets.clone(), reduction="batchmean") * t * t
        taught = self.taught[idx]
        if perm is not None:
            taught = taught & taught[perm]
        taught = taught.to(logits.device)
        per_image = F.kl_div(student, targets.clone(), reduction="none").sum(1)
        return (per_image * taught).sum() / taught.sum().clamp(min=1) * t * t


def _view(views: dict[int, torch.Tensor], size: int) -> torch.Tensor:
    """The view of side ``size``, else the centre square of that side of the whole face (what a model trained on
    centre squares sees at inference)."""
    return views[size] if size in views else centre_crop(views[max(views)], size)


def load_teacher(path: str, classes: tuple[str, ...], size: int, device: torch.device) -> tuple[nn.Module, ModelCard]:
    """A fer-video model that can teach this run: same classes, one channel, ``size`` px (clear error otherwise)."""
    model, card = load_model(path, device)
    if tuple(card.classes) != tuple(classes) or card.channels != 1 or (card.resize_size or card.input_size) != size:
        raise WeightsError(
            f"{path}: --teacher model has classes {','.join(card.classes)}, {card.channels} channel(s), "
            f"{card.input_size} px; this run needs {','.join(classes)}, 1 channel, {size} px"
        )
    return model.to(memory_format=torch.channels_last).eval(), card


def teacher_record(path: str, card: ModelCard) -> dict[str, Any]:
    """Who taught a run, for its model card."""
    return {
        "file": str(path),
        "name": card.name,
        "sha256": card.sha256,
        "accuracy_tta": card.metrics.get("accuracy_tta"),
    }


def consistent_teachers(
    paths: list[str], classes: tuple[str, ...], size: int, device: torch.device
) -> tuple[list[nn.Module], list[dict[str, Any]], list[int]]:
    """The teachers as models, for ``--teacher-mode consistent``: they see the student's batches, normalised as
    this run normalises, so each must expect the same normalisation. Also each one's input side: a model of whole
    faces sees the whole augmented face, one trained on centre squares (``--crop``) the student's crop."""
    models, teachers, sizes = [], [], []
    for path in paths:
        model, card = load_teacher(path, classes, size, device)
        if (card.mean[0], card.std[0]) != (MEAN, STD):
            raise WeightsError(
                f"{path}: --teacher model expects mean {card.mean[0]}, std {card.std[0]}; "
                f"--teacher-mode consistent needs {MEAN}, {STD} (use --teacher-mode fixed)"
            )
        models.append(model)
        teachers.append(teacher_record(path, card))
        sizes.append(card.input_size)
    return models, teachers, sizes


def teacher_targets(
    paths: list[str], data: Batches, classes: tuple[str, ...], temperature: float, device: torch.device, cache: Path
) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """The teachers' mean softened probabilities on ``data`` (plain and mirrored image averaged), and who they are.

    Each teacher's probabilities are computed once and kept in the folder ``cache`` (teacher-<sha256>-T<t>.pt):
    a resumed run, or another run with the same cache folder, reuses them while the teacher's weights, the
    temperature and the images match.
    """
    images = hashlib.sha1(data.images.numpy().tobytes()).hexdigest()  # the same images in the same order
    shares, teachers = [], []
    for path in paths:
        model, card = load_teacher(path, classes, data.images.shape[-1], device)
        teachers.append(teacher_record(path, card))
        key = json.dumps({"teacher": card.sha256, "temperature": temperature, "images": images})
        file = cache / f"teacher-{card.sha256[:16]}-T{temperature:g}.pt"
        saved = torch.load(file, map_location="cpu", weights_only=True) if file.is_file() else {}
        if saved.get("key") == key and saved["targets"].shape == (len(data.labels), len(classes)):
            log.info("teacher targets of %s from %s", path, file)
            shares.append(saved["targets"])
            continue
        log.info(
            "computing teacher targets: %s on %d images, plain and mirrored (cached in %s)",
            path,
            len(data.labels),
            file,
        )
        t0 = time.time()
        probs = torch.from_numpy(predict_loaded(model, card, data, device, temperature=temperature)[1])
        atomic_save({"key": key, "targets": probs}, file)
        log.info("teacher targets of %s at T=%g (%.0fs)", path, temperature, time.time() - t0)
        shares.append(probs)
    return torch.stack(shares).mean(0), teachers
