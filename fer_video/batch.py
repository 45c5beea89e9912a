"""Many inputs in one run: files, folders and globs; one bad file never stops the batch; ``batch.csv``.

Several runs may share one output folder (a cron job and a run by hand, two at once): each video is annotated
under its own lock (``.NAME.lock``, ``fer_video.locks``), so a video another run is working on is skipped with
status ``locked``, and ``batch.csv`` is merged under a short lock of its own (``BatchTable``).
"""

from __future__ import annotations

import csv
import glob
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fer_video.errors import Cancelled, FerVideoError, OutputError
from fer_video.locks import Lock, Locked, acquire
from fer_video.outputs import OUTPUT_SUFFIXES, os_error_reason, output_paths, prepare_output_folder, unique_names
from fer_video.pipeline import annotate_video
from fer_video.stages import Models, load_models
from fer_video.timerange import TimeRange
from fer_video.types import Progress, Settings
from fer_video.video import probe_duration

if TYPE_CHECKING:
    from fer_video.ray_engine import RayOptions

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {
    ".mp4",
    ".mov",
    ".avi",
    ".mkv",
    ".webm",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".wmv",
    ".flv",
    ".3gp",
    ".ts",
    ".mts",
    ".m2ts",
    ".ogv",
}
BATCH_COLUMNS = ["input", "status", "reason", "frames", "faces", "dominant_emotion", "seconds"]
SKIPPED = "outputs already exist"
IDLE = {"skipped", "locked"}  # statuses of a row whose run did no work on the input


@dataclass
class BatchRow:
    input: str
    status: str  # ok | failed | skipped | locked (another run is annotating it)
    reason: str = ""
    frames: int | None = None
    faces: int | None = None
    dominant_emotion: str | None = None
    seconds: float | None = None


def collect_inputs(specs: list[str], recursive: bool = False) -> list[Path]:
    """Expand files, folders (videos by extension, sorted) and glob patterns into a list of paths.

    A named file is kept whatever its extension (so a bad one is reported, not silently dropped); a spec
    that matches nothing is kept too and fails with "no such file".
    """
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found += sorted(
                p
                for p in path.glob(pattern)
                if p.is_file()
                and p.suffix.lower() in VIDEO_EXTENSIONS
                and not p.name.startswith(".")
                and not p.name.endswith(OUTPUT_SUFFIXES["video"])  # our own outputs, e.g. --out inside the folder
            )
        elif any(ch in spec for ch in "*?[") and not path.exists():
            found += sorted(Path(p) for p in glob.glob(spec, recursive=recursive) if Path(p).is_file())
        else:
            found.append(path)
    unique: list[Path] = []
    seen: set[Path] = set()
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def output_names(inputs: list[Path]) -> list[str]:
    """One output name per input: the file's stem, with ``-2``, ``-3``... when two inputs share a stem."""
    return unique_names([p.stem for p in inputs])


def write_batch_csv(rows: list[BatchRow], path: Path) -> None:
    """``rows`` as ``path``, written whole to a temporary and renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")  # one per process: two runs may write at once
    try:
        # file names that are not valid UTF-8 (undecodable bytes) are written backslash-escaped; None is empty
        with open(tmp, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
            table = csv.DictWriter(fh, BATCH_COLUMNS, lineterminator="\n")
            table.writeheader()
            table.writerows(asdict(r) for r in rows)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({os_error_reason(exc)})") from None


def read_batch_csv(path: Path) -> list[BatchRow]:
    """The rows of a ``batch.csv`` ([] when there is none, or it is not one of ours)."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            table = csv.DictReader(fh)
            if table.fieldnames != BATCH_COLUMNS:
                return []
            return [_parsed(r) for r in table]
    except (OSError, csv.Error, ValueError, TypeError):
        return []


def _parsed(r: dict[str, str]) -> BatchRow:
    def number(text: str, kind: type):
        return kind(text) if text else None

    return BatchRow(
        r["input"],
        r["status"],
        r["reason"],
        number(r["frames"], int),
        number(r["faces"], int),
        r["dominant_emotion"] or None,
        number(r["seconds"], float),
    )


