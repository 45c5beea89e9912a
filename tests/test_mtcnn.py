"""fer-video's MTCNN cascade must find exactly the boxes facenet-pytorch's ``MTCNN.detect`` finds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from facenet_pytorch import MTCNN
from torch.nn.functional import interpolate

from fer_video.demo import face_sprites, render_frame
from fer_video.mtcnn import MTCNNCascade, area_resize_frames, area_resize_regions


def _torch_area(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return interpolate(x, size=(out_h, out_w), mode="area")[0].permute(1, 2, 0).numpy()


def test_area_resize_matches_torch_area_interpolation():
    """Down- and up-scaling, whole frames and regions: the same means as interpolate(mode="area")."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    sums = np.stack([cv2.integral(f, sdepth=cv2.CV_64F) for f in frames])
    for out_h, out_w in ((12, 20), (24, 24), (37, 53), (48, 70)):
        np.testing.assert_allclose(
            area_resize_frames(sums, out_h, out_w)[1], _torch_area(frames[1], out_h, out_w), atol=1e-3
        )
    regions = [(0, 3, 30, 5, 50), (1, 10, 20, 0, 9), (1, 0, 37, 0, 53), (0, 36, 37, 52, 53)]  # (image, y0, y1, x0, x1)
    idx, y0, y1, x0, x1 = (np.array(v) for v in zip(*regions, strict=True))
    got = area_resize_regions(sums, idx, y0, y1, x0, x1, 24, 24)
    for k, (i, a, b, c, d) in enumerate(regions):
        np.testing.assert_allclose(got[k], _torch_area(frames[i, a:b, c:d], 24, 24), atol=1e-3)


@pytest.mark.parametrize("min_size", [20, 40])
def test_cascade_finds_facenet_pytorchs_boxes(min_size):
    sprites = face_sprites()
    frames = np.stack([render_frame(i, 25.0, 640, 360, sprites, 2, True) for i in (0, 9, 30)])
    ref = MTCNN(keep_all=True, min_face_size=min_size, post_process=False)
    boxes, probs = ref.detect(frames)
    got = MTCNNCascade(torch.device("cpu")).detect(frames, min_size)
    for found, b, p in zip(got, boxes, probs, strict=True):
        assert b is not None and len(found) == len(b) == 2
        order = np.argsort(-(found[:, 2] - found[:, 0]) * (found[:, 3] - found[:, 1]))  # facenet: largest first
        np.testing.assert_allclose(found[order, :4], np.asarray(b, np.float32), atol=0.05)
        np.testing.assert_allclose(found[order, 4], np.asarray(p, np.float32), atol=1e-4)


def test_cascade_on_faceless_and_tiny_frames_returns_empty_arrays():
    cascade = MTCNNCascade(torch.device("cpu"))
    blank = np.full((2, 90, 160, 3), 127, np.uint8)
    assert [f.shape for f in cascade.detect(blank, 20)] == [(0, 5), (0, 5)]
    assert [f.shape for f in cascade.detect(blank[:, :10, :10], 20)] == [(0, 5), (0, 5)]  # no pyramid level
