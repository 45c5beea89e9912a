"""Boxes and labels: sizes follow the frame, labels stay inside it and clear of each other, colours contrast."""

from __future__ import annotations

import numpy as np
import pytest

from fer_video.draw import (
    COLOURS,
    MIN_LINE_PX,
    MIN_TEXT_PX,
    contrast_ratio,
    draw_faces,
    label_rects,
    style_for,
    text_colour,
)

CLASSES = list(COLOURS)  # the FER2013 classes, in the model's order
SIZES = [(256, 256), (640, 360), (720, 1280), (1920, 1080), (3840, 2160)]


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _probs(n: int, emotion: str = "surprise") -> np.ndarray:
    p = np.full((n, len(CLASSES)), 0.01, np.float32)
    p[:, CLASSES.index(emotion)] = 0.94
    return p


def test_text_and_lines_grow_with_the_frame_and_keep_their_minimum():
    styles = [style_for(w, h) for w, h in SIZES]
    text = [s.text_px for s in styles]
    lines = [s.line for s in styles]
    assert text == sorted(text) and text[-1] > 3 * text[1]
    assert lines == sorted(lines) and lines[-1] > lines[0]
    for (w, h), s in zip(SIZES, styles, strict=True):
        short = min(w, h)
        assert s.text_px >= MIN_TEXT_PX and s.line >= MIN_LINE_PX
        if short >= 720:  # above the minimums: about 2.75 % and 0.4 % of the shorter side
            assert 0.025 <= s.text_px / short <= 0.03
            assert 0.003 <= s.line / short <= 0.005
    tiny = style_for(96, 64)
    assert tiny.text_px == MIN_TEXT_PX and tiny.line == MIN_LINE_PX


def test_the_drawn_text_is_as_tall_as_the_style_says():
    """The label's glyphs, measured in pixels, are about ``text_px`` high (at least the readable minimum)."""
    for w, h in [(256, 256), (1920, 1080)]:
        image = np.zeros((h, w, 3), np.uint8)
        box = np.array([[w * 0.4, h * 0.4, w * 0.6, h * 0.6]], np.float32)
        draw_faces(image, box, np.array([3]), _probs(1, "sad"), CLASSES)  # white text on blue
        x1, y1, x2, y2 = label_rects(box, ["#3 sad 0.94"], w, h)[0]
        rows = np.flatnonzero((image[y1:y2, x1:x2] > 200).all(axis=2).any(axis=1))
        glyph_h = rows[-1] - rows[0] + 1
        s = style_for(w, h)
        assert s.text_px * 0.85 <= glyph_h <= s.text_px * 1.4, (w, h, glyph_h, s)


@pytest.mark.parametrize("size", SIZES)
def test_labels_stay_inside_the_frame_when_faces_touch_or_cross_its_edges(size):
    w, h = size
    side = 0.3 * min(w, h)
    boxes = np.array(
        [
            [-20, h * 0.4, side - 20, h * 0.4 + side],  # past the left edge
            [w * 0.5, -10, w * 0.5 + side, side - 10],  # past the top
            [w - side + 25, h - side + 30, w + 25, h + 30],  # past the bottom-right corner (a carried box)
            [0, 0, w, h],  # the whole frame
        ],
        np.float32,
    )
    texts = [f"#{i} surprise 0.94" for i in range(len(boxes))]
    for x1, y1, x2, y2 in label_rects(boxes, texts, w, h):
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    image = np.full((h, w, 3), 128, np.uint8)
    draw_faces(image, boxes, np.arange(len(boxes)), _probs(len(boxes)), CLASSES)
    edge = image[:, -(style_for(w, h).line + 2 * style_for(w, h).edge) :]
    assert (edge == COLOURS["surprise"]).all(axis=2).any()  # the clipped box's line shows at the frame's edge


@pytest.mark.parametrize("size", SIZES)
def test_labels_of_neighbouring_faces_do_not_overlap(size):
    """Two faces side by side 2 px apart, and two stacked: four labels, none covering another."""
    w, h = size
    side = 0.2 * min(w, h)
    x, y = 0.3 * w, 0.3 * h
    boxes = np.array(
        [
            [x, y, x + side, y + side],
            [x + side + 2, y + 3, x + 2 * side + 2, y + side + 3],
            [x, y + side + 2, x + side, y + 2 * side + 2],
            [x + side + 2, y + side + 4, x + 2 * side + 2, y + 2 * side + 4],
        ],
        np.float32,
    )
    rects = label_rects(boxes, [f"#{10 + i} surprise 0.94" for i in range(4)], w, h)
    for i in range(4):
        for j in range(i + 1, 4):
            assert not _overlap(rects[i], rects[j]), (i, j, rects)


def test_label_text_contrasts_with_every_emotion_colour():
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    assert len(set(COLOURS.values())) == len(COLOURS) and set(CLASSES) <= set(COLOURS)
    for colour in COLOURS.values():
        assert contrast_ratio(colour, text_colour(colour)) >= 4.5, colour  # WCAG AA for text


def test_a_label_goes_below_its_face_rather_than_over_the_face_above():
    w, h = 1280, 720
    upper = [600, 100, 700, 200]
    lower = [600, 205, 700, 305]  # 5 px below: a label above it would cover the upper face
    rects = label_rects(np.array([upper, lower], np.float32), ["#0 happy 0.90", "#1 sad 0.80"], w, h)
    assert rects[0][3] <= upper[1]  # above its own face
    assert rects[1][1] >= lower[3]  # below its own face
