"""Checkpoints of one video's run (``--checkpoint-s``), so that an interrupted run continues from the last one.

A checkpoint is taken between two chunks of frames, the pipeline's unit of work (one detector batch and one
classifier batch each): at the first chunk boundary after every ``checkpoint_s`` seconds of source video. Chunk
bounds do not depend on checkpoints, so an uninterrupted run, a run with checkpoints off and a resumed run give
the models the same batches. A checkpoint is a few hidden files beside the outputs' own temporaries
(``.NAME.LABEL.part``, ``outputs.hidden_path``):

- ``.NAME.resume.timeline.csv.part``: the timeline CSV, written there as the run goes; its first ``csv_bytes``
  belong to the checkpoint (their crc32 is kept), later rows are cut off on resuming;
- ``.NAME.resume.NNNN.mp4.part``: the annotated video's finished segments, each starting on a keyframe;
- ``.NAME.resume.json.part``: the state: the source frame number (and time) to continue from, the tracker's,
  smoother's and scene-cut detector's state, the CSV's running statistics, the segments (size, crc32), and a
  fingerprint of what made it (code and library versions, the settings that shape the frames, model, compute,
  the input's size, mtime and a hash of its first and last MiB).

The state is written last (the data fsync'd first, the state written to a temporary name and renamed), so a
state file only ever describes complete files. A state made by anything else than this run would be, or whose
files do not match it, is discarded with a one-line warning, and the run starts from the beginning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import zlib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_video import __version__
from fer_video.outputs import hidden_path
from fer_video.video import Segment

if TYPE_CHECKING:
    from fer_video.stages import Models
    from fer_video.timeline import TimelineWriter
    from fer_video.types import Settings

log = logging.getLogger(__name__)

FORMAT = 2  # of the state file: another number, another layout
#: settings that do not change how frames are processed (read after the last frame, or where checkpoints go);
#: ``weights`` and ``device`` are covered by the model's checksum and the device used
NOT_FINGERPRINTED = frozenset({"min_episode", "elan", "write_plot", "checkpoint_s", "weights", "device"})
_HASHED_BYTES = 1 << 20  # of the input's start and of its end
_READ = 1 << 20


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says why in a few words."""


@dataclass(frozen=True)
class Saved:
    """What a checkpoint holds: where to continue, and the state of every stage there."""

    next_frame: int  # source frame number of the first frame after the checkpoint
    next_time_s: float  # its time (seconds of the source)
    stream: dict[str, Any]  # FaceAnnotator.state(): tracker, smoother, scene cuts, the frame expected next
    timeline: dict[str, Any]  # TimelineWriter.state()
    span: dict[str, Any]  # the first and last frame written so far
    segments: list[Segment]


@dataclass(frozen=True)
class _SegmentRecord:
    name: str
    origin_pts: int
    last_pts: int
    frames: int
    size: int
    crc: int


