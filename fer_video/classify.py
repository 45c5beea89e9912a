"""Face crops -> one batch tensor -> class probabilities. Preprocessing comes from the weights' ``ModelCard``."""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_video.device import autocast_dtype
from fer_video.errors import SettingsError
from fer_video.model import ModelCard, load_model
from fer_video.predict import card_crop, ten_crops


def crop_box(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The card's crop rule: a square around the box centre, side max(w, h) * (1 + margin), clipped (a margin
    below 0 gives a square smaller than the box)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    l, t = int(round(cx - side / 2)), int(round(cy - side / 2))
    r, b = int(round(cx + side / 2)), int(round(cy + side / 2))
    return max(l, 0), max(t, 0), min(max(r, l + 1), width), min(max(b, t + 1), height)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every BatchNorm folded into the convolution before it: the same
    function with fewer passes over memory, and in bf16 without BatchNorm's statistics rounded on their own.
    Pairs are ``convX``/``bnX`` attributes of one module (the ResNet stem and blocks) and consecutive
    Conv2d/BatchNorm2d in a Sequential (the shortcuts)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        children = dict(module.named_children())
        if isinstance(module, nn.Sequential):
            keys = list(children)
            pairs = [(a, b) for a, b in zip(keys, keys[1:], strict=False)]
        else:
            pairs = [(n, "bn" + n[4:]) for n in children if n.startswith("conv") and "bn" + n[4:] in children]
        for conv_name, bn_name in pairs:
            conv, bn = children[conv_name], children[bn_name]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(module, bn_name, nn.Identity())
    return model


class EmotionClassifier:
    """Runs the ResNet18 on many face crops in one forward pass (optionally with a mirrored copy: flip TTA)."""

    def __init__(
        self,
        model: nn.Module,
        card: ModelCard,
        device: torch.device,
        batch_size: int = 64,
        tta: bool = True,
        precision: str = "fp32",
        ten_crop: bool = False,
    ) -> None:
        """``precision``: ``fp32``, ``bf16`` or ``auto`` (bf16 where the hardware does it natively). The model runs
        with its BatchNorm folded into the convolutions, in bf16 weights and activations when bf16 (1.1-1.4x
        less CPU per crop than bf16 autocast on an AMX CPU, 2.0x less than fp32 on an AVX512-BF16 one;
        probabilities within 0.013 of fp32's, autocast's within 0.007: ``benchmarks/micro.py classify-precision``).
        ``ten_crop``: average the ten crops of each face (``predict.ten_crops``; the card needs a ``resize_size``
        larger than its ``input_size``), instead of the centre one (and its mirror image with ``tta``)."""
        if ten_crop and not card_crop(card):
            raise SettingsError(
                f"--ten-crop needs a model trained on centre squares ('fer-video train --crop'); {card.name} sees "
                "the whole face"
            )
        self.ten_crop = ten_crop
        self.autocast = autocast_dtype(device, precision)  # the reduced precision, None for fp32
        self._dtype = self.autocast or torch.float32
        self.model = fold_batchnorm(model).to(device, self._dtype)
        if device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.card = card
        self.device = device
        self.batch_size = batch_size
        self.tta = tta
        self.classes = list(card.classes)
        self._mean = torch.tensor(card.mean).view(1, -1, 1, 1)
        self._std = torch.tensor(card.std).view(1, -1, 1, 1)

    @classmethod
    def from_weights(cls, weights: str, device: torch.device, *args: Any, **kwargs: Any) -> EmotionClassifier:
        """The classifier of a weights file (its card beside it); the other arguments as ``__init__``'s."""
        model, card = load_model(weights, device)
        return cls(model, card, device, *args, **kwargs)

    def describe(self) -> dict[str, object]:
        """What the summary records of the model: name, checksum, classes, PublicTest accuracy (flip TTA)."""
        card = self.card
        return {
            "name": card.name,
            "sha256": card.sha256,
            "classes": card.classes,
            "publictest_accuracy_tta": card.metrics.get("accuracy_tta"),
            "precision": "bf16" if self.autocast is not None else "fp32",
        }

    def crops(self, image: np.ndarray, boxes: np.ndarray, whole: bool = False) -> np.ndarray:
        """(N, size, size, channels) uint8 crops of ``image`` (RGB) following the card's crop rule: what the network
        sees (``input_size``). A card with a ``resize_size`` (a model trained on centre squares of larger faces)
        gets the centre square of the face directly, a crop ``input_size / resize_size`` as wide; ``whole`` (and
        ten-crop): the whole face at ``resize_size`` instead (what such a model is trained on)."""
        card, h, w = self.card, image.shape[0], image.shape[1]
        size, margin, square = card.input_size, card.crop_margin, card_crop(card)
        if square and (whole or self.ten_crop):
            size = card.resize_size
        elif square:
            margin = (1.0 + card.crop_margin) * card.input_size / card.resize_size - 1.0
        out = np.empty((len(boxes), size, size, card.channels), dtype=np.uint8)
        for i, box in enumerate(boxes):
            l, t, r, b = crop_box(box, margin, w, h)
            src = image[t:b, l:r]
            if self.card.channels == 1:  # grey of the crop only, not of the whole frame
                src = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY)
            patch = cv2.resize(src, (size, size), interpolation=cv2.INTER_AREA if (r - l) > size else cv2.INTER_LINEAR)
            out[i] = patch.reshape(size, size, -1)
        return out

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Probabilities (N, C) for uint8 crops (N, size, size, channels)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        outs = []
        for start in range(0, len(crops), self.batch_size):
            x = torch.from_numpy(crops[start : start + self.batch_size]).permute(0, 3, 1, 2).float() / 255.0
            x = ((x - self._mean) / self._std).to(self.device, self._dtype)
            if self.device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            n, mirrored = len(x), self.tta if tta is None else tta
            if self.ten_crop:  # the ten views of each face; the mirror images are among them
                views = ten_crops(x, self.card.input_size)
                x = torch.cat([v.contiguous(memory_format=torch.channels_last) for v in views])
                p = F.softmax(self.model(x).float(), 1)
                outs.append(p.view(len(views), n, -1).mean(0).cpu().numpy())
                continue
            if mirrored:  # flip TTA: the mean of both views
                x = torch.cat([x, torch.flip(x, dims=[3])])
            p = F.softmax(self.model(x).float(), 1)
            if mirrored:
                p = (p[:n] + p[n:]) / 2
            outs.append(p.cpu().numpy())
        return np.concatenate(outs).astype(np.float32)
