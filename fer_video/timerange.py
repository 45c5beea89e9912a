"""Time ranges of a video (``--start``, ``--end``): parsing ``SECONDS`` or ``[HH:]MM:SS[.ms]`` and checking a range
against a video's duration, each with a one-line message naming what is wrong."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from fer_video.errors import SettingsError

_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")
_SECONDS = re.compile(r"^\d+(?:\.\d*)?$|^\.\d+$")


class TimeRangeError(SettingsError):
    """A time is not readable, or a range is empty or outside the video (a usage error: exit 2)."""


def parse_time(text: str | float | int, option: str = "time") -> float:
    """Seconds from ``"90"``, ``"12.5"``, ``"01:30"``, ``"1:02:03.250"`` (or a number); ``TimeRangeError`` else.

    In the clock forms, minutes and seconds after the first field are below 60."""
    if isinstance(text, bool):
        raise TimeRangeError(f"{option}: {text!r} is not a time")
    if isinstance(text, (int, float)):
        if not math.isfinite(text) or text < 0:
            raise TimeRangeError(f"{option}: {text!r} is not a time (a number of seconds >= 0)")
        return float(text)
    s = str(text).strip()
    if _SECONDS.match(s):
        return float(s)
    m = _CLOCK.match(s)
    if m:
        hours, minutes, seconds = int(m[1] or 0), int(m[2]), float(m[3])
        if (m[1] is None or minutes < 60) and seconds < 60:
            return hours * 3600 + minutes * 60 + seconds
    raise TimeRangeError(f"{option}: {str(text)!r} is not a time (seconds, or [HH:]MM:SS[.ms])")


def is_time(value: object) -> bool:
    """Whether ``value`` is unset (None, "") or a time ``parse_time`` reads."""
    if value is None or value == "":
        return True
    try:
        parse_time(value)  # type: ignore[arg-type]
    except TimeRangeError:
        return False
    return True


def format_time(seconds: float) -> str:
    """``HH:MM:SS.mmm``, the way the messages and the summary show a time."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    return f"{h:02d}:{m:02d}:{rest / 1000:06.3f}"


@dataclass(frozen=True)
class TimeRange:
    """The part of a video to annotate, in seconds of the source; ``None``: from the start / to the end."""

    start_s: float | None = None
    end_s: float | None = None

    @classmethod
    def parse(cls, start: str | float | None, end: str | float | None) -> TimeRange:
        """From the text of ``--start``/``--end`` (empty or None: unset); checks that end > start."""
        r = cls(
            parse_time(start, "--start") if start not in (None, "") else None,
            parse_time(end, "--end") if end not in (None, "") else None,
        )
        r.check()
        return r

    @property
    def is_whole(self) -> bool:
        return not self.start_s and self.end_s is None

    @property
    def start(self) -> float:
        return self.start_s or 0.0

    def check(self) -> None:
        """``TimeRangeError`` when a bound is negative or not finite, or end <= start."""
        for option, value in (("--start", self.start_s), ("--end", self.end_s)):
            if value is not None:
                parse_time(value, option)
        if self.end_s is not None and self.end_s <= self.start:
            raise TimeRangeError(f"--end ({format_time(self.end_s)}) must be after --start ({format_time(self.start)})")

    def check_against(self, duration_s: float, name: str, tolerance_s: float = 0.05) -> None:
        """``TimeRangeError`` naming ``name`` when the range starts at or after the end of a video of
        ``duration_s`` seconds, or ends more than ``tolerance_s`` after it. A duration of 0 (unknown) passes."""
        if duration_s <= 0:
            return
        shown = format_time(duration_s)
        if self.start >= duration_s:
            raise TimeRangeError(
                f"{name}: --start {format_time(self.start)} is not before the end of the video ({shown})"
            )
        if self.end_s is not None and self.end_s > duration_s + tolerance_s:
            raise TimeRangeError(f"{name}: --end {format_time(self.end_s)} is after the end of the video ({shown})")

    def contains(self, time_s: float) -> bool:
        """Whether a frame starting at ``time_s`` belongs to the range ``[start, end)``."""
        return time_s >= self.start - 1e-6 and (self.end_s is None or time_s < self.end_s - 1e-6)

    def frames_in(self, duration_s: float, fps: float) -> int:
        """About how many frames of a video of ``duration_s`` at ``fps`` the range holds (0: the whole video, or
        not known)."""
        if self.is_whole or not fps or not duration_s:
            return 0
        end = min(self.end_s, duration_s) if self.end_s is not None else duration_s
        return max(int(round((end - self.start) * fps)), 0)

    def describe(self) -> str:
        """``00:01:00.000-00:01:30.000`` (an open end: ``00:01:00.000-end``)."""
        return f"{format_time(self.start)}-{format_time(self.end_s) if self.end_s is not None else 'end'}"

    def as_dict(self) -> dict[str, float | None]:
        """For the summary: the range asked for, in seconds (None: unset)."""
        return {"start_s": self.start_s, "end_s": self.end_s}