def input_identity(path: Path) -> dict[str, Any]:
    """The input's size, modification time and the sha256 of its first and last MiB (cheap, whatever its size)."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(_HASHED_BYTES))
        if st.st_size > _HASHED_BYTES:
            fh.seek(max(st.st_size - _HASHED_BYTES, _HASHED_BYTES))
            digest.update(fh.read(_HASHED_BYTES))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256_ends": digest.hexdigest()}


def fingerprint(input_path: Path, settings: Settings, models: Models, chunk_frames: int) -> dict[str, Any]:
    """Everything a checkpoint's state depends on besides the frames before it (a checkpoint made with anything
    else is not used)."""
    import av
    import cv2
    import torch

    compute = models.compute
    found = {
        "format": FORMAT,
        "code": {
            "fer_video": __version__,
            "torch": torch.__version__,
            "av": av.__version__,
            "opencv": cv2.__version__,
            "numpy": np.__version__,
        },
        "input": input_identity(input_path),
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k not in NOT_FINGERPRINTED},
        "compute": {
            "device": str(compute.device),
            "threads": torch.get_num_threads(),
            "detect_batch": compute.detect_batch,
            "classify_batch": compute.classify_batch,
            "chunk_frames": chunk_frames,
            "model": models.classifier.describe(),
        },
    }
    return json.loads(json.dumps(found, default=str))  # as it reads back from the file


_WHAT = {"format": "an older checkpoint format", "code": "another version", "input": "another input"}


def _difference(saved: dict[str, Any], now: dict[str, Any]) -> str:
    """What differs between two fingerprints, in a few words ("other settings (detect_every)")."""
    for part in ("format", "code", "input", "settings", "compute"):
        a, b = saved.get(part), now.get(part)
        if a == b:
            continue
        if part in ("settings", "compute") and isinstance(a, dict):
            keys = sorted(k for k in {*a, *b} if a.get(k) != b.get(k))
            return f"{'other settings' if part == 'settings' else 'another device or model'} ({', '.join(keys)})"
        return f"made with {_WHAT[part]}"
    return "made by another run"


def _encode(obj: Any) -> Any:
    """numpy values in JSON: arrays keep their dtype and shape (floats written exactly, as Python does)."""
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot save {type(obj).__name__} in a checkpoint")


def _decode(obj: dict[str, Any]) -> Any:
    if "__ndarray__" in obj:
        return np.array(obj["__ndarray__"], dtype=obj["dtype"]).reshape(obj["shape"])
    return obj


def _crc(path: Path, start: int = 0, stop: int | None = None, crc: int = 0) -> int:
    """crc32 of the bytes ``[start, stop)`` of ``path`` (to its end when ``stop`` is None), continuing ``crc``."""
    with open(path, "rb") as fh:
        fh.seek(start)
        left = None if stop is None else stop - start
        while left is None or left > 0:
            block = fh.read(_READ if left is None else min(_READ, left))
            if not block:
                break
            crc = zlib.crc32(block, crc)
            left = None if left is None else left - len(block)
    return crc


def note_discarded(name: str, why: str) -> None:
    """The one-line warning for a checkpoint that is not used."""
    log.warning("%s: checkpoint discarded, %s; annotating from the beginning", name, why)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoints:
    """The checkpoint files of output ``name`` in ``out_dir``; ``every_s`` seconds of video between two (0: off).

    Use as a context manager around a run: leaving by an ``Exception`` (a failure, a cancel) removes them all;
    leaving by an interruption (Ctrl-C, SIGTERM) keeps a saved checkpoint to continue from (and removes the
    files when there is none); ``remove()`` after a complete run."""

    def __init__(self, out_dir: Path, name: str, every_s: float = 0.0) -> None:
        self.out_dir, self.name, self.every_s = Path(out_dir), name, float(every_s)
        self.state_path = hidden_path(self.out_dir, name, "resume.json")
        self.csv_path = hidden_path(self.out_dir, name, "resume.timeline.csv")
        self._new_state = hidden_path(self.out_dir, name, "resume.json.new")
        self._fingerprint: dict[str, Any] | None = None
        self._bin: int | None = None  # the checkpoint interval of the last checkpoint (or of the start)
        self._csv_bytes, self._csv_crc = 0, 0
        self._records: dict[str, _SegmentRecord] = {}
        self.saved = 0  # checkpoints saved by this run

    @property
    def enabled(self) -> bool:
        return self.every_s > 0 and self._fingerprint is not None

    def segment_path(self, k: int) -> Path:
        return hidden_path(self.out_dir, self.name, f"resume.{k:04d}.mp4")

    def _files(self) -> list[Path]:
        segments = self.out_dir.glob(f".{self.name}.resume.[0-9][0-9][0-9][0-9].mp4.part")
        return [self._new_state, self.state_path, self.csv_path, *sorted(segments)]

    def remove(self) -> None:
        """Remove every checkpoint file of this name (the state first: what is left never looks usable)."""
        for path in self._files():
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass

    def remove_unsaved(self) -> None:
        """Remove the files of a run that saved no checkpoint (nothing to continue from); keep a saved one."""
        if not self.state_path.exists():
            self.remove()

    # ------------------------------------------------------------------------------------------ starting

    def start(self, found: dict[str, Any] | None, resume: bool) -> Saved | None:
        """Begin a run whose fingerprint is ``found`` (None: this run cannot checkpoint); returns the checkpoint
        to continue from when ``resume`` and a usable one exists, else None (and no checkpoint file is left)."""
        self._fingerprint = found if self.every_s > 0 else None
        if not self.state_path.exists():
            self.remove()  # the leftovers of a run that saved nothing
            return None
        why = None
        if not resume:
            why = "not resuming (--skip-existing continues from a checkpoint)"
        elif not self.enabled:
            why = "checkpoints are off" if self.every_s <= 0 else "this run cannot checkpoint"
        if why is None:
            try:
                saved = self._load()
            except CheckpointError as exc:
                why = str(exc)
            else:
                log.info("%s: continuing from the checkpoint at frame %d", self.name, saved.next_frame)
                return saved
        self.discard(why)
        return None

    def discard(self, why: str) -> None:
        """Say why the checkpoint is not used (one line) and remove it."""
        note_discarded(self.name, why)
        self.remove()

    def _load(self) -> Saved:
        try:
            data = json.loads(self.state_path.read_text(), object_hook=_decode)
            fp = data["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"unreadable ({exc.__class__.__name__})") from None
        if fp != self._fingerprint:
            raise CheckpointError(_difference(fp if isinstance(fp, dict) else {}, self._fingerprint or {}))
        try:
            records = [_SegmentRecord(**r) for r in data["segments"]]
            csv_bytes, csv_crc = int(data["csv_bytes"]), int(data["csv_crc"])
            saved = Saved(
                next_frame=int(data["next_frame"]),
                next_time_s=float(data["next_time_s"]),
                stream=data["stream"],
                timeline=data["timeline"],
                span=data["span"],
                segments=[Segment(self.out_dir / r.name, r.origin_pts, r.last_pts, r.frames) for r in records],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"corrupt ({exc.__class__.__name__})") from None
        self._check_files(records, csv_bytes, csv_crc)
        for path in self._files()[3:]:  # segments of the interrupted run after the checkpoint
            if path.name not in {r.name for r in records}:
                path.unlink(missing_ok=True)
        with open(self.csv_path, "r+b") as fh:  # rows written after the checkpoint
            fh.truncate(csv_bytes)
        self._csv_bytes, self._csv_crc = csv_bytes, csv_crc
        self._records = {r.name: r for r in records}
        self._bin = self._interval(saved.next_time_s)
        return saved

    def _check_files(self, records: list[_SegmentRecord], csv_bytes: int, csv_crc: int) -> None:
        try:
            if self.csv_path.stat().st_size < csv_bytes or _crc(self.csv_path, 0, csv_bytes) != csv_crc:
                raise CheckpointError("its timeline CSV does not match")
            for r in records:
                path = self.out_dir / r.name
                if path.stat().st_size != r.size or _crc(path) != r.crc:
                    raise CheckpointError(f"its video segment {r.name} does not match")
        except OSError as exc:
            raise CheckpointError(f"a file is missing ({exc.__class__.__name__})") from None

    # ------------------------------------------------------------------------------------------ saving

    def _interval(self, time_s: float) -> int:
        return math.floor(time_s / self.every_s)

    def due(self, time_s: float) -> bool:
        """Whether a checkpoint goes before the chunk starting at ``time_s`` (the first one after each
        ``every_s`` seconds of video, counted from 0 in the source)."""
        if not self.enabled:
            return False
        k = self._interval(time_s)
        if self._bin is None:
            self._bin = k
        if k == self._bin:
            return False
        self._bin = k
        return True

    def save(
        self,
        next_frame: int,
        next_time_s: float,
        stream: dict[str, Any],
        timeline: TimelineWriter,
        span: dict[str, Any],
        segments: list[Segment],
    ) -> None:
        """Save a checkpoint before frame ``next_frame``: the timeline's rows so far (flushed here) and the
        finished ``segments`` are made durable first, then the state is written under its name in one rename."""
        timeline.flush()
        _fsync(self.csv_path)
        size = self.csv_path.stat().st_size
        self._csv_crc = _crc(self.csv_path, self._csv_bytes, size, self._csv_crc)
        self._csv_bytes = size
        for seg in segments:
            if seg.path.name not in self._records:
                _fsync(seg.path)
                record = _SegmentRecord(
                    seg.path.name, seg.origin_pts, seg.last_pts, seg.frames, seg.path.stat().st_size, _crc(seg.path)
                )
                self._records[seg.path.name] = record
        state = {
            "fingerprint": self._fingerprint,
            "next_frame": next_frame,
            "next_time_s": next_time_s,
            "csv_bytes": self._csv_bytes,
            "csv_crc": self._csv_crc,
            "stream": stream,
            "timeline": timeline.state(),
            "span": span,
            "segments": [dataclasses.asdict(self._records[s.path.name]) for s in segments],
        }
        self._new_state.write_text(json.dumps(state, default=_encode))
        _fsync(self._new_state)
        os.replace(self._new_state, self.state_path)
        with suppress(OSError):  # the rename itself (file systems without a directory fsync: best effort)
            _fsync(self.out_dir)
        self.saved += 1

    def share_csv(self, dest: Path) -> None:
        """The finished timeline CSV also at ``dest`` (an output's temporary), keeping the checkpoint's copy
        until the outputs are committed: a hard link where the file system has them, else a copy."""
        dest.unlink(missing_ok=True)
        try:
            os.link(self.csv_path, dest)
        except OSError:
            shutil.copyfile(self.csv_path, dest)

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            return
        if issubclass(kind, Exception):
            self.remove()
        else:
            self.remove_unsaved()