def _key(shown: str) -> str:
    """An input as ``batch.csv`` spells it (undecodable bytes backslash-escaped), to match rows read back."""
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


def merge_rows(
    mine: list[BatchRow], inputs: list[str], current: list[BatchRow], before: list[BatchRow]
) -> list[BatchRow]:
    """This run's rows (for its ``inputs``, so far) merged with those another run wrote meanwhile: the rows of
    ``current`` (the file now) that were not in ``before`` (the file when this run started). In the order of
    this run's inputs, then the other run's; a row of this run that did no work (skipped, locked) gives way
    to the other run's row for that input when that one did. Rows of earlier runs are dropped, as when a run
    has the folder alone."""
    earlier = {(_key(r.input), *asdict(r).values()) for r in before}
    others = {_key(r.input): r for r in current if (_key(r.input), *asdict(r).values()) not in earlier}
    ours = {_key(r.input): r for r in mine}
    merged: list[BatchRow] = []
    for key in map(_key, inputs):
        row, other = ours.get(key), others.pop(key, None)
        if row is None or (other is not None and row.status in IDLE and other.status not in IDLE):
            row = other
        if row is not None:
            merged.append(row)
    return merged + list(others.values())


class BatchTable:
    """One run's ``batch.csv``: rewritten after each video, merged with the rows of runs that write to it at the
    same time, under a short lock (``.batch.csv.lock``; waited for)."""

    def __init__(self, path: Path, inputs: list[Path]) -> None:
        self.path = path
        self.inputs = [str(p) for p in inputs]
        with self._lock():
            self.before = read_batch_csv(path)

    def write(self, rows: list[BatchRow]) -> None:
        with self._lock():
            write_batch_csv(merge_rows(rows, self.inputs, read_batch_csv(self.path), self.before), self.path)

    def _lock(self) -> Lock:
        try:
            return acquire(
                self.path.with_name(f".{self.path.name}.lock"), wait_s=30, stale_after_s=60, heartbeat_s=None
            )
        except Locked as exc:
            raise OutputError(f"{self.path}: held by {exc.holder or 'another process'} for over 30 s") from None


def video_lock_path(out_dir: Path, name: str) -> Path:
    """The lock a run holds while it annotates ``name`` in ``out_dir``, beside its temporary outputs."""
    return out_dir / f".{name}.annotating.lock"


def claim(out_dir: Path, name: str, shown: str, skip_existing: bool) -> Lock | BatchRow:
    """The lock to annotate ``name`` under, or the row saying why not: ``skipped`` (``skip_existing`` and its
    summary exists) or ``locked`` (another run is annotating it: that run writes its row)."""
    done = output_paths(out_dir, name)["summary"]
    if skip_existing and done.exists():
        return BatchRow(shown, "skipped", SKIPPED)
    try:
        lock = acquire(video_lock_path(out_dir, name))
    except Locked as exc:
        return BatchRow(shown, "locked", f"being annotated by {exc.holder or 'another process'}")
    if skip_existing and done.exists():  # finished by another run just before the lock was ours
        lock.release()
        return BatchRow(shown, "skipped", SKIPPED)
    return lock


def check_range(inputs: list[Path], time_range: TimeRange) -> None:
    """``TimeRangeError`` naming the first input that the range does not fit (starts after its end, ends more
    than 0.05 s after it); read from the containers' headers, nothing decoded. Unreadable inputs are left for
    the run to report."""
    if time_range.is_whole:
        return
    for path in inputs:
        duration = probe_duration(path)
        if duration is not None:
            time_range.check_against(duration, path.name)


