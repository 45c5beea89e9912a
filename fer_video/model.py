"""The emotion network: builder, ``ModelCard`` (the JSON beside the weights) and loading.

A model's preprocessing and labels travel with its weights (``weights/<name>.json``); inference reads them
from the card and never repeats them by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_video.errors import WeightsError
from fer_video.nets import ResNet18

log = logging.getLogger(__name__)

ARCH = "resnet18"
IMAGENET_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1 file name
#: the grey-level normalisation of fer-video's models (trained with it; a card records its own)
MEAN, STD = 0.5, 0.25


@dataclass
class ModelCard:
    """Everything inference needs to know about a weights file, stored as ``<name>.json`` beside ``<name>.pt``."""

    name: str
    classes: list[str]
    arch: str = ARCH
    stem: str = "3x3s1"  # "3x3s1": 3x3 stride-1 conv1 and maxpool kept; "imagenet": torchvision's 7x7/2 stem
    input_size: int = 48
    channels: int = 1
    mean: list[float] = field(default_factory=lambda: [MEAN])
    std: list[float] = field(default_factory=lambda: [STD])
    #: crop rule: the detector's box is made square around its centre with side = max(w, h) * (1 + crop_margin),
    #: clipped to the frame, converted to grey and resized to input_size.
    crop_margin: float = 0.0
    crop_rule: str = "square box around the detector box centre, side max(w,h)*(1+crop_margin), grey, resized"
    #: when set (a model trained on random input_size crops of resize_size faces, ``fer-video train --crop``): the
    #: crop is resized to resize_size and the network sees its centre input_size square; 0: resized to input_size
    resize_size: int = 0
    weights_file: str = ""
    sha256: str = ""
    dtype: str = "float16"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise WeightsError(f"{path}: model metadata not found (expected beside the .pt file)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WeightsError(f"{path}: model metadata is not valid JSON ({exc.__class__.__name__})") from None
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise WeightsError(f"{path}: cannot read model metadata ({reason})") from None
        if not isinstance(raw, dict):
            raise WeightsError(f"{path}: model metadata is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            card = cls(**{k: v for k, v in raw.items() if k in known})
        except TypeError as exc:
            raise WeightsError(f"{path}: model metadata is incomplete ({exc})") from None
        problem = card._problem()
        if problem:
            raise WeightsError(f"{path}: model metadata is inconsistent ({problem})")
        return card

    def _problem(self) -> str | None:
        """What makes this card unusable, or None."""

        def numbers(v: Any) -> bool:
            return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)

        if not isinstance(self.classes, list) or not self.classes or not all(isinstance(c, str) for c in self.classes):
            return "classes must be a non-empty list of names"
        if not isinstance(self.channels, int) or self.channels not in (1, 3):
            return "channels must be 1 or 3"
        if (
            not numbers(self.mean)
            or not numbers(self.std)
            or len(self.mean) != self.channels
            or len(self.std) != self.channels
            or any(x <= 0 for x in self.std)
        ):
            return "mean and std need one number per channel, std > 0"
        if not isinstance(self.input_size, int) or not 8 <= self.input_size <= 1024:
            return "input_size must be an integer between 8 and 1024"
        if not isinstance(self.resize_size, int) or not (self.resize_size == 0 or self.resize_size >= self.input_size):
            return "resize_size must be 0 or an integer >= input_size"
        if not isinstance(self.crop_margin, (int, float)) or self.crop_margin < 0:
            return "crop_margin must be a number >= 0"
        if self.stem not in ("3x3s1", "imagenet"):
            return f"unknown stem {self.stem!r}"
        return None


def build_model(num_classes: int, channels: int = 1, stem: str = "3x3s1", init: bool = True) -> nn.Module:
    """torchvision's ResNet18 adapted to small grey faces (``init=False``: no Kaiming initialisation, for
    weights that are loaded next).

    ``3x3s1`` replaces the 7x7 stride-2 conv1 by a 3x3 stride-1 conv (48 px faces have no pixels to spare)
    and keeps the max-pool, so layer1 runs at 24x24 and layer4 at 3x3.
    """
    model = ResNet18(num_classes, init)
    if stem == "3x3s1":
        model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    elif stem == "imagenet":
        if channels != 3:
            model.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        raise ValueError(f"unknown stem {stem!r}")
    return model


def load_imagenet_init(model: nn.Module, stem: str, cache_dir: str | Path | None = None) -> None:
    """Copy torchvision's ImageNet ResNet18 weights into ``model`` from the local torch hub cache (never downloads).

    The RGB stem is summed over colour channels; for the 3x3 stem its centre 3x3 is used. The final layer
    keeps its random init (different classes).
    """
    cache = Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"
    file = cache / IMAGENET_FILE
    if not file.is_file():
        raise WeightsError(
            f"{file}: ImageNet weights not found; --init imagenet needs torchvision's {IMAGENET_FILE} "
            "in the torch hub cache (nothing is downloaded). Use --init scratch instead."
        )
    state = torch.load(file, map_location="cpu", weights_only=True)
    conv1 = state.pop("conv1.weight")  # (64, 3, 7, 7)
    state.pop("fc.weight"), state.pop("fc.bias")
    own = model.state_dict()
    target = own["conv1.weight"]
    if stem == "3x3s1":
        conv1 = conv1[:, :, 2:5, 2:5]
    if target.shape[1] == 1:
        conv1 = conv1.sum(dim=1, keepdim=True)
    state["conv1.weight"] = conv1
    missing, unexpected = model.load_state_dict(state, strict=False)
    log.info("ImageNet init from %s (kept random: %s)", file, ", ".join(missing))


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def export_model(model: nn.Module, card: ModelCard, out_stem: str | Path) -> Path:
    """Write ``<out_stem>.pt`` (fp16 state dict) and ``<out_stem>.json`` (the card, with the sha256)."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    pt = out_stem.with_suffix(".pt")
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    tmp = pt.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    tmp.replace(pt)
    card.weights_file = pt.name
    card.sha256 = file_sha256(pt)
    card.dtype = "float16"
    tmp_json = out_stem.with_suffix(".json.tmp")
    card.to_json(tmp_json)
    tmp_json.replace(out_stem.with_suffix(".json"))
    return pt


