"""The annotate options in one table: the CLI flags, ``Settings`` validation and the web app's controls are all
made from it, so they cannot disagree.

To add an option: add the field to ``Settings`` (``fer_video/types.py``) and one ``Option`` row to
``ANNOTATE_OPTIONS``; give it ``ui=`` to show it in the web app's settings too.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fer_video.timerange import is_time

X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class Slider:
    """How the web app shows a number option."""

    low: float
    high: float
    step: float
    label: str
    info: str | None = None


@dataclass(frozen=True)
class Field:
    """How the web app shows a text option (a time)."""

    label: str
    placeholder: str = ""
    info: str | None = None


@dataclass(frozen=True)
class Toggle:
    """How the web app shows an on/off option."""

    label: str
    info: str | None = None


@dataclass(frozen=True)
class Option:
    """One annotate option. ``low``/``high`` bound numbers (inclusive); ``rule`` says so in messages;
    ``help`` may name ``{default}``."""

    name: str  # the Settings field
    flag: str  # the CLI flag
    kind: type  # int, float, str or bool
    help: str
    low: float | None = None
    high: float | None = None
    whole: bool = False  # a number that must be a whole number
    choices: tuple[str, ...] | None = None
    rule: str = ""  # what a valid value is ("" : not checked)
    metavar: str | None = None
    ui: Slider | Field | Toggle | None = None
    valid: Callable[[Any], bool] | None = None  # a check of its own (times), instead of low/high

    def ok(self, value: Any) -> bool:
        if self.valid is not None:
            return self.valid(value)
        if self.choices is not None:
            return value in self.choices
        if self.low is None and self.high is None:
            return True
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        number = isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high
        return number and (not self.whole or int(value) == value)

    def from_control(self, value: Any, default: Any) -> Any:
        """A value from the web app (sliders send floats): ``None`` is the default, 3.0 is 3; anything else is
        left for ``Settings.check`` to refuse exactly as the CLI does."""
        if value is None or (isinstance(self.ui, Field) and isinstance(value, str) and not value.strip()):
            return default  # an empty text field: unset
        if self.kind is int and isinstance(value, float) and value.is_integer():
            return int(value)
        return value


ANNOTATE_OPTIONS: tuple[Option, ...] = (
    Option("weights", "--weights", str, "model .pt with its .json beside it (default: weights/)"),
    Option("device", "--device", str, "auto (CUDA when present, else CPU), cpu, cuda, cuda:N"),
    Option(
        "detect_every",
        "--detect-every",
        int,
        "run the detector on every Nth frame, tracker carries boxes between (default {default})",
        low=1,
        whole=True,
        rule=">= 1",
        metavar="N",
        ui=Slider(
            1,
            10,
            1,
            "Detect faces every N frames",
            "Higher is faster; the tracker carries boxes in between. Crowds and moving faces: 1.",
        ),
    ),
    Option(
        "detect_max_side",
        "--detect-max-side",
        int,
        "downscale frames to this longer side for detection, 0 never (default {default})",
        low=0,
        rule=">= 0 (0: never downscale)",
        metavar="PX",
    ),
    Option(
        "min_face",
        "--min-face",
        int,
        "smallest face to detect, in pixels (default {default})",
        low=1,
        rule=">= 1 pixel",
        metavar="PX",
        ui=Slider(
            12, 300, 1, "Minimum face size (pixels)", "Smaller finds small or distant faces (crowds), a little slower."
        ),
    ),
    Option(
        "det_threshold",
        "--threshold",
        float,
        "detection confidence threshold (default {default})",
        low=0,
        high=1,
        rule="in [0, 1]",
        metavar="THRESHOLD",
    ),
    Option(
        "smoothing",
        "--smoothing",
        float,
        "EMA time constant in seconds, 0 turns smoothing off (default {default})",
        low=0,
        rule="a number of seconds >= 0 (0: off)",
        metavar="SECONDS",
        ui=Slider(0, 2, 0.05, "Smoothing (seconds)", "0 turns smoothing off."),
    ),
    Option(
        "tta",
        "--tta",
        bool,
        "flip test-time augmentation: also classify the mirror image and average (default {default})",
        ui=Toggle("Flip test-time augmentation", "Also classify the mirror image: a little more accurate, slower."),
    ),
    Option(
        "ten_crop",
        "--ten-crop",
        bool,
        "ten-crop test-time augmentation: classify the four corner squares and the centre one of each face, each "
        "also mirrored, and average (a model trained with 'fer-video train --crop' only; ten times the classify "
        "cost; default {default})",
    ),
    Option(
        "classify_every",
        "--classify-every",
        int,
        "classify each tracked face on every Nth frame of its own, keeping its last probabilities in between "
        "(faster with many faces; the CSV then marks the rows classified on their frame; default {default}: "
        "every face on every frame)",
        low=1,
        whole=True,
        rule=">= 1",
        metavar="N",
    ),
    Option(
        "precision",
        "--precision",
        str,
        "classifier arithmetic: auto (bf16 where the hardware does it natively: a CPU with AMX or AVX512-BF16, "
        "a bf16 GPU; fp32 elsewhere), fp32 or bf16 (default {default})",
        choices=PRECISIONS,
        rule="one of " + ", ".join(PRECISIONS),
    ),
    Option("iou_match", "--iou-match", float, "", low=0, high=1, rule="in [0, 1]"),
    Option("max_missed_s", "--max-missed-s", float, "", low=0, rule=">= 0 seconds"),
    Option("write_video", "--no-video", bool, "skip the annotated video (CSV, summary, plot only)"),
    Option(
        "crf", "--crf", int, "H.264 quality, lower is better (default {default})", low=0, high=51, rule="in [0, 51]"
    ),
    Option(
        "preset",
        "--preset",
        str,
        "x264 preset (default {default})",
        choices=X264_PRESETS,
        rule="one of " + ", ".join(X264_PRESETS),
    ),
    Option(
        "min_episode",
        "--min-episode",
        float,
        "episodes: stretches shorter than this merge into their neighbours, 0 keeps every change (default {default})",
        low=0,
        rule="a number of seconds >= 0 (0: keep every change)",
        metavar="SECONDS",
        ui=Slider(0, 5, 0.1, "Shortest episode (seconds)", "Shorter changes of emotion merge into their neighbours."),
    ),
    Option("elan", "--elan", bool, "also write NAME.eaf for ELAN: one tier per face, one annotation per episode"),
    Option(
        "start",
        "--start",
        str,
        "annotate from this time of the video: seconds or [HH:]MM:SS[.ms] (default: the beginning)",
        rule="seconds or [HH:]MM:SS[.ms]",
        metavar="TIME",
        valid=is_time,
        ui=Field("Start at", "0:00", "Seconds or [HH:]MM:SS; empty: the beginning."),
    ),
    Option(
        "end",
        "--end",
        str,
        "annotate up to this time of the video: seconds or [HH:]MM:SS[.ms] (default: the end)",
        rule="seconds or [HH:]MM:SS[.ms]",
        metavar="TIME",
        valid=is_time,
        ui=Field("End at", "", "Seconds or [HH:]MM:SS; empty: the end."),
    ),
    Option(
        "checkpoint_s",
        "--checkpoint-s",
        float,
        "save a checkpoint every this many seconds of video: an interrupted run continues from the last one when "
        "run again with --skip-existing; 0 turns it off (default {default})",
        low=0,
        rule="a number of seconds >= 0 (0: off)",
        metavar="SECONDS",
    ),
)
OPTIONS = {o.name: o for o in ANNOTATE_OPTIONS}
CLI_HIDDEN = {"iou_match", "max_missed_s"}  # tracker knobs: Python API only


def problems(values: Any) -> list[tuple[str, str]]:
    """``(field, what is wrong)`` for every option of ``values`` (a ``Settings``) out of range."""
    wrong = []
    for o in ANNOTATE_OPTIONS:
        value = getattr(values, o.name)
        if o.rule and not o.ok(value):
            wrong.append((o.name, f"must be {o.rule}, not {value!r}"))
    return wrong


def add_arguments(parser: Any, defaults: Any, skip: frozenset[str] = frozenset()) -> None:
    """The CLI flags of every option but ``skip`` (``defaults``: a ``Settings``) on ``parser`` (a parser or an
    argument group); ``settings_kwargs`` reads them back."""
    for o in ANNOTATE_OPTIONS:
        if o.name in CLI_HIDDEN or o.name in skip:
            continue
        default = getattr(defaults, o.name)
        text = o.help.format(default=default)
        if o.name == "write_video":  # a flag that turns an output off
            parser.add_argument(o.flag, dest=o.name, action="store_false", help=text)
        elif o.kind is bool:
            parser.add_argument(o.flag, dest=o.name, action=argparse.BooleanOptionalAction, default=default, help=text)
        else:
            kind = str if o.kind is str else o.kind
            parser.add_argument(o.flag, dest=o.name, type=kind, default=default, metavar=o.metavar, help=text)


def settings_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The ``Settings`` fields that ``add_arguments`` put into ``args``."""
    return {
        o.name: getattr(args, o.name) for o in ANNOTATE_OPTIONS if o.name not in CLI_HIDDEN and hasattr(args, o.name)
    }


def flag_of(name: str) -> str:
    """The CLI flag of a ``Settings`` field (for usage messages)."""
    return OPTIONS[name].flag if name in OPTIONS else "--" + name.replace("_", "-")
