"""The typed things that flow between the pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fer_video.errors import SettingsError
from fer_video.options import problems
from fer_video.timerange import TimeRange, format_time, parse_time


@dataclass(frozen=True)
class VideoInfo:
    """What the reader learnt about an input. ``width``/``height`` are the displayed (upright) size."""

    path: str
    width: int
    height: int
    fps: float  # average frame rate (frames may still be spaced irregularly: see Frame.time_s)
    frame_count: int  # from the container; 0 when it does not say (progress then counts without a total)
    duration_s: float
    rotation: int  # degrees counter-clockwise applied to the stored frames to show them upright
    codec: str
    has_audio: bool
    audio_codec: str | None = None
    # width:height of one pixel of the upright frame (4/3: anamorphic, shown wider than stored); 1 when square
    sample_aspect_ratio: Fraction = Fraction(1, 1)


@dataclass
class Frame:
    """One decoded frame, upright, RGB uint8 (H, W, 3); ``time_s`` is its presentation time from the start."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
class Detections:
    """Faces of one frame as parallel numpy arrays (after supervision's ``Detections``).

    ``face_id`` is -1 until the tracker has assigned ids. Index with an int array or boolean mask to select.
    """

    xyxy: np.ndarray  # (N, 4) float32, pixels of the upright frame
    confidence: np.ndarray  # (N,) float32 detector score
    face_id: np.ndarray | None = None  # None: -1 for every box (not tracked yet)

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if face_id_missing := self.face_id is None:
            self.face_id = np.full(len(self.xyxy), -1, dtype=np.int64)
        self.face_id = np.asarray(self.face_id, dtype=np.int64).reshape(-1)
        if not face_id_missing and len(self.face_id) != len(self.xyxy):
            raise ValueError(f"face_id has {len(self.face_id)} entries for {len(self.xyxy)} boxes")
        if len(self.confidence) != len(self.xyxy):
            raise ValueError(f"confidence has {len(self.confidence)} entries for {len(self.xyxy)} boxes")

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        return Detections(self.xyxy[index], self.confidence[index], self.face_id[index])

    def clipped(self, width: int, height: int, min_side: float = 2.0) -> Detections:
        """The boxes clipped to a ``width`` x ``height`` frame; a face left with a side under ``min_side`` pixels
        (one outside the frame) is dropped."""
        xyxy = clip_xyxy(self.xyxy, width, height)
        keep = (xyxy[:, 2] - xyxy[:, 0] >= min_side) & (xyxy[:, 3] - xyxy[:, 1] >= min_side)
        return Detections(xyxy[keep], self.confidence[keep], self.face_id[keep])


def clip_xyxy(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """A clipped copy of (N, 4) xyxy boxes: x in [0, width], y in [0, height]."""
    out = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


@dataclass
class FrameResult:
    """A frame with its tracked faces and their raw and smoothed class probabilities (N, C)."""

    frame: Frame
    faces: Detections
    probs: np.ndarray
    smoothed: np.ndarray
    classified: np.ndarray | None = None  # per face, classified on this frame (else carried); None: every face


@dataclass
class Settings:
    """Every knob of a run. Defaults are the measured speed/accuracy trade-off (see README, Performance)."""

    weights: str | None = None  # .pt with its .json beside it; None: the shipped model in weights/
    device: str = "auto"  # auto | cpu | cuda[:N]
    detect_every: int = 8  # run MTCNN on every Nth frame; the tracker carries boxes in between (moving them on)
    detect_max_side: int = 640  # frames are downscaled to this longer side before detection (0: never)
    min_face: int = 40  # smallest face to detect, in pixels of the original frame (20 finds smaller, slower)
    det_threshold: float = 0.9  # keep detections scoring at least this
    smoothing: float = 0.3  # EMA time constant in seconds; 0 turns smoothing off
    tta: bool = False  # also classify the mirror image and average (+1.3 pt PublicTest, half the classify speed)
    ten_crop: bool = False  # average ten crops (corners, centre, mirrored): needs a model trained with --crop
    classify_every: int = 1  # classify each tracked face on every Nth frame; in between it keeps its last result
    precision: str = "auto"  # classifier arithmetic: auto (bf16 where native: AMX/AVX512-BF16, GPUs), fp32, bf16
    iou_match: float = 0.1  # tracker: minimum IoU to continue a face (crowd clip: 0.3 -> 33 ids, 0.1 -> 16)
    max_missed_s: float = 0.5  # tracker: forget a face not seen for this long
    write_video: bool = True
    write_plot: bool = True
    crf: int = 23  # H.264 quality (lower is better)
    preset: str = "veryfast"  # x264 speed preset
    min_episode: float = 0.5  # episodes: stretches shorter than this (seconds) merge into their neighbours; 0: none
    elan: bool = False  # also write NAME.eaf (ELAN) from the episodes
    start: float | str | None = None  # annotate from here: seconds or "[HH:]MM:SS[.ms]"; None: the beginning
    end: float | str | None = None  # up to here (the frame at `end` is not included); None: the end
    checkpoint_s: float = 60.0  # save a checkpoint every this many seconds of video (resume: --skip-existing); 0: off

    def problems(self) -> list[tuple[str, str]]:
        """``(field, what is wrong)`` for every setting out of range (``options.ANNOTATE_OPTIONS``); empty when all
        are usable."""
        wrong = problems(self)
        if not {"start", "end"} & {name for name, _ in wrong}:
            r = self.time_range()
            if r.end_s is not None and r.end_s <= r.start:
                wrong.append(("end", f"must be after --start ({format_time(r.start)}), not {self.end!r}"))
        return wrong

    def time_range(self) -> TimeRange:
        """``start``/``end`` in seconds (``TimeRangeError`` when one cannot be read)."""
        return TimeRange(
            parse_time(self.start, "--start") if self.start not in (None, "") else None,
            parse_time(self.end, "--end") if self.end not in (None, "") else None,
        )

    def check(self) -> None:
        """Raise ``SettingsError`` naming every setting out of range."""
        wrong = self.problems()
        if wrong:
            raise SettingsError("; ".join(f"{name} {why}" for name, why in wrong))


@dataclass
class Progress:
    """Sent to the progress callback: frames done, the expected total (0 when unknown), seconds spent."""

    done: int
    total: int
    elapsed_s: float
    stage: str = "annotate"


@dataclass
class VideoResult:
    """What ``annotate_video`` returns: the output files and the headline numbers."""

    input: Path
    info: VideoInfo
    outputs: dict[str, Path]
    frames: int
    faces: int
    dominant_emotion: str | None
    seconds: float
    summary: dict[str, Any]
