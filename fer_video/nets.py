"""The networks, defined here so that inference imports only torch: a ResNet18 and MTCNN's P-, R- and O-Net.

Importing any part of torchvision or facenet-pytorch runs their package ``__init__``, which imports every
torchvision model, dataset and transform (about 0.7 s, more than half of ``import torch``). These definitions
have the same modules in the same order as ``torchvision.models.resnet18`` and facenet-pytorch's
``PNet``/``RNet``/``ONet``: the same state-dict keys, the same random initialisation from a given seed, the
same outputs (tests/test_nets.py checks all three against the originals). MTCNN's weights are read from the
facenet-pytorch wheel, where they ship; non-maximum suppression is torchvision's compiled kernel, loaded
without torchvision's Python package.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import torch
from torch import Tensor, nn


# ------------------------------------------------------------------------------------------------ ResNet18
def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (two 3x3 convolutions and a shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _layer(cin: int, cout: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or cin != cout:  # made before the blocks, as torchvision does (the same random draws)
        downsample = nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(cout))
    return nn.Sequential(BasicBlock(cin, cout, stride, downsample), BasicBlock(cout, cout))


class ResNet18(nn.Module):
    """``torchvision.models.resnet18(weights=None, num_classes=...)``, module for module.

    ``init=False`` leaves out torchvision's Kaiming initialisation, for a model whose weights are loaded next
    (on the meta device that initialisation would import torch's compiler stack: seconds)."""

    def __init__(self, num_classes: int = 1000, init: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.layer4 = _layer(256, 512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules() if init else ():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ------------------------------------------------------------------------------------------------ MTCNN
class PNet(nn.Module):
    """MTCNN's proposal network (facenet-pytorch's ``PNet``, without loading weights itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(self.pool1(x)))))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """MTCNN's refinement network on 24 px crops (facenet-pytorch's ``RNet``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """MTCNN's output network on 48 px crops: scores, boxes, five landmarks (facenet-pytorch's ``ONet``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


def _package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it (its ``__init__`` does not run)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def mtcnn_nets() -> tuple[PNet, RNet, ONet]:
    """The three networks with the weights that ship inside the facenet-pytorch wheel, in eval mode."""
    data = _package_dir("facenet_pytorch") / "data"
    with torch.device("meta"):  # no random initialisation of weights that are loaded next
        nets = (PNet(), RNet(), ONet())
    for net, name in zip(nets, ("pnet", "rnet", "onet"), strict=True):
        state = torch.load(data / f"{name}.pt", map_location="cpu", weights_only=True)
        net.load_state_dict({k: v.contiguous() for k, v in state.items()}, assign=True)
        net.eval()
    return nets


# ------------------------------------------------------------------------------------------------ NMS
def _torchvision_nms_op():
    """``torch.ops.torchvision.nms``, loading torchvision's compiled library (not its Python package) if need be."""
    try:
        return torch.ops.torchvision.nms  # already there when torchvision was imported
    except (AttributeError, RuntimeError):
        pass
    folder = _package_dir("torchvision")
    for stem in ("_C_stable", "_C"):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if (folder / f"{stem}{suffix}").is_file():
                torch.ops.load_library(str(folder / f"{stem}{suffix}"))
                return torch.ops.torchvision.nms
    from torchvision.ops import nms  # a layout this does not know: the package itself (slower to import)

    return nms


class BatchedNMS:
    """``torchvision.ops.batched_nms``: non-maximum suppression within each group of ``idxs``, same results."""

    def __init__(self) -> None:
        self._nms = _torchvision_nms_op()

    def __call__(self, boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64, device=boxes.device)
        if boxes.numel() > (4000 if boxes.device.type == "cpu" else 100_000):  # torchvision's switch-over
            keep_mask = torch.zeros_like(scores, dtype=torch.bool)
            for group in torch.unique(idxs):
                where = torch.where(idxs == group)[0]
                keep_mask[where[self._nms(boxes[where], scores[where], iou_threshold)]] = True
            keep = torch.where(keep_mask)[0]
            return keep[scores[keep].sort(descending=True)[1]]
        offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))  # groups moved apart
        return self._nms(boxes + offsets[:, None], scores, iou_threshold)
