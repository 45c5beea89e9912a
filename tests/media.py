"""Helpers shared by the bad-input, output-fault, interrupt and weights tests: synthetic video makers (PyAV, and
the ffmpeg binary of imageio-ffmpeg for rotation metadata and re-muxing), the in-process CLI, output checks.

Every input is generated on the fly; nothing is committed. Clips are tiny (160x120, 10 fps, 1 s).
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg

from fer_video.cli import main
from fer_video.demo import face_sprites, make_demo_video, render_frame
from fer_video.outputs import output_paths
from fer_video.timeline import read_timeline

ROOT = Path(__file__).resolve().parent.parent
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
SMALL = dict(width=160, height=120, fps=10.0, seconds=1.0, faces=1, noface_from=None, audio=False)


def ffmpeg(*args: object) -> None:
    subprocess.run([FFMPEG, "-y", "-nostdin", "-v", "error", *map(str, args)], check=True, capture_output=True)


def small(path: Path, **kwargs) -> Path:
    return make_demo_video(path, **{**SMALL, **kwargs})


def cli(capsys, weights: Path, *args: str) -> tuple[int, str, str]:
    """Run ``fer-video annotate ARGS`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(["annotate", *args, "--weights", str(weights), "--device", "cpu", "--min-face", "20", "-q"])
    out, err = capsys.readouterr()
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.part")) if folder.is_dir() else []


def assert_complete(out: Path, name: str, no_temp_files: bool = True) -> dict:
    """Every default output under its final name (the ELAN document is asked for), no temp file left; returns
    the summary."""
    paths = output_paths(out, name)
    for key, p in paths.items():
        if key == "elan":
            continue
        assert p.is_file() and p.stat().st_size > 0, f"missing {key} output {p.name}"
    if no_temp_files:
        assert parts(out) == []
    summary = json.loads(paths["summary"].read_text())
    csv_frames = read_timeline(paths["csv"])["frame"].nunique()
    assert summary["frames"] == csv_frames
    with av.open(str(paths["video"])) as c:
        assert c.streams.video[0].frames == summary["frames"]
    return summary


def assert_nothing_for(out: Path, name: str) -> None:
    for p in output_paths(out, name).values():
        assert not p.exists(), f"{p.name} exists after a failure"
    assert parts(out) == []


def video_props(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(video=0))
        return {
            "size": (frames[0].width, frames[0].height),
            "rotation": frames[0].rotation,
            "pix_fmt": v.codec_context.pix_fmt,
            "codec": v.codec_context.name,
            "frames": len(frames),
            "times": [float(f.pts * f.time_base) for f in frames],
            "audio": [a.codec_context.name for a in c.streams.audio],
            "images": [f.to_ndarray(format="rgb24") for f in frames],
        }


def zero_frame_avi(path: Path) -> Path:
    """An AVI with a video stream header and not a single frame."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mjpeg", rate=10)
        v.width, v.height, v.pix_fmt = 160, 120, "yuvj420p"
        out.start_encoding()
        out.mux(v.encode(None))
    return path


def vfr_video(path: Path, times: list[float], width: int = 160, height: int = 120) -> Path:
    """H.264 with frames at the given (irregular) times, millisecond time base."""
    sprites = face_sprites()
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=10)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(render_frame(i, 10, width, height, sprites, 1, True), format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
    return path
