"""``fer-video train``: the ResNet18 emotion model on FER2013 (CPU or GPU), checkpointing every epoch, resumable.

Shape follows torchvision's reference script: ``get_args_parser()``, ``train_one_epoch()``, ``evaluate()``,
checkpoints with optimizer and scheduler state, ``--resume``. The dataset lives in memory as one uint8
tensor and augmentation runs on whole batches (affine warp, flip, brightness/contrast, random erasing).
``--teacher`` adds knowledge distillation from fer-video models (soft targets computed once per teacher and
cached, or, with ``--teacher-mode consistent``, computed on each augmented batch); ``--swa`` averages the
weights of the last epochs (stochastic weight averaging). ``--precision auto`` trains in bf16 autocast where the
hardware does bf16 natively (device.py decides).

``run`` is four steps: ``setup`` (data, model, optimiser, teachers), ``resume`` (from the checkpoint),
``train_epoch`` (one epoch, scored, with the SWA average) and ``export`` (the model and its card when best).
"""

from __future__ import annotations

import argparse
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
from torch import nn

from fer_video.device import autocast_dtype, resolve_device
from fer_video.errors import SettingsError, WeightsError
from fer_video.model import MEAN, STD, ModelCard, build_model, export_model, load_imagenet_init, load_model
from fer_video.predict import Batches
from fer_video.training.augment import MODES, Augmentation
from fer_video.training.checkpoint import atomic_save
from fer_video.training.data import load_dataset, parse_classes
from fer_video.training.distill import Distillation, consistent_teachers, teacher_targets
from fer_video.training.loop import LogitAdjustedLoss, class_weights, evaluate, recompute_bn, train_one_epoch
from fer_video.training.metrics import save_confusion

log = logging.getLogger(__name__)

PARTS = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")  # what --train-layers can name


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
    p.add_argument(
        "--logit-adjust",
        type=float,
        default=0.0,
        metavar="TAU",
        help="train on logits + TAU * log(class share) (logit adjustment, Menon et al. 2021; 1: balanced softmax) "
        "so that rare classes such as disgust are not out-voted at inference; usually with --class-weight-power 0 "
        "(default 0: off)",
    )
    p.add_argument("--stem", choices=["3x3s1", "imagenet"], default="3x3s1")
    p.add_argument(
        "--init",
        default="scratch",
        metavar="scratch|imagenet|PATH",
        help="imagenet: torchvision's weights from the local torch hub cache (never downloaded); "
        "PATH: a fer-video model (.pt with its .json) to continue from, e.g. a warm restart of a finished run",
    )
    p.add_argument(
        "--augment",
        choices=MODES,
        default="full",
        help="full: flip, rotation +-10 deg, scale, shift, brightness/contrast; flip: the mirror image only (e.g. "
        "to refit the last layers on a small labelled set); random erasing (--erasing) applies to both",
    )
    p.add_argument("--erasing", type=float, default=0.5, help="probability of random erasing per image")
    p.add_argument(
        "--crop",
        type=int,
        default=0,
        metavar="PX",
        help="train on a random PX x PX square of each (augmented) training face (48 px in FER2013) and score its "
        "centre square (after the last epoch also with ten-crop TTA); the card records it and inference takes the "
        "centre square (e.g. 40; default 0: the whole face)",
    )
    p.add_argument(
        "--mixup",
        type=float,
        default=0.0,
        metavar="ALPHA",
        help="mixup (Zhang et al. 2018): each batch is blended with a shuffled copy of itself, a share "
        "lam ~ Beta(ALPHA, ALPHA), and the loss takes both labels by their shares; consistent teachers see the "
        "blend (e.g. 0.2; default 0: off)",
    )
    p.add_argument(
        "--video-aug",
        type=float,
        default=0.0,
        metavar="P",
        help="share of training images given video-like degradations (turn, down-scaling, blur, light, noise, "
        "JPEG); teachers still see the clean image (default 0: off)",
    )
    p.add_argument(
        "--clips",
        default=None,
        metavar="DIR",
        help="also train on labelled video clips in DIR: the largest face of each clip, cropped on every frame as "
        "annotate crops it, with the clip's label (cached in <out>/clip-faces); teachers do not teach these",
    )
    p.add_argument(
        "--clip-labels", default=None, metavar="CSV", help="with --clips: file,label[,subject] (default DIR/labels.csv)"
    )
    p.add_argument(
        "--clip-exclude",
        default="",
        metavar="SUBJECT[,SUBJECT...]",
        help="with --clips: leave these subjects' clips out (leave-one-subject-out evaluation)",
    )
    p.add_argument(
        "--clip-cache",
        default=None,
        metavar="DIR",
        help="with --clips: folder for the clip crops (default <out>/clip-faces); runs sharing it crop each clip once",
    )
    p.add_argument(
        "--clip-repeat", type=int, default=1, metavar="K", help="with --clips: each clip face appears K times an epoch"
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
    p.add_argument(
        "--train-layers",
        default="",
        metavar="NAME[,NAME...]",
        help="train only these parts of the network (of conv1, bn1, layer1, layer2, layer3, layer4, fc), e.g. "
        "layer4,fc to adapt a finished model to a small labelled set; the rest keeps its weights and BatchNorm "
        "statistics (default: all)",
    )
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
        "the hardware does it natively (a CPU with AMX or AVX512-BF16, a bf16 GPU), fp32 elsewhere; evaluation is "
        "always fp32",
    )
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--limit",
        type=int,
        default=0,
        help="use only N FER2013 training images, a fixed random subset (smoke tests, short fine-tunes)",
    )
    return p


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


