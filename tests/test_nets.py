"""Our network definitions against the originals: torchvision's ResNet18, facenet-pytorch's MTCNN networks and
torchvision's batched NMS give the same keys, initial weights, outputs and kept boxes."""

from __future__ import annotations

import pytest
import torch

from fer_video.nets import BatchedNMS, ResNet18, mtcnn_nets


def test_resnet18_matches_torchvision_key_for_key_draw_for_draw_and_output_for_output():
    from torchvision.models import resnet18

    torch.manual_seed(3)
    ours = ResNet18(7).eval()
    torch.manual_seed(3)
    theirs = resnet18(weights=None, num_classes=7).eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key  # the same random initialisation from the same seed
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(ours(x), theirs(x))


def test_mtcnn_networks_match_facenet_pytorch():
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    torch.manual_seed(0)
    inputs = (torch.randn(2, 3, 40, 52), torch.randn(5, 3, 24, 24), torch.randn(5, 3, 48, 48))
    for ours, theirs, x in zip(mtcnn_nets(), (PNet().eval(), RNet().eval(), ONet().eval()), inputs, strict=True):
        a, b = ours.state_dict(), theirs.state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
        with torch.inference_mode():
            for u, v in zip(ours(x), theirs(x), strict=True):
                assert torch.equal(u, v)


@pytest.mark.parametrize("n", [0, 1, 50, 1500])  # 1500 boxes: torchvision's per-group path (over 4000 numbers)
def test_batched_nms_keeps_the_boxes_torchvision_keeps(n):
    from torchvision.ops import batched_nms

    g = torch.Generator().manual_seed(n)
    corner = torch.rand(n, 2, generator=g) * 200
    boxes = torch.cat([corner, corner + 5 + torch.rand(n, 2, generator=g) * 40], dim=1)
    scores = torch.rand(n, generator=g)
    idxs = torch.randint(0, 3, (n,), generator=g)
    for threshold in (0.5, 0.7):
        assert torch.equal(BatchedNMS()(boxes, scores, idxs, threshold), batched_nms(boxes, scores, idxs, threshold))
