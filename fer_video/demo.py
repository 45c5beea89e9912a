"""A synthetic demo/test video made from face photos that ship inside installed packages.

Two real faces (scikit-image's ``astronaut`` and matplotlib's ``grace_hopper`` sample) glide over a plain
background, then leave for a no-face stretch; an optional sine-tone AAC track. Nothing is downloaded and no
third-party media is committed: the clip is rebuilt on demand, deterministically.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# face crops (x1, y1, x2, y2) around the faces MTCNN finds in the two photos, with some margin
_ASTRONAUT_CROP = (140, 20, 310, 230)
_HOPPER_CROP = (130, 70, 400, 400)


def face_sprites() -> list[np.ndarray]:
    """The two RGB face photos, cropped around the face."""
    import matplotlib.cbook as cbook
    from PIL import Image
    from skimage import data

    astronaut = data.astronaut()
    with Image.open(cbook.get_sample_data("grace_hopper.jpg")) as img:
        hopper = np.asarray(img.convert("RGB"))
    crops = []
    for image, (x1, y1, x2, y2) in ((astronaut, _ASTRONAUT_CROP), (hopper, _HOPPER_CROP)):
        crops.append(np.ascontiguousarray(image[y1:y2, x1:x2]))
    return crops


def sprite_rects(
    i: int, fps: float, width: int, height: int, sprites: list[np.ndarray], faces: int
) -> list[tuple[int, int, int, int]]:
    """Where frame ``i`` places each face sprite: (x1, y1, x2, y2) in pixels (tests use it as ground truth)."""
    t = i / fps
    target_h = max(24, int(height * 0.45))
    rects = []
    for k in range(min(faces, len(sprites))):
        sprite = sprites[k]
        sw, sh = max(8, int(sprite.shape[1] * target_h / sprite.shape[0])), target_h
        slot = width / max(faces, 1)
        x = int(slot * k + (slot - sw) * (0.5 + 0.3 * math.sin(0.8 * t + k)))
        y = int((height - sh) * (0.5 + 0.25 * math.cos(0.6 * t + 2 * k)))
        x, y = min(max(x, 0), max(width - sw, 0)), min(max(y, 0), max(height - sh, 0))
        rects.append((x, y, min(x + sw, width), min(y + sh, height)))
    return rects


def render_frame(
    i: int, fps: float, width: int, height: int, sprites: list[np.ndarray], faces: int, show_faces: bool
) -> np.ndarray:
    """Frame ``i``: a soft background, and ``faces`` sprites moving slowly when ``show_faces``."""
    t = i / fps
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    base = 150 + 40 * np.sin(2 * math.pi * (xx + 0.1 * t)) * yy
    frame = np.repeat(base[:, :, None], 3, axis=2).astype(np.uint8)
    if not show_faces:
        cx = int((0.5 + 0.3 * math.sin(t)) * width)
        cv2.circle(frame, (cx, height // 2), max(4, height // 8), (60, 90, 200), -1)
        return frame
    for sprite, (x1, y1, x2, y2) in zip(sprites, sprite_rects(i, fps, width, height, sprites, faces), strict=False):
        target_h = max(24, int(height * 0.45))
        sw = max(8, int(sprite.shape[1] * target_h / sprite.shape[0]))
        sp = cv2.resize(sprite, (sw, target_h), interpolation=cv2.INTER_AREA)
        frame[y1:y2, x1:x2] = sp[: y2 - y1, : x2 - x1]
    return frame


def make_demo_video(
    path: str | Path,
    width: int = 640,
    height: int = 360,
    fps: float = 25.0,
    seconds: float = 4.0,
    faces: int = 2,
    noface_from: float | None = 0.75,
    audio: bool = True,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write the demo clip to ``path`` and return it. Faces show until ``noface_from`` x duration (None: always)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(1, int(round(seconds * fps)))
    sprites = face_sprites()
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height, v.pix_fmt = width, height, pix_fmt
        a = None
        if audio:
            a = out.add_stream("aac", rate=44100)
            a.layout = "mono"
        for i in range(n):
            show = noface_from is None or i < n * noface_from
            img = render_frame(i, fps, width, height, sprites, faces, show)
            out.mux(v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(v.encode(None))
        if a is not None:
            samples = int(44100 * n / fps)
            tone = (0.2 * np.sin(2 * math.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[start : start + 1024]
                frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
                frame.sample_rate = 44100
                frame.pts = start
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path
