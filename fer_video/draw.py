"""Boxes and labels on a frame, sized to stay readable at any resolution.

Sizes follow the frame's shorter side: text (the height of a digit) about 2.75 % of it, at least 9 px (which
still reads on a phone), lines about 0.4 %, at least 2 px. Each label sits on a filled box of its emotion's
colour with black or white text, whichever contrasts more; boxes have a thin dark edge so they show on light
and dark backgrounds. A label goes above its face, else below it (preferably not over another face), else next
to the labels in the way, else inside the box's top; it never leaves the frame and is kept clear of labels
already placed, so neighbouring faces' labels do not cover each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from fer_video.types import clip_xyxy

#: RGB colour per emotion (unknown class names get grey); all saturated or light enough for either text colour
COLOURS: dict[str, tuple[int, int, int]] = {
    "angry": (220, 38, 38),
    "disgust": (46, 160, 67),
    "fear": (147, 72, 214),
    "happy": (250, 204, 21),
    "sad": (37, 99, 235),
    "surprise": (249, 115, 22),
    "neutral": (203, 213, 225),
}
UNKNOWN_COLOUR = (160, 160, 160)
DARK = (15, 15, 15)
LIGHT = (250, 250, 250)
FONT = cv2.FONT_HERSHEY_SIMPLEX

TEXT_FRACTION = 0.0275  # text height (a digit's) / shorter side
MIN_TEXT_PX = 9
LINE_FRACTION = 0.004  # box line width / shorter side
MIN_LINE_PX = 2


@dataclass(frozen=True)
class LabelStyle:
    """Pixel sizes for one frame size: box line width, text height (a digit's) and the depth below the baseline,
    font scale and stroke, label padding."""

    line: int
    text_px: int
    descent: int
    font_scale: float
    stroke: int
    pad: int
    edge: int  # dark edge around boxes


@lru_cache(maxsize=16)
def style_for(width: int, height: int) -> LabelStyle:
    """The style of a ``width`` x ``height`` frame (cached: a video has one size)."""
    short = max(min(width, height), 1)
    text_px = max(MIN_TEXT_PX, round(TEXT_FRACTION * short))
    digit_h, descent = _ink_per_scale()
    line = max(MIN_LINE_PX, round(LINE_FRACTION * short))
    return LabelStyle(
        line=line,
        text_px=text_px,
        descent=round(text_px * descent / digit_h),
        font_scale=text_px / digit_h,
        stroke=max(1, round(text_px / 10)),
        pad=max(2, round(text_px * 0.3)),
        edge=max(1, line // 3),
    )


@lru_cache(maxsize=1)
def _ink_per_scale() -> tuple[float, float]:
    """A digit's height above the baseline and the depth of descenders below it, in pixels at font scale 1
    (measured: OpenCV's getTextSize reports the font's whole height, which differs between versions)."""
    scale, base = 10.0, 400
    ink = np.zeros((base + 100, 400), np.uint8)
    cv2.putText(ink, "0", (10, base), FONT, scale, 255, 1, cv2.LINE_8)
    cv2.putText(ink, "y", (200, base), FONT, scale, 255, 1, cv2.LINE_8)
    rows = np.flatnonzero(ink.any(axis=1))
    return float(base - rows[0]) / scale, float(rows[-1] - base) / scale


def contrast_ratio(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio of two sRGB colours, 1 (none) to 21 (black on white)."""

    def luminance(c: tuple[int, int, int]) -> float:
        lin = [(v / 255) / 12.92 if v <= 10 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    lo, hi = sorted((luminance(a), luminance(b)))
    return (hi + 0.05) / (lo + 0.05)


def text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Near-black or near-white, whichever contrasts more with ``fill``."""
    return DARK if contrast_ratio(fill, DARK) >= contrast_ratio(fill, LIGHT) else LIGHT


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive)


def _int_rect(box: np.ndarray) -> Rect:
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    return x1, y1, x2, y2


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(r: Rect, width: int, height: int) -> bool:
    return r[0] >= 0 and r[1] >= 0 and r[2] <= width and r[3] <= height


def _shift_clear(r: Rect, placed: list[Rect], height: int, down: bool) -> Rect | None:
    """``r`` moved down (or up) past every placed label it meets; None when that leaves the frame."""
    x1, y1, x2, y2 = r
    while 0 <= y1 and y2 <= height:
        hits = [p for p in placed if _overlaps((x1, y1, x2, y2), p)]
        if not hits:
            return x1, y1, x2, y2
        y1 = max(p[3] for p in hits) if down else min(p[1] for p in hits) - (y2 - y1)
        y2 = y1 + (r[3] - r[1])
    return None


def place_label(
    box: Rect, size: tuple[int, int], placed: list[Rect], width: int, height: int, gap: int, faces: Sequence[Rect] = ()
) -> Rect:
    """Where a label of ``size`` (w, h) for ``box`` goes, inside the frame and clear of the ``placed`` labels
    where the frame has room: above the box, else below it (either preferably not over other ``faces``); else
    the nearer of those two moved up (or down) past the labels in the way, if that is within two label heights;
    else inside the box's top (moved down past labels if need be)."""
    lw, lh = min(size[0], width), min(size[1], height)
    x = min(max(box[0], 0), width - lw)
    above, below, inside = ((x, y, x + lw, y + lh) for y in (box[1] - gap - lh, box[3] + gap, box[1] + gap))
    fits = [r for r in (above, below) if _inside(r, width, height) and not any(_overlaps(r, p) for p in placed)]
    others = [f for f in faces if f != box]
    free = [r for r in fits if not any(_overlaps(r, f) for f in others)] + fits
    if free:
        return free[0]
    moved = [_shift_clear(r, placed, height, down) for r, down in ((above, False), (below, True))]
    near = [m for m, r in zip(moved, (above, below), strict=True) if m and abs(m[1] - r[1]) <= 2 * lh]
    if near:
        return min(near, key=lambda m: min(abs(m[1] - above[1]), abs(m[1] - below[1])))
    top = min(max(inside[1], 0), height - lh)
    start = (x, top, x + lw, top + lh)
    return _shift_clear(start, placed, height, True) or _shift_clear(start, placed, height, False) or start


def _draw_box(image: np.ndarray, box: Rect, colour: tuple[int, int, int], style: LabelStyle) -> None:
    # the line is centred on the box edge; at the frame's edge it is moved in so that all of it shows
    h, w = image.shape[:2]
    half = (style.line + 2 * style.edge) // 2
    x1, x2 = (min(max(v, half), max(w - 1 - half, half)) for v in (box[0], box[2] - 1))
    y1, y2 = (min(max(v, half), max(h - 1 - half, half)) for v in (box[1], box[3] - 1))
    p1, p2 = (x1, y1), (max(x2, x1), max(y2, y1))
    cv2.rectangle(image, p1, p2, DARK, style.line + 2 * style.edge, cv2.LINE_8)
    cv2.rectangle(image, p1, p2, colour, style.line, cv2.LINE_8)


def _draw_label(image: np.ndarray, rect: Rect, text: str, colour: tuple[int, int, int], style: LabelStyle) -> None:
    x1, y1, x2, y2 = rect
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), DARK, style.edge, cv2.LINE_8)
    baseline = y1 + style.pad + style.text_px
    cv2.putText(
        image, text, (x1 + style.pad, baseline), FONT, style.font_scale, text_colour(colour), style.stroke, cv2.LINE_AA
    )


