"""Streaming video input and H.264 output (PyAV, which ships the FFmpeg libraries: no ffmpeg binary needed).

``VideoReader`` yields upright RGB ``Frame`` objects one at a time with their real presentation times.
``VideoWriter`` encodes H.264/yuv420p MP4 (even size, the input's frame times kept, so variable frame rate
survives); ``SegmentedWriter`` does so in segments that each start on a keyframe (checkpoints), and
``mux_audio`` / ``join_segments`` join them by stream copy, with the source's audio track.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from fer_video.errors import InputError, OutputError
from fer_video.seeking import SeekUnsupported, count_frames_before, seek_frames, start_pts
from fer_video.timerange import TimeRange, TimeRangeError
from fer_video.types import Frame, VideoInfo

log = logging.getLogger(__name__)

#: audio codecs that browsers play inside MP4; anything else is re-encoded to AAC
BROWSER_AUDIO = {"aac", "mp3", "opus", "flac"}
_TIME_BASE = Fraction(1, 90000)
#: demuxers that may hold one picture or an animation: a single frame is a still image, several are a video
_ANIMATED_IMAGES = {"gif", "apng"}


def _rotate(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored frame upright: ``rotation`` is the display matrix angle (counter-clockwise degrees)."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


class VideoReader:
    """Open ``path`` and stream its first video stream as upright RGB frames.

    Raises ``InputError`` (one line, naming the file) for a missing file, something that is not a video,
    a file with no video stream or no decodable frame. A stream that breaks part-way stops the iteration
    and sets ``truncated_at`` (the frames before it are kept).
    """

    def __init__(self, path: str | Path, threads: int = 0, time_range: TimeRange | None = None) -> None:
        self.path = Path(path)
        self.time_range = time_range or TimeRange()
        self._threads = threads
        self._start_index: int | None = None  # the number of the range's first frame, when known (start_at)
        if not self.path.exists():
            raise InputError(f"{self.path.name}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path.name}: is a folder, not a video")
        if self.path.stat().st_size == 0:
            raise InputError(f"{self.path.name}: empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{self.path.name}: not a readable video ({_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path.name}: no video stream")
        self._stream = self._container.streams.video[0]
        fmt = self._container.format.name
        if fmt == "image2" or fmt.endswith("_pipe"):  # FFmpeg's demuxers of single pictures
            self._container.close()
            raise _still_image(self.path, fmt, self._stream)
        self._stream.thread_type = "AUTO"
        if threads:
            self._stream.codec_context.thread_count = threads
        self._frames = self._decode()
        self.truncated_at: int | None = None
        try:
            self._first = next(self._frames)
        except StopIteration:
            self.close()
            raise InputError(f"{self.path.name}: no video frames could be decoded") from None
        except (av.FFmpegError, ValueError) as exc:
            self.close()
            raise InputError(f"{self.path.name}: cannot decode video ({_reason(exc)})") from None
        if fmt in _ANIMATED_IMAGES and not self._has_more_frames():  # a GIF or APNG of one frame
            self.close()
            raise _still_image(self.path, fmt, self._stream)
        self.info = self._probe(self._first)
        if not self.time_range.is_whole:
            try:
                self.time_range.check_against(self.info.duration_s, self.path.name)
            except TimeRangeError:
                self.close()
                raise

    def start_at(self, time_s: float, index: int) -> None:
        """Read from frame number ``index`` at ``time_s`` (a checkpoint's next frame) to the range's end, instead of
        from the range's start; call before iterating. The frames keep their numbers and times; the frames before
        are not counted again (a long file's packets are not read up to there)."""
        self.time_range = TimeRange(time_s, self.time_range.end_s)
        self._start_index = index

    def _has_more_frames(self) -> bool:
        """Whether a second frame follows the first (decoded ahead and put back in the stream of frames)."""
        try:
            second = next(self._frames)
        except StopIteration:
            return False
        except (av.FFmpegError, ValueError) as exc:
            self._frames = _raising(exc)  # something follows, if broken: the iteration reports it (truncated)
            return True
        self._frames = itertools.chain([second], self._frames)
        return True

    def _probe(self, first: av.VideoFrame) -> VideoInfo:
        s = self._stream
        rotation = int(round(first.rotation or 0)) % 360
        w, h = (first.height, first.width) if rotation in (90, 270) else (first.width, first.height)
        # the container's pixel aspect ratio (MP4 'pasp', MKV display size) before the codec's, as FFmpeg does;
        # unset (0 or None) means square; turned with the frame
        sar = Fraction(s.sample_aspect_ratio or s.codec_context.sample_aspect_ratio or 1)
        sar = sar if sar > 0 else Fraction(1)
        if rotation in (90, 270):
            sar = 1 / sar
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        duration = stream_duration(self._container, s)
        frames = int(s.frames or 0) or (int(round(duration * fps)) if duration and fps else 0)
        audio = self._container.streams.audio
        return VideoInfo(
            path=str(self.path),
            width=w,
            height=h,
            fps=round(fps, 4),
            frame_count=frames,
            duration_s=round(duration, 4),
            rotation=rotation,
            codec=s.codec_context.name,
            has_audio=bool(audio),
            audio_codec=audio[0].codec_context.name if audio else None,
            sample_aspect_ratio=sar,
        )

    def _decode(self) -> Iterator[av.VideoFrame]:
        for packet in self._container.demux(self._stream):
            yield from packet.decode()

    def __iter__(self) -> Iterator[Frame]:
        """The frames of the time range (the whole video by default), numbered and timed as in the whole video."""
        start = self._stream.start_time or 0
        tb = self._stream.time_base
        fps = self.info.fps or 30.0
        last_t = -1.0
        index, frame, kept = -1, None, 0
        frames = self._indexed_frames()
        while True:
            try:
                index, frame = next(frames)
            except StopIteration:
                if frame is not None:
                    self._check_complete(index + 1, last_t)
                break
            except (av.FFmpegError, ValueError) as exc:
                log.warning("%s: decoding stopped at frame %d (%s)", self.path.name, index + 1, _reason(exc))
                self.truncated_at = index + 1
                break
            t = float((frame.pts - start) * tb) if frame.pts is not None and tb else index / fps
            if t <= last_t:  # broken or missing timestamps: keep time strictly increasing
                t = last_t + 1.0 / fps
            last_t = t
            if not self.time_range.contains(t):
                if t < self.time_range.start:
                    continue  # before the range (decoded only where the container could not seek)
                break  # past its end: nothing after it is decoded
            kept += 1
            image = _rotate(frame.to_ndarray(format="rgb24"), self.info.rotation)
            yield Frame(index=index, time_s=round(t, 6), image=image)
        if not kept and not self.time_range.is_whole:
            raise TimeRangeError(f"{self.path.name}: no frame in the range {self.time_range.describe()}")

    def _indexed_frames(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(frame number in the whole video, frame)``, from the keyframe before the range's start on when the
        container can seek there (the frames before the start are then counted, not decoded), else from frame 0."""
        if not self.time_range.start:
            return enumerate(itertools.chain([self._first], self._frames))
        pts = start_pts(self._stream, self.time_range.start)
        try:
            first = self._start_index
            if first is None:
                first = count_frames_before(self.path, self._stream.index, pts)
            frames = seek_frames(self._container, self._stream, pts)
        except SeekUnsupported as exc:
            log.info("%s: cannot seek (%s); decoding from the beginning up to the start", self.path.name, exc)
            self._reopen()
            return enumerate(self._frames)
        return enumerate((f for f in frames if f.pts is None or f.pts >= pts), start=first)

    def _reopen(self) -> None:
        """Open the input again from its beginning (after a seek that the container refused)."""
        self._container.close()
        self._container = av.open(str(self.path), metadata_errors="ignore")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if self._threads:
            self._stream.codec_context.thread_count = self._threads
        self._frames = self._decode()

    def _check_complete(self, frames: int, last_t: float) -> None:
        """At the end of the stream: a file cut short (its index or header still promises the missing part)
        decodes without an error, so compare the last frame's time with the duration the file announces."""
        fps = self.info.fps or 30.0
        expected = self.info.duration_s
        missing = expected - (last_t + 1.0 / fps)
        if expected and missing > max(2.0 / fps, 0.02 * expected):
            log.warning(
                "%s: the video stops at %.2f s of %.2f s (truncated file?); kept %d frames",
                self.path.name,
                last_t,
                expected,
                frames,
            )
            self.truncated_at = frames

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stream_duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    """Seconds the video stream lasts, from the stream's header, else the container's; 0 when neither says."""
    if stream.duration:
        return float(stream.duration * stream.time_base)
    return container.duration / 1e6 if container.duration else 0.0


def probe_duration(path: str | Path) -> float | None:
    """The duration of a video without decoding anything (for checking ``--start``/``--end`` before any work);
    None when the file cannot be opened as a video (the run reports why)."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                return None
            return stream_duration(container, container.streams.video[0])
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None


def _seek_quietly(container: av.container.InputContainer, stream: av.stream.Stream, pts: int) -> None:
    """Seek ``stream`` to the packet at or before ``pts`` where the container can; else stay at the beginning
    (the caller drops the packets before ``pts`` either way)."""
    try:
        container.seek(pts, stream=stream, backward=True, any_frame=False)
    except (av.FFmpegError, ValueError):
        pass  # nothing read yet: the demuxer is still at the beginning


def _raising(exc: BaseException) -> Iterator[av.VideoFrame]:
    raise exc
    yield  # a generator


def _still_image(path: Path, fmt: str, stream: av.video.stream.VideoStream) -> InputError:
    """The error for a picture given as a video (both of VideoReader's checks raise it)."""
    return InputError(f"{path.name}: a still image ({_image_kind(fmt, stream)}), not a video")


def _image_kind(fmt: str, stream: av.video.stream.VideoStream) -> str:
    """'png', 'jpeg', 'gif'...: the picture format, from the demuxer's name (png_pipe) or the codec's (mjpeg)."""
    if fmt.endswith("_pipe"):
        return fmt.removesuffix("_pipe")
    codec = stream.codec_context.name
    return {"mjpeg": "jpeg", "apng": "png"}.get(codec, codec)


def _reason(exc: BaseException) -> str:
    """A short reason for ``exc``: FFmpeg's own text without the ``[Errno N]`` prefix and the quoted file name
    (the caller names the file)."""
    strerror = getattr(exc, "strerror", None)
    if isinstance(strerror, str) and strerror.strip():
        return strerror.strip().splitlines()[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text.split(": '")[0] if ": '" in text else text


class VideoWriter:
    """H.264 (yuv420p) MP4 writer. Odd sizes are padded by one black pixel (H.264 4:2:0 needs even sizes);
    each frame keeps its presentation time, so variable frame rates survive. ``sample_aspect_ratio`` (the
    input's, for anamorphic video) is written in the H.264 stream and the MP4, so players show the input's shape.

    Write failures of the file system (disk full, permission denied) raise ``OSError`` with its errno, for
    the caller to report against its own input; other FFmpeg failures raise ``OutputError``."""

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 23,
        preset: str = "veryfast",
        sample_aspect_ratio: Fraction = Fraction(1),
        origin_pts: int | None = 0,
        after_pts: int = -1,
    ) -> None:
        """``origin_pts``: the time (90 kHz ticks) written as 0, None for the first frame's (a segment); ``after_pts``:
        every frame comes after this time (the last frame of the segment before)."""
        self.path = Path(path)
        self.width, self.height = width + width % 2, height + height % 2
        try:
            self._container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        except OSError:
            raise  # no space, no permission...: an OSError (errno kept), the caller names its input and folder
        except av.FFmpegError as exc:
            raise OutputError(f"{self.path.name}: cannot write output ({_reason(exc)})") from None
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        if sample_aspect_ratio != 1:  # square pixels stay unset, as before
            self._stream.codec_context.sample_aspect_ratio = Fraction(sample_aspect_ratio)
        self._stream.time_base = _TIME_BASE
        self._stream.codec_context.time_base = _TIME_BASE
        self._stream.options = {"crf": str(crf), "preset": preset}
        # x264's frame threads, as the ffmpeg command line runs it (PyAV's default is slice threads: more wall
        # time for the same CPU and 7 % larger files at the same crf; `benchmarks/micro.py encode`)
        self._stream.thread_type = "FRAME"
        self.origin_pts = origin_pts
        self.last_pts = after_pts
        self.frames = 0

    def write(self, image: np.ndarray, time_s: float) -> None:
        h, w = image.shape[:2]
        if (w, h) != (self.width, self.height):
            image = np.pad(image, ((0, self.height - h), (0, self.width - w), (0, 0)))
        # RGB -> YUV 4:2:0 in OpenCV: the BT.601 limited-range maths libswscale applies by default, 6x faster
        # (1.4 vs 9.5 CPU-ms per 720p frame; docs/performance.md)
        yuv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        pts = max(int(round(time_s / _TIME_BASE)), self.last_pts + 1)
        if self.origin_pts is None:  # a segment: its first frame is its time 0
            self.origin_pts = pts
        frame.pts, frame.time_base = pts - self.origin_pts, _TIME_BASE
        self.last_pts = pts
        self._mux(self._stream.encode(frame))
        self.frames += 1

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except OSError:
            raise
        except av.FFmpegError as exc:
            raise OutputError(f"{self.path.name}: cannot write output ({_reason(exc)})") from None

    def close(self) -> None:
        try:
            self._mux(self._stream.encode(None))
        finally:
            try:
                self._container.close()
            except OSError:
                raise
            except av.FFmpegError as exc:
                raise OutputError(f"{self.path.name}: cannot finish output ({_reason(exc)})") from None


@dataclass(frozen=True)
class Segment:
    """A finished part of an annotated video: a complete MP4 whose time 0 is ``origin_pts`` (90 kHz ticks) of the
    whole video, up to ``last_pts``; it starts on a keyframe (a new encoder), so segments join without re-encoding."""

    path: Path
    origin_pts: int
    last_pts: int
    frames: int


@dataclass(frozen=True)
class Encoding:
    """What every segment of one annotated video is encoded with (``VideoWriter``'s arguments)."""

    width: int
    height: int
    fps: float
    crf: int = 23
    preset: str = "veryfast"
    sample_aspect_ratio: Fraction = Fraction(1)


class SegmentedWriter:
    """The annotated video as segments: frames go into ``live`` (a ``VideoWriter``); ``cut(path)`` finishes the
    live segment, moves it to ``path`` and starts the next one, which starts on a keyframe and continues the
    frame times. ``done``: the segments of an earlier, interrupted run to continue after."""

    def __init__(self, live: Path, encoding: Encoding, done: Sequence[Segment] = ()) -> None:
        self.live = Path(live)
        self.encoding = encoding
        self.segments = list(done)
        last = self.segments[-1].last_pts if self.segments else -1
        self._writer: VideoWriter | None = self._open(None if self.segments else 0, last)

    def _open(self, origin_pts: int | None, after_pts: int) -> VideoWriter:
        e = self.encoding
        return VideoWriter(
            self.live, e.width, e.height, e.fps, e.crf, e.preset, e.sample_aspect_ratio, origin_pts, after_pts
        )

    @property
    def last_pts(self) -> int:
        assert self._writer is not None
        return self._writer.last_pts

    def write(self, image: np.ndarray, time_s: float) -> None:
        assert self._writer is not None
        self._writer.write(image, time_s)

    def cut(self, path: Path) -> Segment | None:
        """Finish the live segment as ``path`` (None: it holds no frame yet, nothing to cut)."""
        writer = self._writer
        assert writer is not None
        if not writer.frames:
            return None
        self._writer = None
        writer.close()
        os.replace(self.live, path)
        segment = Segment(Path(path), int(writer.origin_pts or 0), writer.last_pts, writer.frames)
        self.segments.append(segment)
        self._writer = self._open(None, writer.last_pts)
        return segment

    def close(self) -> list[Segment]:
        """Finish the live segment; every segment in order (the live one last, under its own name)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return list(self.segments)
        writer.close()
        if not writer.frames:
            return list(self.segments)
        return [*self.segments, Segment(self.live, int(writer.origin_pts or 0), writer.last_pts, writer.frames)]


def _segment_packets(segments: Sequence[Segment]) -> Iterator[av.Packet]:
    """The video packets of ``segments`` in order, their times moved to the whole video's (stream copy)."""
    extradata = None
    for seg in segments:
        with av.open(str(seg.path)) as vid:
            v_in = vid.streams.video[0]
            if extradata is None:
                extradata = v_in.codec_context.extradata
            elif v_in.codec_context.extradata != extradata:
                raise OutputError(f"{seg.path.name}: a segment encoded with other parameters, cannot join it")
            shift = int(round(Fraction(seg.origin_pts) * _TIME_BASE / v_in.time_base))
            for p in vid.demux(v_in):
                if p.dts is None:
                    continue
                p.pts, p.dts = (p.pts + shift if p.pts is not None else None), p.dts + shift
                yield p


def _as_segments(video: Path | Sequence[Segment]) -> Sequence[Segment]:
    return [Segment(Path(video), 0, 0, 0)] if isinstance(video, (str, Path)) else video


def join_segments(segments: Sequence[Segment], out_path: Path) -> None:
    """Write ``out_path`` = the segments one after the other, by stream copy (no re-encoding). Write errors raise
    ``OSError``, other FFmpeg failures ``OutputError``; nothing is left at ``out_path`` after a failure."""
    try:
        with (
            av.open(str(segments[0].path)) as first,
            av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as out,
        ):
            v_out = out.add_stream_from_template(first.streams.video[0])
            for packet in _segment_packets(segments):
                packet.stream = v_out
                out.mux(packet)
    except OSError:
        Path(out_path).unlink(missing_ok=True)
        raise
    except av.FFmpegError as exc:
        Path(out_path).unlink(missing_ok=True)
        raise OutputError(f"{Path(out_path).name}: cannot join the video's segments ({_reason(exc)})") from None


def mux_audio(
    video: Path | Sequence[Segment], source: Path, out_path: Path, start_s: float = 0.0, end_s: float | None = None
) -> bool:
    """Write ``out_path`` = the video of ``video`` (a file, or segments joined by stream copy) + the first audio
    track of ``source``.

    The audio is copied as it is when browsers play its codec, else re-encoded to AAC; its timing relative
    to the video start is kept (late-starting audio stays late). With ``start_s``/``end_s`` (seconds of the
    source's video) only that stretch of audio is kept, moved to start at 0 with the annotated range. Returns
    False (and writes nothing) when the source has no audio, or when its audio cannot be read or re-encoded
    (logged as a warning: the annotated video is then silent rather than lost). Write errors (disk full...)
    raise ``OSError``.
    """
    try:
        return _mux_audio(_as_segments(video), source, out_path, start_s, end_s)
    except OSError:
        Path(out_path).unlink(missing_ok=True)
        raise
    except (av.FFmpegError, ValueError) as exc:
        Path(out_path).unlink(missing_ok=True)
        log.warning("%s: audio track left out of the annotated video (%s)", Path(source).name, _reason(exc))
        return False


def _mux_audio(segments: Sequence[Segment], source: Path, out_path: Path, start_s: float, end_s: float | None) -> bool:
    with av.open(str(source), metadata_errors="ignore") as src:
        if not src.streams.audio:
            return False
        a_in = src.streams.audio[0]
        v_src = src.streams.video[0] if src.streams.video else None
        offset = float((v_src.start_time or 0) * v_src.time_base) if v_src is not None and v_src.time_base else 0.0
        with (
            av.open(str(segments[0].path)) as first,
            av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as out,
        ):
            v_out = out.add_stream_from_template(first.streams.video[0])
            copy = a_in.codec_context.name in BROWSER_AUDIO
            if copy:
                a_out = out.add_stream_from_template(a_in)
            else:
                a_out = out.add_stream("aac", rate=a_in.codec_context.sample_rate or 48000)
                a_out.layout = "stereo" if (a_in.codec_context.channels or 2) >= 2 else "mono"
            a_shift = int(round((offset + start_s) / a_in.time_base)) if a_in.time_base else 0
            a_stop = int(round((end_s - start_s) / a_in.time_base)) if end_s is not None and a_in.time_base else None

            def video_packets():
                for p in _segment_packets(segments):
                    yield float(p.dts * p.time_base), 0, p

            if start_s > 0:  # read the audio from the range's start, not from the beginning of the file
                _seek_quietly(src, a_in, a_shift)

            def audio_packets():
                for p in src.demux(a_in):
                    if p.dts is None:
                        continue
                    p.pts, p.dts = p.pts - a_shift if p.pts is not None else None, p.dts - a_shift
                    if p.pts is not None and p.pts < 0:
                        continue
                    if a_stop is not None and p.pts is not None and p.pts >= a_stop:
                        break
                    yield float(p.dts * a_in.time_base), 1, p

            for _, kind, packet in heapq.merge(video_packets(), audio_packets(), key=lambda x: (x[0], x[1])):
                if kind == 0:
                    packet.stream = v_out
                    out.mux(packet)
                elif copy:
                    packet.stream = a_out
                    out.mux(packet)
                else:
                    for frame in packet.decode():
                        frame.pts = None
                        out.mux(a_out.encode(frame))
            if not copy:
                out.mux(a_out.encode(None))
    return True
