"""Parsing --start/--end and checking a range against a video's duration."""

from __future__ import annotations

import pytest

from fer_video.errors import SettingsError
from fer_video.timerange import TimeRange, TimeRangeError, format_time, parse_time


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("90", 90.0),
        ("12.5", 12.5),
        (".5", 0.5),
        ("01:30", 90.0),
        ("1:30.25", 90.25),
        ("75:00", 4500.0),  # the first field may pass 59
        ("1:02:03.250", 3723.25),
        ("00:00:00", 0.0),
        (" 2:00 ", 120.0),
        (7, 7.0),
        (2.5, 2.5),
    ],
)
def test_times_parse_as_seconds_or_clock(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "-3", "1:60", "1:00:60", "1:2:3:4", "nan", "inf", "1e3", "1:", ":30", -1.0]
)
def test_bad_times_are_one_line_errors_naming_the_option(text):
    with pytest.raises(TimeRangeError, match=r"^--start: .* is not a time") as info:
        parse_time(text, "--start")
    assert "\n" not in str(info.value)


def test_format_time():
    assert format_time(3723.25) == "01:02:03.250"
    assert format_time(0) == "00:00:00.000"


def test_a_range_must_end_after_it_starts():
    assert TimeRange.parse("1:00", "1:30") == TimeRange(60.0, 90.0)
    assert TimeRange.parse(None, "") == TimeRange() and TimeRange().is_whole
    assert TimeRange.parse("10", None).end_s is None
    with pytest.raises(TimeRangeError, match=r"^--end \(00:00:05.000\) must be after --start \(00:00:10.000\)$"):
        TimeRange.parse("10", "5")
    with pytest.raises(TimeRangeError, match="must be after"):
        TimeRange.parse("10", "10")
    with pytest.raises(TimeRangeError, match="must be after"):
        TimeRange(None, 0.0).check()
    assert issubclass(TimeRangeError, SettingsError)  # the CLI's usage error


def test_a_range_outside_the_video_names_the_file():
    r = TimeRange(12.0, None)
    with pytest.raises(TimeRangeError, match=r"^clip.mp4: --start 00:00:12.000 is not before the end of the video"):
        r.check_against(10.0, "clip.mp4")
    with pytest.raises(TimeRangeError, match=r"^clip.mp4: --end 00:00:11.000 is after the end of the video"):
        TimeRange(2.0, 11.0).check_against(10.0, "clip.mp4")
    TimeRange(2.0, 10.02).check_against(10.0, "clip.mp4")  # the container's duration is approximate
    TimeRange(2.0, 5.0).check_against(0.0, "clip.mp4")  # unknown duration: checked when decoding


def test_contains_is_half_open():
    r = TimeRange(1.0, 2.0)
    assert [r.contains(t) for t in (0.9, 1.0, 1.5, 1.99, 2.0)] == [False, True, True, True, False]
    assert TimeRange().contains(1e9)