def label_rects(boxes: np.ndarray, texts: list[str], width: int, height: int) -> list[Rect]:
    """Where each label goes (in the order given; boxes clipped to the frame first)."""
    style = style_for(width, height)
    placed: list[Rect] = []
    faces = [_int_rect(b) for b in clip_xyxy(boxes, width, height)]
    for box, text in zip(faces, texts, strict=True):
        (tw, _), _ = cv2.getTextSize(text, FONT, style.font_scale, style.stroke)
        size = (tw + 2 * style.pad, style.text_px + style.descent + 2 * style.pad)
        placed.append(place_label(box, size, placed, width, height, style.line // 2, faces))
    return placed


def draw_faces(
    image: np.ndarray, boxes: np.ndarray, face_ids: np.ndarray, probs: np.ndarray, classes: list[str]
) -> np.ndarray:
    """Draw in place on RGB ``image``: a box per face (clipped to the frame) and ``#id emotion 0.87`` beside it."""
    h, w = image.shape[:2]
    style = style_for(w, h)
    boxes = clip_xyxy(boxes, w, h)
    ks = [int(np.argmax(p)) for p in probs]
    texts = [f"#{fid} {classes[k]} {p[k]:.2f}" for fid, k, p in zip(face_ids, ks, probs, strict=True)]
    colours = [COLOURS.get(classes[k], UNKNOWN_COLOUR) for k in ks]
    for box, colour in zip(boxes, colours, strict=True):
        _draw_box(image, _int_rect(box), colour, style)
    for rect, text, colour in zip(label_rects(boxes, texts, w, h), texts, colours, strict=True):
        _draw_label(image, rect, text, colour, style)
    return image