@dataclass
class Run:
    """What ``setup`` builds and the epochs use."""

    out: Path
    device: torch.device
    autocast: Any
    precision: str  # for the log and the card
    classes: tuple[str, ...]
    train: Batches
    val: Batches
    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None
    swa: Any | None
    steps: int  # optimiser steps per epoch
    cycle: int  # one-cycle epochs; the --swa epochs after them run at the constant --swa-lr
    distill: Distillation | None
    teachers: list[dict[str, Any]]
    g: torch.Generator
    lineage: dict[str, Any]
    frozen: tuple[nn.Module, ...] = ()  # parts left out by --train-layers: no gradients, BatchNorm in eval mode
    start_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: float = -1.0

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoint.pt"


def check_args(args: argparse.Namespace) -> None:
    """Option values that cannot work: one line each, before any data is read or the run folder is made."""
    if args.teacher and (not 0 < args.distill_weight <= 1 or args.distill_temperature <= 0):
        raise SettingsError("--distill-weight must be in (0, 1] and --distill-temperature > 0")
    if getattr(args, "logit_adjust", 0.0) < 0:
        raise SettingsError("--logit-adjust must be >= 0 (0: off)")
    if getattr(args, "mixup", 0.0) < 0:
        raise SettingsError("--mixup must be >= 0 (0: off)")
    if not 0 <= getattr(args, "video_aug", 0.0) <= 1:
        raise SettingsError("--video-aug must be between 0 and 1")
    if getattr(args, "clip_repeat", 1) < 1:
        raise SettingsError("--clip-repeat must be >= 1")
    if not getattr(args, "clips", None) and any(
        getattr(args, k, None) for k in ("clip_labels", "clip_exclude", "clip_cache")
    ):
        raise SettingsError("--clip-labels and --clip-exclude need --clips")
    unknown = [n for n in _layer_names(getattr(args, "train_layers", "")) if n not in PARTS]
    if unknown:
        raise SettingsError(f"--train-layers: no part {','.join(unknown)} (the parts are {', '.join(PARTS)})")
    if getattr(args, "crop", 0) and not 8 <= args.crop <= 48:
        raise SettingsError("--crop must be 0 (the whole face) or between 8 and 48 px")
    if not 0 <= args.swa <= args.epochs or args.swa_lr <= 0:
        raise SettingsError(f"--swa must be between 0 and --epochs ({args.epochs}) and --swa-lr > 0")


