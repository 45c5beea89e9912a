"""The timeline plot: one panel per face, lines in the class colours, round time ticks, a no-face panel."""

from __future__ import annotations

import cv2
import numpy as np

from fer_video.draw import contrast_ratio
from fer_video.plot import PlotLayout, line_colour, render_plot, time_ticks, write_plot

CLASSES = ["angry", "happy", "sad", "neutral"]


def _face(start: float, n: int, leader: str) -> dict[str, np.ndarray]:
    t = start + np.arange(n) / 25
    out = {"time_s": t, **{c: np.full(n, 0.1) for c in CLASSES}}
    out[leader] = np.full(n, 0.7)
    return out


def test_one_panel_per_face_with_each_class_drawn_in_its_colour(tmp_path):
    faces = {3: _face(0.0, 50, "happy"), 8: _face(1.0, 75, "sad")}
    image = render_plot(faces, CLASSES, "clip.mp4: smoothed probabilities")
    lay = PlotLayout()
    assert image.shape == (lay.header + 2 * lay.panel + lay.gap + lay.footer, lay.width, 3)
    for name in CLASSES:
        assert (image == line_colour(name)).all(axis=2).sum() > 20, name  # lines at 0.1 overlap
    write_plot(tmp_path / "p.png", faces, CLASSES)
    assert cv2.imread(str(tmp_path / "p.png")).shape == image.shape


def test_a_video_without_faces_gets_one_empty_panel():
    image = render_plot({}, CLASSES)
    assert image.shape[0] == PlotLayout().header + PlotLayout().panel + PlotLayout().footer


def test_time_ticks_are_round_and_cover_the_range():
    for start, end in [(0, 4.2), (0, 0.04), (0, 3600), (12.5, 13.1)]:
        ticks = time_ticks(start, end)
        assert 2 <= len(ticks) <= 10 and ticks[0] >= start - 1e-9 and ticks[-1] <= end + 1e-9
        step = float(f"{ticks[1] - ticks[0]:.6g}")
        assert np.isclose(step / 10 ** np.floor(np.log10(step)), [1, 2, 5]).any(), (start, end, step)


def test_line_colours_stand_out_on_white():
    for name in [*CLASSES, "fear", "surprise", "disgust", "unknown"]:
        assert contrast_ratio(line_colour(name), (255, 255, 255)) >= 2.2
