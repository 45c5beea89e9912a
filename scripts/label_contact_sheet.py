"""Render the box and label drawing on synthetic frames at several sizes and save a contact sheet.

    python scripts/label_contact_sheet.py [--out docs/images/labels-contact-sheet.png] [--frames DIR]

Each frame has five faces (package-shipped photos: scikit-image's astronaut, matplotlib's Grace Hopper): one
touching the left edge, one the top edge, one the bottom-right corner, and two close together. The background
runs from dark to light so the colours are seen on both. The sheet's top row shows every frame scaled to one
height (the proportions a viewer sees), the bottom row a 1:1 crop around a label of the close pair (the pixels).
``--frames DIR`` also writes every frame at full size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_video.demo import face_sprites
from fer_video.draw import COLOURS, draw_faces, label_rects

SIZES = ((256, 256), (640, 360), (720, 1280), (1920, 1080), (3840, 2160))
# (x, y) of each face's top-left corner as fractions of the free room, and its emotion
LAYOUT = (
    ((0.0, 0.55), "happy"),  # touches the left edge
    ((0.62, 0.0), "surprise"),  # touches the top edge
    ((1.0, 1.0), "fear"),  # touches the bottom-right corner
    ((0.30, 0.35), "neutral"),  # the close pair
    ((0.30, 0.35), "sad"),
)
ROW_HEIGHT = 300
CROP = (360, 240)


def background(width: int, height: int) -> np.ndarray:
    """Dark on the left, light on the right, a little vertical shading."""
    xx = np.linspace(20, 235, width, dtype=np.float32)[None, :]
    yy = np.linspace(-15, 15, height, dtype=np.float32)[:, None]
    grey = np.clip(xx + yy, 0, 255)
    return np.repeat(grey[:, :, None], 3, axis=2).astype(np.uint8)


def face_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The five face boxes of a frame; the close pair sits side by side with a gap of 3 % of the face."""
    side = max(24, int(0.24 * min(width, height)))
    boxes = []
    for k, ((fx, fy), _) in enumerate(LAYOUT):
        x, y = int(fx * (width - side)), int(fy * (height - side))
        if k == 4:
            x = boxes[3][2] + max(2, side // 30)
        boxes.append((x, y, x + side, y + side))
    return boxes


def render(width: int, height: int, sprites: list[np.ndarray]) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One annotated frame and where the label of the close pair's first face is."""
    image = background(width, height)
    boxes = face_boxes(width, height)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        x2, y2 = min(x2, width), min(y2, height)
        sprite = cv2.resize(sprites[k % 2], (boxes[k][2] - x1, boxes[k][3] - y1), interpolation=cv2.INTER_AREA)
        image[y1:y2, x1:x2] = sprite[: y2 - y1, : x2 - x1]
    classes = list(COLOURS)  # the FER2013 classes, in the model's order
    probs = np.full((len(boxes), len(classes)), 0.02, dtype=np.float32)
    for k, (_, emotion) in enumerate(LAYOUT):
        probs[k, classes.index(emotion)] = 0.88
    ids = np.arange(len(boxes)) + 7
    draw_faces(image, np.array(boxes, np.float32), ids, probs, classes)
    texts = [f"#{i} {emotion} 0.88" for i, (_, emotion) in zip(ids, LAYOUT, strict=True)]
    labels = label_rects(np.array(boxes, np.float32), texts, width, height)
    return image, labels[3]


def crop_around(image: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """A CROP-sized 1:1 window around ``region`` (a label: its left part, a little below its middle)."""
    h, w = image.shape[:2]
    cw, ch = min(CROP[0], w), min(CROP[1], h)
    cx, cy = region[0] + cw // 3, (region[1] + region[3]) // 2 + ch // 6
    x = min(max(cx - cw // 2, 0), w - cw)
    y = min(max(cy - ch // 2, 0), h - ch)
    out = np.full((CROP[1], CROP[0], 3), 255, np.uint8)
    out[:ch, :cw] = image[y : y + ch, x : x + cw]
    return out


def caption(image: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, image])


def row(tiles: list[np.ndarray], gap: int = 8) -> np.ndarray:
    height = max(t.shape[0] for t in tiles)
    padded = [np.vstack([t, np.full((height - t.shape[0], t.shape[1], 3), 255, np.uint8)]) for t in tiles]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    return np.hstack([x for t in padded for x in (t, spacer)][:-1])


def contact_sheet(frames_dir: Path | None) -> np.ndarray:
    sprites = face_sprites()
    whole, crops = [], []
    for width, height in SIZES:
        image, label = render(width, height, sprites)
        if frames_dir is not None:
            Image.fromarray(image).save(frames_dir / f"labels-{width}x{height}.png")
        scale = ROW_HEIGHT / height
        small = cv2.resize(image, (round(width * scale), ROW_HEIGHT), interpolation=cv2.INTER_AREA)
        whole.append(caption(small, f"{width}x{height}, scaled to {ROW_HEIGHT} px high"))
        crops.append(caption(crop_around(image, label), f"{width}x{height}, 1:1"))
    top, bottom = row(whole), row(crops)
    width = max(top.shape[1], bottom.shape[1])
    pad = [np.hstack([r, np.full((r.shape[0], width - r.shape[1], 3), 255, np.uint8)]) for r in (top, bottom)]
    return np.vstack([pad[0], np.full((10, width, 3), 255, np.uint8), pad[1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/labels-contact-sheet.png"))
    parser.add_argument("--frames", type=Path, default=None, help="also write each frame at full size here")
    args = parser.parse_args()
    if args.frames is not None:
        args.frames.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(args.frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps the PNG small; the labels' flat colours survive it
    Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]}, {args.out.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
