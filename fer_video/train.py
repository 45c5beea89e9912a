"""Train the ResNet18 emotion model on FER2013 (CPU or GPU), checkpointing every epoch, resumable.

Shape follows torchvision's reference script: ``get_args_parser()``, ``train_one_epoch()``, ``evaluate()``,
checkpoints with optimizer and scheduler state, ``--resume``. The dataset lives in memory as one uint8
tensor and augmentation runs on whole batches (affine warp, flip, brightness/contrast, random erasing).
``--teacher`` adds knowledge distillation from fer-video models (soft targets computed once per teacher and
cached, or, with ``--teacher-mode consistent``, computed on each augmented batch); ``--swa`` averages the
weights of the last epochs (stochastic weight averaging). ``--precision auto`` trains in bf16 autocast where the
hardware does bf16 natively (device.py decides).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import math
import shlex
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_video.data import FaceDataset, load_dataset, parse_classes
from fer_video.degrade import degrade
from fer_video.device import autocast_dtype, resolve_device
from fer_video.errors import SettingsError, WeightsError
from fer_video.metrics import confusion, save_confusion, summarize
from fer_video.model import ModelCard, build_model, export_model, load_imagenet_init, load_model

log = logging.getLogger(__name__)

MEAN, STD = 0.5, 0.25


def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(description="Train the fer-video ResNet18 on FER2013")
    p.add_argument("--data", required=True, help="FER2013 folder (train/ and test/) or fer2013.csv")
    p.add_argument("--classes", default=None, help="comma-separated subset, e.g. angry,happy,sad,neutral")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the one-cycle schedule (SGD)")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument(
        "--class-weight-power",
        type=float,
        default=0.5,
        help="loss weight of a class = (1/count)^power, normalised; 0 turns weighting off",
    )
    p.add_argument("--stem", choices=["3x3s1", "imagenet"], default="3x3s1")
    p.add_argument(
        "--init",
        default="scratch",
        metavar="scratch|imagenet|PATH",
        help="imagenet: torchvision's weights from the local torch hub cache (never downloaded); "
        "PATH: a fer-video model (.pt with its .json) to continue from, e.g. a warm restart of a finished run",
    )
    p.add_argument("--erasing", type=float, default=0.5, help="probability of random erasing per image")
    p.add_argument(
        "--video-aug",
        type=float,
        default=0.0,
        metavar="P",
        help="share of training images given video-like degradations (turn, down-scaling, blur, light, noise, "
        "JPEG); teachers still see the clean image (default 0: off)",
    )
    p.add_argument(
        "--teacher",
        default=None,
        metavar="PATH[,PATH...]",
        help="distil from these fer-video models: their mean flip-averaged soft predictions on the training "
        "images (computed once per teacher, cached in --teacher-cache) join the labels as targets",
    )
    p.add_argument(
        "--teacher-cache",
        default=None,
        metavar="DIR",
        help="with --teacher: folder for each teacher's soft targets (default: the run folder); "
        "runs that share one compute each teacher once",
    )
    p.add_argument(
        "--distill-weight", type=float, default=0.5, help="with --teacher: share of the distillation term in the loss"
    )
    p.add_argument("--distill-temperature", type=float, default=2.0, help="with --teacher: softmax temperature")
    p.add_argument(
        "--teacher-mode",
        choices=["fixed", "consistent"],
        default="fixed",
        help="with --teacher: fixed: targets from the clean training images, computed once (cheap); consistent: "
        "the teachers see the same augmented batch as the student, every step (Beyer et al. 2022; each teacher "
        "adds one forward pass per step)",
    )
    p.add_argument(
        "--swa",
        type=int,
        default=0,
        metavar="N",
        help="stochastic weight averaging: the last N epochs train at the constant --swa-lr (after the one-cycle "
        "schedule of the first epochs-N) and their end-of-epoch weights are averaged; the average, BatchNorm "
        "statistics recomputed on training batches, is scored every epoch and exported when it is the best",
    )
    p.add_argument("--swa-lr", type=float, default=0.01, help="with --swa: the constant learning rate of those epochs")
    p.add_argument("--out", default="runs/fer2013_resnet18", help="run folder: checkpoints, logs, plots, model")
    p.add_argument("--name", default=None, help="model name in the exported card (default: run folder name)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument(
        "--epochs-this-run",
        type=int,
        default=0,
        metavar="N",
        help="stop after N epochs of this run (the schedule still spans --epochs); --resume continues",
    )
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        choices=["auto", "bf16", "fp32"],
        default="auto",
        help="autocast of the training forward passes (the student's and consistent teachers'); auto: bf16 where "
        "the hardware does it natively (a CPU with AMX, a bf16 GPU), fp32 elsewhere; evaluation is always fp32",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke tests)")
    return p


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


def train_one_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    data: Batches,
    batch_size: int,
    device: torch.device,
    g: torch.Generator,
    erasing: float = 0.5,
    distill: Distillation | None = None,
    autocast: Any = nullcontext,
    video_aug: float = 0.0,
) -> dict[str, float]:
    """One pass over ``data``; ``autocast`` () -> context manager wraps the forward pass (bf16 or none)."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for images, labels, idx in data.shuffled(batch_size, g):
        if len(labels) < 2:  # BatchNorm cannot train on one sample
            continue
        x, x_teacher = student_teacher_inputs(images, g, erasing, video_aug, device)
        y = labels.to(device)
        with autocast():
            logits = model(x).float()
        loss = criterion(logits, y)
        if distill is not None:
            targets = distill.soft_targets(x_teacher, idx)
            loss = (1 - distill.weight) * loss + distill.weight * distill.loss(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    return {"train_loss": total_loss / max(seen, 1), "train_acc": correct / max(seen, 1)}


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


def evaluate(model: nn.Module, data: Batches, classes: tuple[str, ...], device: torch.device) -> dict[str, Any]:
    probs, probs_tta = predict(model, data, device)
    labels = data.labels.numpy()
    plain = summarize(labels, probs.argmax(1), classes)
    with_tta = summarize(labels, probs_tta.argmax(1), classes)
    return {
        "accuracy": plain["accuracy"],
        "accuracy_tta": with_tta["accuracy"],
        "macro_f1": plain["macro_f1"],
        "macro_f1_tta": with_tta["macro_f1"],
        "per_class": with_tta["per_class"],
        "confusion_tta": confusion(labels, probs_tta.argmax(1), len(classes)).tolist(),
    }


@torch.no_grad()
def recompute_bn(
    model: nn.Module, data: Batches, batch_size: int, device: torch.device, seed: int, erasing: float, images: int
) -> None:
    """BatchNorm running statistics of ``model`` (a weight average, whose own statistics mean nothing) recomputed
    as the plain average over ``images`` augmented training images: the batches its training saw."""
    g = torch.Generator().manual_seed(seed)
    count = math.ceil(min(images, len(data.labels)) / batch_size)
    inputs = (
        training_inputs(x, g, erasing, device) for x, _, _ in itertools.islice(data.shuffled(batch_size, g), count)
    )
    torch.optim.swa_utils.update_bn(inputs, model)


def init_from_model(model: nn.Module, path: str, classes: tuple[str, ...], stem: str) -> dict[str, Any]:
    """Start from a fer-video model of the same shape (same classes, stem, channels): a warm restart."""
    source, card = load_model(path)
    if tuple(card.classes) != tuple(classes) or card.stem != stem or card.channels != 1:
        raise WeightsError(
            f"{path}: --init model has classes {','.join(card.classes)}, stem {card.stem}, {card.channels} channel(s); "
            f"this run needs {','.join(classes)}, stem {stem}, 1 channel"
        )
    model.load_state_dict(source.state_dict())
    log.info("initialised from %s (%s, PublicTest+TTA %s)", path, card.name, card.metrics.get("accuracy_tta"))
    return {"file": str(path), "name": card.name, "sha256": card.sha256, "training": card.training}


@dataclass
class Distillation:
    """Soft targets from teacher models (at ``temperature``): fixed rows, one per training image, or the
    ``teachers`` themselves, run on each batch as the student sees it (consistent teaching)."""

    weight: float
    temperature: float
    targets: torch.Tensor | None = None  # (N, classes) float32, rows sum to 1, in the order of the training Batches
    teachers: list[nn.Module] = field(default_factory=list)  # eval mode, on the training device
    autocast: Any = nullcontext  # () -> context manager for the teachers' forward passes

    @torch.inference_mode()
    def soft_targets(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The teachers' mean softened probabilities for the batch ``x`` (the training images ``idx``)."""
        if self.targets is not None:
            return self.targets[idx].to(x.device)
        with self.autocast():
            probs = [F.softmax(teacher(x).float() / self.temperature, 1) for teacher in self.teachers]
        return torch.stack(probs).mean(0)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Hinton et al.'s term: KL(teacher || student) of the softened distributions, scaled by T^2."""
        t = self.temperature
        student = F.log_softmax(logits.float() / t, 1)
        return F.kl_div(student, targets.clone(), reduction="batchmean") * t * t


def load_teacher(path: str, classes: tuple[str, ...], size: int, device: torch.device) -> tuple[nn.Module, ModelCard]:
    """A fer-video model that can teach this run: same classes, one channel, ``size`` px (clear error otherwise)."""
    model, card = load_model(path, device)
    if tuple(card.classes) != tuple(classes) or card.channels != 1 or card.input_size != size:
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
) -> tuple[list[nn.Module], list[dict[str, Any]]]:
    """The teachers as models, for ``--teacher-mode consistent``: they see the student's batches, normalised as
    this run normalises, so each must expect the same normalisation."""
    models, teachers = [], []
    for path in paths:
        model, card = load_teacher(path, classes, size, device)
        if (card.mean[0], card.std[0]) != (MEAN, STD):
            raise WeightsError(
                f"{path}: --teacher model expects mean {card.mean[0]}, std {card.std[0]}; "
                f"--teacher-mode consistent needs {MEAN}, {STD} (use --teacher-mode fixed)"
            )
        models.append(model)
        teachers.append(teacher_record(path, card))
    return models, teachers


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
        _atomic_save({"key": key, "targets": probs}, file)
        log.info("teacher targets of %s at T=%g (%.0fs)", path, temperature, time.time() - t0)
        shares.append(probs)
    return torch.stack(shares).mean(0), teachers


def class_weights(counts: np.ndarray, power: float) -> torch.Tensor:
    w = (1.0 / np.maximum(counts, 1)) ** power
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


def save_curves(history: list[dict[str, Any]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train loss")
    a.set_xlabel("epoch")
    a.legend()
    b.plot(ep, [h["train_acc"] for h in history], label="train (augmented)")
    b.plot(ep, [h["val_acc"] for h in history], label="PublicTest")
    b.plot(ep, [h["val_acc_tta"] for h in history], label="PublicTest + flip TTA")
    swa = [h for h in history if "swa_acc_tta" in h]
    if swa:
        b.plot([h["epoch"] for h in swa], [h["swa_acc_tta"] for h in swa], "o-", label="SWA average, + flip TTA")
    b.set_xlabel("epoch")
    b.legend()
    b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def run(args: argparse.Namespace, command: str = "") -> int:
    # option values that cannot work: one line each, before any data is read or the run folder is made
    if args.teacher and (not 0 < args.distill_weight <= 1 or args.distill_temperature <= 0):
        raise SettingsError("--distill-weight must be in (0, 1] and --distill-temperature > 0")
    if not 0 <= getattr(args, "video_aug", 0.0) <= 1:
        raise SettingsError("--video-aug must be between 0 and 1")
    if not 0 <= args.swa <= args.epochs or args.swa_lr <= 0:
        raise SettingsError(f"--swa must be between 0 and --epochs ({args.epochs}) and --swa-lr > 0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger().addHandler(logging.FileHandler(out / "train.log"))
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = autocast_dtype(device, args.precision)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else nullcontext
    precision = "bf16 autocast" if dtype is not None else "fp32"  # for the log and the card
    classes = parse_classes(args.classes)
    t0 = time.time()
    train_ds = load_dataset(args.data, "train", classes)
    val_ds = load_dataset(args.data, "test", classes)
    train, val = Batches.from_dataset(train_ds, args.limit), Batches.from_dataset(val_ds)
    counts = np.bincount(train.labels.numpy(), minlength=len(classes))
    log.info(
        "data: %d train, %d PublicTest images, classes %s, counts %s (%.1fs)",
        len(train.labels),
        len(val.labels),
        ",".join(classes),
        counts.tolist(),
        time.time() - t0,
    )

    ckpt_path = out / "checkpoint.pt"
    resuming = args.resume and ckpt_path.is_file()
    model = build_model(len(classes), channels=1, stem=args.stem)
    lineage: dict[str, Any] = {}
    if args.init == "imagenet":
        load_imagenet_init(model, args.stem)
    elif args.init != "scratch" and not resuming:  # a resumed run's weights come from its checkpoint
        lineage = init_from_model(model, args.init, classes, args.stem)
    model = model.to(device, memory_format=torch.channels_last)
    criterion = nn.CrossEntropyLoss(
        weight=class_weights(counts, args.class_weight_power).to(device), label_smoothing=args.label_smoothing
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay
    )
    steps = math.ceil(len(train.labels) / args.batch_size)
    cycle = args.epochs - args.swa  # one-cycle epochs; the --swa epochs after them run at the constant --swa-lr
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, epochs=cycle, steps_per_epoch=steps, pct_start=0.15
        )
        if cycle
        else None
    )
    swa = torch.optim.swa_utils.AveragedModel(model) if args.swa else None
    distill, teachers = None, []
    if args.teacher:
        paths = [p for p in args.teacher.split(",") if p]
        distill = Distillation(args.distill_weight, args.distill_temperature, autocast=autocast)
        if args.teacher_mode == "consistent":
            distill.teachers, teachers = consistent_teachers(paths, classes, train.images.shape[-1], device)
        else:
            cache = Path(args.teacher_cache) if args.teacher_cache else out
            cache.mkdir(parents=True, exist_ok=True)
            distill.targets, teachers = teacher_targets(paths, train, classes, args.distill_temperature, device, cache)
    log.info("training precision: %s on %s", precision, device)
    g = torch.Generator().manual_seed(args.seed)
    start_epoch, history, best = 0, [], -1.0
    if resuming:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own file: holds RNG state
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        g.set_state(ckpt["generator"])
        start_epoch, history, best = ckpt["epoch"] + 1, ckpt["history"], ckpt["best"]
        lineage = ckpt.get("lineage", {})
        if swa is not None and ckpt.get("swa") is not None:
            swa.load_state_dict(ckpt["swa"])
        saved_cycle = ckpt["args"]["epochs"] - ckpt["args"].get("swa", 0)
        if scheduler is not None and saved_cycle == cycle and ckpt["scheduler"] is not None:
            scheduler.load_state_dict(ckpt["scheduler"])
        elif scheduler is not None:  # a longer or shorter schedule: the new one-cycle curve, continued at the same step
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "step() before optimizer.step()": intended here
                for _ in range(min(start_epoch, cycle) * steps):
                    scheduler.step()
            log.info(
                "schedule changed from %d to %d one-cycle epochs (lr now %.4f)",
                saved_cycle,
                cycle,
                scheduler.get_last_lr()[0],
            )
        log.info("resumed from %s at epoch %d (best PublicTest+TTA %.4f)", ckpt_path, start_epoch, best)
    elif args.resume:
        log.info("--resume: no %s yet, starting a new run", ckpt_path)

    name = args.name or out.name
    stop = args.epochs if not args.epochs_this_run else min(args.epochs, start_epoch + args.epochs_this_run)
    for epoch in range(start_epoch, stop):
        t = time.time()
        averaging = swa is not None and epoch >= cycle
        if averaging:
            for group in optimizer.param_groups:
                group["lr"] = args.swa_lr
        stats = train_one_epoch(
            model,
            criterion,
            optimizer,
            None if averaging else scheduler,
            train,
            args.batch_size,
            device,
            g,
            args.erasing,
            distill,
            autocast,
            getattr(args, "video_aug", 0.0),
        )
        train_s = time.time() - t
        metrics = evaluate(model, val, classes, device)
        row = {
            "epoch": epoch,
            **stats,
            "val_acc": metrics["accuracy"],
            "val_acc_tta": metrics["accuracy_tta"],
            "val_macro_f1": metrics["macro_f1"],
            "lr": optimizer.param_groups[0]["lr"],
            "epoch_s": round(train_s, 1),
            "recall": {c: round(v["recall"], 3) for c, v in metrics["per_class"].items()},
        }
        history.append(row)
        log.info(
            "epoch %d/%d loss %.3f train %.3f | PublicTest %.4f, +flip %.4f, macro-F1 %.3f | %.0fs | recall %s",
            epoch + 1,
            args.epochs,
            stats["train_loss"],
            stats["train_acc"],
            metrics["accuracy"],
            metrics["accuracy_tta"],
            metrics["macro_f1"],
            train_s,
            row["recall"],
        )
        exported, averaged_note = model, ""
        if averaging:  # the running average of this and the earlier --swa epochs, scored like the model itself
            swa.update_parameters(model)
            recompute_bn(swa.module, train, args.batch_size, device, args.seed + epoch, args.erasing, 8192)
            averaged = evaluate(swa.module, val, classes, device)
            row.update(
                swa_acc=averaged["accuracy"], swa_acc_tta=averaged["accuracy_tta"], swa_epochs=int(swa.n_averaged)
            )
            averaged_note = f"mean of the weights after epochs {epoch + 2 - row['swa_epochs']}-{epoch + 1}"
            log.info(
                "  SWA, %s: PublicTest %.4f, +flip %.4f, macro-F1 %.3f",
                averaged_note,
                averaged["accuracy"],
                averaged["accuracy_tta"],
                averaged["macro_f1"],
            )
            if averaged["accuracy_tta"] > metrics["accuracy_tta"]:
                metrics, exported = averaged, swa.module
            else:
                averaged_note = ""
        if metrics["accuracy_tta"] > best:
            best = metrics["accuracy_tta"]
            card = ModelCard(
                name=name,
                classes=list(classes),
                stem=args.stem,
                mean=[MEAN],
                std=[STD],
                training={
                    "data": "FER2013 Training split (" + Path(args.data).name + ")",
                    "command": command,
                    "epoch": epoch + 1,
                    "epochs": args.epochs,
                    **({"swa": averaged_note} if averaged_note else {}),
                    "train_seconds": round(sum(h["epoch_s"] for h in history)),
                    "precision": precision,
                    "recipe": {k: v for k, v in vars(args).items() if k not in {"data", "out"}},
                    **({"initialised_from": lineage} if lineage else {}),
                    **({"distilled_from": teachers} if teachers else {}),
                },
                metrics={"split": "PublicTest", **{k: v for k, v in metrics.items()}},
            )
            export_model(exported, card, out / "model")
            save_confusion(
                np.array(metrics["confusion_tta"]),
                classes,
                out / "confusion.png",
                f"PublicTest + flip TTA, epoch {epoch + 1}: acc {best:.4f}",
            )
        _atomic_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "swa": swa.state_dict() if swa is not None else None,
                "generator": g.get_state(),
                "epoch": epoch,
                "history": history,
                "best": best,
                "args": vars(args),
                "lineage": lineage,
            },
            ckpt_path,
        )
        (out / "history.json").write_text(json.dumps(history, indent=1))
        save_curves(history, out / "curves.png")
    if stop < args.epochs:
        log.info("stopped after epoch %d of %d; continue with --resume", stop, args.epochs)
    log.info("best PublicTest + flip TTA %.4f; model in %s", best, out / "model.pt")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = get_args_parser().parse_args(argv)
    return run(args, "fer-video train " + " ".join(shlex.quote(a) for a in argv))


if __name__ == "__main__":
    raise SystemExit(main())
