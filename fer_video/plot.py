"""The timeline plot (``NAME.timeline.png``): smoothed probabilities over time, one panel per face.

Drawn with OpenCV, which the pipeline has loaded anyway: matplotlib would add about 0.85 CPU-s of import and
0.3 s of drawing to every run (more than the rest of a short clip's work). A shared time axis, a grid at 0.25
steps, one line per class in its label colour (darkened where it would be faint on white), a legend on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_video.draw import COLOURS, UNKNOWN_COLOUR, contrast_ratio

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE, INK, GRID = (255, 255, 255), (40, 40, 40), (225, 225, 225)


@dataclass(frozen=True)
class PlotLayout:
    width: int = 1000
    header: int = 62  # title and legend
    panel: int = 150
    gap: int = 22
    footer: int = 44  # time ticks and axis name
    left: int = 78
    right: int = 20


def line_colour(name: str) -> tuple[int, int, int]:
    """The class's label colour, darkened until it stands out on white (contrast >= 2.2)."""
    colour = np.array(COLOURS.get(name, UNKNOWN_COLOUR), dtype=np.float64)
    while contrast_ratio(tuple(int(c) for c in colour), WHITE) < 2.2:
        colour *= 0.9
    return tuple(int(c) for c in colour)  # type: ignore[return-value]


def time_ticks(start: float, end: float, most: int = 10) -> np.ndarray:
    """Round tick positions (steps of 1, 2 or 5 times a power of ten) covering [start, end], at most ``most``."""
    span = max(end - start, 1e-6)
    base = 10 ** math.floor(math.log10(span / most))
    step = next(m * base for m in (1, 2, 5, 10) if span / (m * base) <= most)
    return np.arange(math.ceil(start / step) * step, end + step * 1e-6, step)


def _text(image: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.42, anchor: str = "left") -> None:
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    x = org[0] - (w if anchor == "right" else w // 2 if anchor == "centre" else 0)
    cv2.putText(image, text, (x, org[1] + h // 2), FONT, scale, INK, 1, cv2.LINE_AA)


def _legend(image: np.ndarray, classes: list[str], y: int) -> None:
    widths = [cv2.getTextSize(c, FONT, 0.42, 1)[0][0] + 34 for c in classes]
    x = (image.shape[1] - sum(widths)) // 2
    for name, w in zip(classes, widths, strict=True):
        cv2.line(image, (x, y), (x + 20, y), line_colour(name), 2, cv2.LINE_AA)
        _text(image, name, (x + 25, y))
        x += w


def _panel(
    image: np.ndarray, top: int, series: dict[str, np.ndarray], classes: list[str], x_of, lay: PlotLayout, label: str
) -> None:
    x0, x1, bottom = lay.left, lay.width - lay.right, top + lay.panel
    for k in range(5):  # grid at 0, 0.25, ..., 1
        y = bottom - round(k * lay.panel / 4)
        cv2.line(image, (x0, y), (x1, y), GRID, 1)
        if k % 2 == 0:
            _text(image, f"{k / 4:.1f}", (x0 - 6, y), anchor="right")
    _text(image, label, (8, top + lay.panel // 2))
    t = series["time_s"]
    for name in classes:
        ys = bottom - series[name] * lay.panel
        points = np.stack([x_of(t), ys], axis=1).round().astype(np.int32)
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, line_colour(name), 2, cv2.LINE_AA)
    cv2.rectangle(image, (x0, top), (x1, bottom), INK, 1)


def render_plot(faces: dict[int, dict[str, np.ndarray]], classes: list[str], title: str = "") -> np.ndarray:
    """The plot as an RGB image: one panel per entry of ``faces`` (face id -> ``time_s`` and one array per class)."""
    lay = PlotLayout()
    n = max(len(faces), 1)
    height = lay.header + n * lay.panel + (n - 1) * lay.gap + lay.footer
    image = np.full((height, lay.width, 3), 255, np.uint8)
    if title:
        _text(image, title, (lay.width // 2, 14), 0.45, "centre")
    _legend(image, classes, 40)
    times = [s["time_s"] for s in faces.values() if len(s["time_s"])]
    start = min((float(t.min()) for t in times), default=0.0)
    end = max((float(t.max()) for t in times), default=1.0)
    start, end = min(start, 0.0), max(end, start + 1e-3)
    scale = (lay.width - lay.right - lay.left) / (end - start)

    def x_of(t: np.ndarray) -> np.ndarray:
        return lay.left + (t - start) * scale

    for i, (fid, series) in enumerate(faces.items()):
        _panel(image, lay.header + i * (lay.panel + lay.gap), series, classes, x_of, lay, f"face {fid}")
    if not faces:
        top = lay.header
        cv2.rectangle(image, (lay.left, top), (lay.width - lay.right, top + lay.panel), INK, 1)
        _text(image, "no face detected", ((lay.left + lay.width - lay.right) // 2, top + lay.panel // 2), 0.5, "centre")
    axis_y = height - lay.footer + 10
    for tick in time_ticks(start, end):
        x = round(float(x_of(np.array(tick))))
        cv2.line(image, (x, axis_y - 10), (x, axis_y - 5), INK, 1)
        _text(image, f"{tick:g}", (x, axis_y + 4), anchor="centre")
    _text(image, "time (s)", (lay.width // 2, height - 10), anchor="centre")
    return image


def write_plot(path: Path, faces: dict[int, dict[str, np.ndarray]], classes: list[str], title: str = "") -> None:
    """Write the plot as a PNG to ``path`` (any file name: encoded in memory, then written)."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(render_plot(faces, classes, title), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    Path(path).write_bytes(png.tobytes())