def _state_mismatch(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> str | None:
    """The first difference between a model's state dict and a loaded one, as a short phrase, or None."""
    missing = [k for k in expected if k not in state]
    if missing:
        return f"{len(missing)} tensors missing, e.g. {missing[0]}"
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        return f"{len(unexpected)} unexpected tensors, e.g. {unexpected[0]}"
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            return f"{k} has shape {tuple(state[k].shape)}, the metadata's model needs {tuple(v.shape)}"
    return None


def load_model(weights: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelCard]:
    """Load ``weights`` (a .pt, with its .json beside it) in eval mode on ``device``; errors name the file."""
    pt = Path(weights)
    if pt.suffix == ".json":
        pt = pt.with_suffix(".pt")
    if not pt.is_file():
        raise WeightsError(f"{pt}: weights file not found (train one with 'fer-video train' or pass --weights)")
    card = ModelCard.from_json(pt.with_suffix(".json"))
    if card.sha256 and file_sha256(pt) != card.sha256:
        raise WeightsError(f"{pt}: sha256 does not match {pt.with_suffix('.json').name} (corrupt or mismatched)")
    try:
        state = torch.load(pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file: pickle, zip, runtime errors
        if "global" in str(exc).lower():  # weights_only refused a class or function reference
            raise WeightsError(
                f"{pt}: refused, it holds objects other than tensors (loaded with weights_only=True)"
            ) from None
        raise WeightsError(
            f"{pt}: cannot read weights, corrupt or not a PyTorch file ({exc.__class__.__name__})"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{pt}: not a state dict (a mapping of parameter names to tensors)")
    if card.arch != ARCH:
        raise WeightsError(f"{pt}: architecture {card.arch!r} is not supported (expected {ARCH})")
    with torch.device("meta"):  # no random initialisation (0.3 CPU-s) of weights that are loaded next
        model = build_model(len(card.classes), card.channels, card.stem, init=False)
    mismatch = _state_mismatch(model.state_dict(), state)
    if mismatch:
        raise WeightsError(f"{pt}: weights do not match the model in {pt.with_suffix('.json').name} ({mismatch})")
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, assign=True)
    except (RuntimeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise WeightsError(f"{pt}: weights do not match the model in its metadata ({first})") from None
    model.eval().to(device)
    return model, card