def video_row(
    path: Path,
    out_dir: Path,
    settings: Settings,
    *,
    models: Models,
    name: str,
    progress: Callable[[Progress], None] | None = None,
    cancel=None,
    shown: str | None = None,
    resume: bool = False,
) -> BatchRow:
    """Annotate one input and say how it went as its ``batch.csv`` row: ``ok`` (with notes) or ``failed`` with
    a one-line reason; only ``Cancelled`` (and ``BaseException``s) propagate. ``shown`` is the input as the
    row names it (default: ``path``; the Ray engine annotates an absolute path but reports the input as given);
    ``resume``: continue from the checkpoint of an interrupted run."""
    t = time.perf_counter()
    shown = str(path) if shown is None else shown
    try:
        r = annotate_video(
            path, out_dir, settings, models=models, name=name, progress=progress, cancel=cancel, resume=resume
        )
    except Cancelled:
        raise
    except FerVideoError as exc:
        log.debug("%s failed", path, exc_info=True)  # the traceback with --debug
        return BatchRow(shown, "failed", str(exc), seconds=round(time.perf_counter() - t, 2))
    except Exception as exc:  # one bad file never stops the batch; the reason stays one line
        log.debug("unexpected failure on %s", path, exc_info=True)
        first = (str(exc).strip().splitlines() or [""])[0]
        return BatchRow(
            shown,
            "failed",
            f"{path.name}: {exc.__class__.__name__}: {first}"[:300],
            seconds=round(time.perf_counter() - t, 2),
        )
    notes = [] if r.faces else ["no face detected"]
    if r.summary["processing"].get("resumed_at_frame") is not None:
        notes.append(f"resumed at frame {r.summary['processing']['resumed_at_frame']}")
    if r.summary.get("truncated_at_frame") is not None:
        notes.append(f"truncated file: {r.frames} frames decoded, the rest is missing")
    return BatchRow(shown, "ok", "; ".join(notes), r.frames, r.faces, r.dominant_emotion, round(r.seconds, 2))


def run_batch(
    inputs: list[Path],
    out_dir: Path,
    settings: Settings,
    *,
    models: Models | None = None,
    skip_existing: bool = False,
    batch_csv: bool = True,
    on_start: Callable[[int, Path], None] | None = None,
    on_done: Callable[[BatchRow], None] | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel=None,
    engine: str = "local",
    ray: RayOptions | None = None,
) -> list[BatchRow]:
    """Annotate every input; ``batch.csv`` in ``out_dir`` is rewritten after each file (so an interrupted
    batch still says what was done). ``skip_existing`` skips inputs whose summary already exists and continues
    an interrupted video from its last checkpoint; an input another run is annotating in ``out_dir`` is skipped
    as ``locked`` (``claim``).

    ``engine="local"``: one video after the other in this process (``models``, loaded once, else here).
    ``engine="ray"``: over Ray as ``ray`` says (a local Ray by default; ``fer_video.ray_engine``): the same
    rows in the same order; ``on_done`` is called as videos finish, ``on_start`` and ``progress`` are not."""
    if engine == "ray":
        from fer_video.ray_engine import run_batch_ray

        return run_batch_ray(
            inputs,
            out_dir,
            settings,
            ray,
            skip_existing=skip_existing,
            batch_csv=batch_csv,
            on_done=on_done,
            cancel=cancel,
        )
    if engine != "local":
        raise ValueError(f"unknown engine {engine!r} (use local or ray)")
    prepare_output_folder(out_dir)
    models = models or load_models(settings)
    table = BatchTable(out_dir / "batch.csv", inputs) if batch_csv else None
    rows: list[BatchRow] = []
    for i, (path, name) in enumerate(zip(inputs, output_names(inputs), strict=True)):
        if on_start:
            on_start(i, path)
        row = claim(out_dir, name, str(path), skip_existing)
        if isinstance(row, Lock):
            with row:
                row = video_row(
                    path,
                    out_dir,
                    settings,
                    models=models,
                    name=name,
                    progress=progress,
                    cancel=cancel,
                    resume=skip_existing,
                )
        rows.append(row)
        if table is not None:
            table.write(rows)
        if on_done:
            on_done(row)
    return rows