def setup(args: argparse.Namespace) -> Run:
    """The run folder and its log, the device, the data, the model (initialised), loss, optimiser, schedule,
    SWA and teachers."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.getLogger().addHandler(logging.FileHandler(out / "train.log"))
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = autocast_dtype(device, args.precision)
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype is not None else nullcontext
    precision = "bf16 autocast" if dtype is not None else "fp32"
    classes = parse_classes(args.classes)
    train, val, from_clips = _data(args, classes, out)
    counts = np.bincount(train.labels.numpy(), minlength=len(classes))
    resuming = args.resume and (out / "checkpoint.pt").is_file()
    model = build_model(len(classes), channels=1, stem=args.stem)
    lineage: dict[str, Any] = {}
    if args.init == "imagenet":
        load_imagenet_init(model, args.stem)
    elif args.init != "scratch" and not resuming:  # a resumed run's weights come from its checkpoint
        lineage = init_from_model(model, args.init, classes, args.stem)
    model = model.to(device, memory_format=torch.channels_last)
    frozen = freeze(model, getattr(args, "train_layers", ""))
    weight = class_weights(counts, args.class_weight_power).to(device)
    tau = getattr(args, "logit_adjust", 0.0)
    criterion = (
        LogitAdjustedLoss(counts, tau, weight, args.label_smoothing).to(device)
        if tau
        else nn.CrossEntropyLoss(weight=weight, label_smoothing=args.label_smoothing)
    )
    optimizer = torch.optim.SGD(
        [q for q in model.parameters() if q.requires_grad],
        lr=args.lr,
        momentum=0.9,
        nesterov=True,
        weight_decay=args.weight_decay,
    )
    steps = math.ceil(len(train.labels) / args.batch_size)
    cycle = args.epochs - args.swa
    scheduler = (
        torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, epochs=cycle, steps_per_epoch=steps, pct_start=0.15
        )
        if cycle
        else None
    )
    swa = torch.optim.swa_utils.AveragedModel(model) if args.swa else None
    distill, teachers = _teachers(args, train, classes, device, autocast, out)
    if distill is not None and from_clips.any():
        distill.taught = torch.from_numpy(~from_clips)
    log.info("training precision: %s on %s", precision, device)
    g = torch.Generator().manual_seed(args.seed)
    return Run(
        out, device, autocast, precision, classes, train, val, model, criterion, optimizer, scheduler, swa, steps,
        cycle, distill, teachers, g, lineage, frozen,
    )  # fmt: skip


def _layer_names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def freeze(model: nn.Module, train_layers: str) -> tuple[nn.Module, ...]:
    """With ``--train-layers a,b``: every other part of ``model`` stops learning (its parameters get no
    gradient, its BatchNorm statistics stay as loaded). Returns the frozen parts (empty: all train)."""
    names = _layer_names(train_layers)
    if not names:
        return ()
    parts = dict(model.named_children())
    frozen = tuple(m for n, m in parts.items() if n not in names)
    for m in frozen:
        m.requires_grad_(False)
    log.info("training only %s; the rest is frozen", ",".join(names))
    return frozen


def _data(args: argparse.Namespace, classes: tuple[str, ...], out: Path) -> tuple[Batches, Batches, np.ndarray]:
    """FER2013 train (with ``--clips``, the clip faces after it) and PublicTest, and which training images came
    from clips."""
    t0 = time.time()
    train_ds = load_dataset(args.data, "train", classes)
    val_ds = load_dataset(args.data, "test", classes)
    train, val = Batches.from_dataset(train_ds, args.limit), Batches.from_dataset(val_ds)
    from_clips = np.zeros(len(train.labels), bool)
    if getattr(args, "clips", None):
        train, from_clips = _with_clips(args, classes, train, out)
    counts = np.bincount(train.labels.numpy(), minlength=len(classes))
    log.info(
        "data: %d train, %d PublicTest images, classes %s, counts %s (%.1fs)",
        len(train.labels),
        len(val.labels),
        ",".join(classes),
        counts.tolist(),
        time.time() - t0,
    )
    return train, val, from_clips


def _with_clips(
    args: argparse.Namespace, classes: tuple[str, ...], train: Batches, out: Path
) -> tuple[Batches, np.ndarray]:
    from fer_video.training.clips import load_clip_faces

    exclude = tuple(s.strip() for s in args.clip_exclude.split(",") if s.strip())
    labels = args.clip_labels or str(Path(args.clips) / "labels.csv")
    cache = Path(args.clip_cache) if getattr(args, "clip_cache", None) else out / "clip-faces"
    faces = load_clip_faces(args.clips, labels, classes, cache, exclude)
    if faces.images.shape[1:] != tuple(train.images.shape[-2:]):
        size = train.images.shape[-1]
        raise SettingsError(f"--clips: crops are {faces.images.shape[1]} px, the training images {size} px")
    images = torch.from_numpy(np.repeat(faces.images, args.clip_repeat, 0)).unsqueeze(1)
    labels_t = torch.from_numpy(np.repeat(faces.labels, args.clip_repeat, 0))
    log.info(
        "clip faces: %d crops of %d clips (%d subjects, excluded: %s), each %d times",
        len(faces),
        len(set(faces.files)),
        len(set(faces.subjects)),
        ",".join(exclude) or "none",
        args.clip_repeat,
    )
    joined = Batches(torch.cat([train.images, images]).contiguous(), torch.cat([train.labels, labels_t]))
    return joined, np.r_[np.zeros(len(train.labels), bool), np.ones(len(labels_t), bool)]


def _teachers(
    args: argparse.Namespace, train: Batches, classes: tuple[str, ...], device: torch.device, autocast: Any, out: Path
) -> tuple[Distillation | None, list[dict[str, Any]]]:
    if not args.teacher:
        return None, []
    paths = [p for p in args.teacher.split(",") if p]
    distill = Distillation(args.distill_weight, args.distill_temperature, autocast=autocast)
    if args.teacher_mode == "consistent":
        distill.teachers, teachers, distill.sizes = consistent_teachers(paths, classes, train.images.shape[-1], device)
    else:
        cache = Path(args.teacher_cache) if args.teacher_cache else out
        cache.mkdir(parents=True, exist_ok=True)
        distill.targets, teachers = teacher_targets(paths, train, classes, args.distill_temperature, device, cache)
    return distill, teachers


def resume(args: argparse.Namespace, r: Run) -> None:
    """Continue from ``<out>/checkpoint.pt`` with ``--resume``: weights, optimiser, RNG, history, SWA, schedule
    (a changed schedule length: the new one-cycle curve, continued at the same step)."""
    if not (args.resume and r.ckpt_path.is_file()):
        if args.resume:
            log.info("--resume: no %s yet, starting a new run", r.ckpt_path)
        return
    ckpt = torch.load(r.ckpt_path, map_location="cpu", weights_only=False)  # our own file: holds RNG state
    r.model.load_state_dict(ckpt["model"])
    r.optimizer.load_state_dict(ckpt["optimizer"])
    r.g.set_state(ckpt["generator"])
    r.start_epoch, r.history, r.best = ckpt["epoch"] + 1, ckpt["history"], ckpt["best"]
    r.lineage = ckpt.get("lineage", {})
    if r.swa is not None and ckpt.get("swa") is not None:
        r.swa.load_state_dict(ckpt["swa"])
    saved_cycle = ckpt["args"]["epochs"] - ckpt["args"].get("swa", 0)
    if r.scheduler is not None and saved_cycle == r.cycle and ckpt["scheduler"] is not None:
        r.scheduler.load_state_dict(ckpt["scheduler"])
    elif r.scheduler is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "step() before optimizer.step()": intended here
            for _ in range(min(r.start_epoch, r.cycle) * r.steps):
                r.scheduler.step()
        log.info(
            "schedule changed from %d to %d one-cycle epochs (lr now %.4f)",
            saved_cycle,
            r.cycle,
            r.scheduler.get_last_lr()[0],
        )
    log.info("resumed from %s at epoch %d (best PublicTest+TTA %.4f)", r.ckpt_path, r.start_epoch, r.best)


def train_epoch(args: argparse.Namespace, r: Run, epoch: int) -> tuple[dict[str, Any], nn.Module, str]:
    """One epoch, scored on PublicTest and logged into the history; with ``--swa`` in its last epochs, the
    running weight average too. Returns the better one's metrics, that model, and what the average is ("" if
    the model itself is better)."""
    t = time.time()
    averaging = r.swa is not None and epoch >= r.cycle
    if averaging:
        for group in r.optimizer.param_groups:
            group["lr"] = args.swa_lr
    stats = train_one_epoch(
        r.model,
        r.criterion,
        r.optimizer,
        None if averaging else r.scheduler,
        r.train,
        args.batch_size,
        r.device,
        r.g,
        _augmentation(args, r),
        r.distill,
        r.autocast,
        r.frozen,
    )
    train_s = time.time() - t
    # ten-crop (with --crop) costs five times the rest of the scoring: the run's last epoch only
    metrics = evaluate(r.model, r.val, r.classes, r.device, _crop(args, r), ten_crop=epoch == args.epochs - 1)
    row = {
        "epoch": epoch,
        **stats,
        "val_acc": metrics["accuracy"],
        "val_acc_tta": metrics["accuracy_tta"],
        "val_macro_f1": metrics["macro_f1"],
        "lr": r.optimizer.param_groups[0]["lr"],
        "epoch_s": round(train_s, 1),
        "recall": {c: round(v["recall"], 3) for c, v in metrics["per_class"].items()},
        **({"val_acc_tencrop": metrics["accuracy_tencrop"]} if "accuracy_tencrop" in metrics else {}),
    }
    r.history.append(row)
    log.info(
        "epoch %d/%d loss %.3f train %.3f | PublicTest %.4f, +flip %.4f%s, macro-F1 %.3f | %.0fs | recall %s",
        epoch + 1,
        args.epochs,
        stats["train_loss"],
        stats["train_acc"],
        metrics["accuracy"],
        metrics["accuracy_tta"],
        f", ten-crop {metrics['accuracy_tencrop']:.4f}" if "accuracy_tencrop" in metrics else "",
        metrics["macro_f1"],
        train_s,
        row["recall"],
    )
    if not averaging:
        return metrics, r.model, ""
    return _swa_epoch(args, r, epoch, row, metrics)


def _swa_epoch(
    args: argparse.Namespace, r: Run, epoch: int, row: dict[str, Any], metrics: dict[str, Any]
) -> tuple[dict[str, Any], nn.Module, str]:
    """The running average of this and the earlier --swa epochs, scored like the model itself."""
    r.swa.update_parameters(r.model)
    aug = _augmentation(args, r)
    recompute_bn(r.swa.module, r.train, args.batch_size, r.device, args.seed + epoch, aug, 8192)
    averaged = evaluate(r.swa.module, r.val, r.classes, r.device, aug.crop, ten_crop=epoch == args.epochs - 1)
    row.update(swa_acc=averaged["accuracy"], swa_acc_tta=averaged["accuracy_tta"], swa_epochs=int(r.swa.n_averaged))
    note = f"mean of the weights after epochs {epoch + 2 - row['swa_epochs']}-{epoch + 1}"
    log.info(
        "  SWA, %s: PublicTest %.4f, +flip %.4f, macro-F1 %.3f",
        note,
        averaged["accuracy"],
        averaged["accuracy_tta"],
        averaged["macro_f1"],
    )
    if averaged["accuracy_tta"] > metrics["accuracy_tta"]:
        return averaged, r.swa.module, note
    return metrics, r.model, ""


def _crop(args: argparse.Namespace, r: Run) -> int:
    """``--crop`` when it is smaller than the training faces, else 0 (the whole face)."""
    crop = getattr(args, "crop", 0)
    return crop if crop and crop < r.train.images.shape[-1] else 0


def _augmentation(args: argparse.Namespace, r: Run) -> Augmentation:
    return Augmentation(
        getattr(args, "augment", "full"),
        args.erasing,
        getattr(args, "video_aug", 0.0),
        _crop(args, r),
        getattr(args, "mixup", 0.0),
    )


def export(
    args: argparse.Namespace,
    r: Run,
    epoch: int,
    metrics: dict[str, Any],
    exported: nn.Module,
    averaged_note: str,
    command: str,
) -> None:
    """The best model so far as ``<out>/model.pt`` with its card, and its confusion matrix."""
    crop, size = _crop(args, r), r.train.images.shape[-1]
    card = ModelCard(
        name=args.name or r.out.name,
        classes=list(r.classes),
        stem=args.stem,
        input_size=crop or size,
        resize_size=size if crop else 0,
        mean=[MEAN],
        std=[STD],
        training={
            "data": "FER2013 Training split ("
            + Path(args.data).name
            + ")"
            + (f" + labelled clips ({Path(args.clips).name})" if getattr(args, "clips", None) else ""),
            "command": command,
            "epoch": epoch + 1,
            "epochs": args.epochs,
            **({"swa": averaged_note} if averaged_note else {}),
            "train_seconds": round(sum(h["epoch_s"] for h in r.history)),
            "precision": r.precision,
            "recipe": {k: v for k, v in vars(args).items() if k not in {"data", "out"}},
            **({"initialised_from": r.lineage} if r.lineage else {}),
            **({"distilled_from": r.teachers} if r.teachers else {}),
        },
        metrics={"split": "PublicTest", **metrics},
    )
    export_model(exported, card, r.out / "model")
    save_confusion(
        np.array(metrics["confusion_tta"]),
        r.classes,
        r.out / "confusion.png",
        f"PublicTest + flip TTA, epoch {epoch + 1}: acc {r.best:.4f}",
    )


def save_checkpoint(args: argparse.Namespace, r: Run, epoch: int) -> None:
    """``checkpoint.pt`` (what ``resume`` reads), ``history.json`` and ``curves.png`` after each epoch."""
    atomic_save(
        {
            "model": r.model.state_dict(),
            "optimizer": r.optimizer.state_dict(),
            "scheduler": r.scheduler.state_dict() if r.scheduler is not None else None,
            "swa": r.swa.state_dict() if r.swa is not None else None,
            "generator": r.g.get_state(),
            "epoch": epoch,
            "history": r.history,
            "best": r.best,
            "args": vars(args),
            "lineage": r.lineage,
        },
        r.ckpt_path,
    )
    (r.out / "history.json").write_text(json.dumps(r.history, indent=1))
    save_curves(r.history, r.out / "curves.png")


def run(args: argparse.Namespace, command: str = "") -> int:
    check_args(args)
    r = setup(args)
    resume(args, r)
    stop = args.epochs if not args.epochs_this_run else min(args.epochs, r.start_epoch + args.epochs_this_run)
    for epoch in range(r.start_epoch, stop):
        metrics, exported, averaged_note = train_epoch(args, r, epoch)
        if metrics["accuracy_tta"] > r.best:
            r.best = metrics["accuracy_tta"]
            export(args, r, epoch, metrics, exported, averaged_note, command)
        save_checkpoint(args, r, epoch)
    if stop < args.epochs:
        log.info("stopped after epoch %d of %d; continue with --resume", stop, args.epochs)
    log.info("best PublicTest + flip TTA %.4f; model in %s", r.best, r.out / "model.pt")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = get_args_parser().parse_args(argv)
    return run(args, "fer-video train " + " ".join(shlex.quote(a) for a in argv))


if __name__ == "__main__":
    raise SystemExit(main())
