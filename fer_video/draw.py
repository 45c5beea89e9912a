"""Boxes and labels on a frame, sized to stay readable at any resolution."""

from __future__ import annotations

import cv2
import numpy as np

#: RGB colour per emotion (unknown class names get grey)
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (230, 50, 50),
    "disgust": (120, 170, 40),
    "fear": (150, 80, 200),
    "happy": (250, 200, 30),
    "sad": (60, 110, 230),
    "surprise": (250, 130, 30),
    "neutral": (200, 200, 200),
}


def draw_faces(
    image: np.ndarray, boxes: np.ndarray, face_ids: np.ndarray, probs: np.ndarray, classes: list[str]
) -> np.ndarray:
    """Draw in place on RGB ``image``: a box per face, and ``#id emotion 0.87`` above it (inside if no room)."""
    h, w = image.shape[:2]
    unit = max(min(h, w) / 720.0, 0.35)
    thick = max(1, int(round(2 * unit)))
    font_scale = max(0.6 * unit, 0.35)  # OpenCV text below ~0.35 is unreadable
    for box, fid, p in zip(boxes, face_ids, probs, strict=True):
        k = int(np.argmax(p))
        colour = COLOURS.get(classes[k], (180, 180, 180))
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
        label = f"#{fid} {classes[k]} {p[k]:.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(y1 + th + base + 4, h - 1)
        tx = min(max(x1, 0), max(w - tw - 2, 0))
        cv2.rectangle(image, (tx, ty - th - base), (tx + tw + 2, ty + base // 2), colour, -1)
        cv2.putText(
            image,
            label,
            (tx + 1, ty - base // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale,
            (20, 20, 20),
            thick,
            cv2.LINE_AA,
        )
    return image
