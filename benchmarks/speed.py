"""Speed benchmark of fer-video: per-stage times, frames/s, the decode+encode floor, the peer tool, peak RSS.

    python benchmarks/speed.py [VIDEO] [--compare-fer] [--long-factor 10] [--accuracy] [--config NAME:k=v,...]

Every configuration runs in a fresh subprocess (one at a time), so its peak RSS (``ru_maxrss`` from ``wait4``)
and its CPU seconds are its own. Without VIDEO a deterministic 1280x720 clip is generated from the face photos
that ship inside installed packages (``fer_video.demo.make_demo_video``). Runs measured in the same invocation
share the machine's load, so their *ratios* are the numbers to compare across machines.

Runs:
  floor         the imageio-ffmpeg ``ffmpeg`` binary: decode the video and encode it again with the same H.264
                settings (libx264, the pipeline's preset and crf, yuv420p), audio copied: nothing else
  floor-pyav    the same through fer-video's own VideoReader -> VideoWriter (RGB frames in Python, as the
                pipeline must have them), no model
  fer-video     ``annotate_video`` with ``Settings()`` (the defaults): every frame annotated, full CSV, audio kept
  fer           (--compare-fer) the peer ``fer`` 25.10.3: ``FER(mtcnn=True)`` + ``Video.analyze`` with the
                annotated video, its audio (include_audio) and its CSV, in its own venv (setup_fer_env.sh)
  exact         (--accuracy) detection on every full-size frame, min_face 20, flip TTA, fp32: the accuracy reference
                (each --config run is also compared with the defaults' run: ``vs_default``)
  long          (--long-factor N) fer-video defaults on the same clip N times longer: flat-memory check,
                and the floor on that long clip (floor-long): the steady-state ratio without start-up costs
  pairs         (--pairs N) N more runs of the floor and fer-video's defaults, alternating: the headline's
                `pairs` gives the median ratio of the N pairs (on a shared VM single runs vary by 10-30 %)
  checkpoints   (--checkpoint-cost N) N interleaved pairs: checkpoints off (checkpoint_s=0), then on
                (--checkpoint-s, default 10): the cost of checkpointing as on/off ratios of each pair
  resume        (--resume-at F) a run killed (SIGKILL, by itself) once a fraction F of the frames is done, then
                the same run resumed from its last checkpoint, against a full run of the same settings

Output: a table on stdout and JSON in benchmarks/out/ (``--save NAME`` also writes benchmarks/results/NAME.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
RESULTS = HERE / "results"
FER_ENV = Path(os.environ.get("FER_ENV", HERE / ".fer-venv"))

DEMO_DEFAULTS = dict(width=1280, height=720, fps=25.0, seconds=10.0, faces=2, noface_from=None, audio=True)


# --------------------------------------------------------------------------------------------- child processes
# These run in a fresh interpreter (the fer one in fer's own venv: no fer_video import there).


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_fer_video(video: str, out_dir: str, settings_json: str) -> dict:
    from fer_video.pipeline import annotate_video  # before torch: fer_video sets OMP_WAIT_POLICY for it
    from fer_video.types import Settings

    values = json.loads(settings_json)
    resume = values.pop("_resume", False)  # continue from the checkpoint a killed run left in out_dir
    settings = Settings(**values)
    import torch

    t = time.perf_counter()
    result = annotate_video(video, out_dir, settings, name="bench", resume=resume)
    wall = time.perf_counter() - t
    proc = result.summary["processing"]
    return {
        "frames": result.frames,
        "seconds": wall,
        "fps": result.frames / wall,
        "stage_seconds": proc["stage_seconds"],
        "checkpoints_saved": proc.get("checkpoints_saved"),
        "resumed_at_frame": proc.get("resumed_at_frame"),
        "frames_annotated": proc.get("frames_annotated"),
        "faces": result.faces,
        "torch_threads": torch.get_num_threads(),
        "settings": result.summary["settings"],
        "csv": str(result.outputs.get("csv", "")),
        "video_out": str(result.outputs.get("video", "")),
    }


def child_fer_video_killed(video: str, out_dir: str, settings_json: str) -> dict:
    """``annotate_video`` that kills itself (SIGKILL: no clean-up) once ``_kill_at`` of the frames are done."""
    import signal

    from fer_video.pipeline import annotate_video
    from fer_video.types import Settings

    values = json.loads(settings_json)
    kill_at = values.pop("_kill_at")

    def progress(p) -> None:
        if p.total and p.done >= kill_at * p.total:
            os.kill(os.getpid(), signal.SIGKILL)

    annotate_video(video, out_dir, Settings(**values), name="bench", progress=progress)
    raise SystemExit("the run ended before it was killed")


def child_floor_pyav(video: str, out_dir: str, settings_json: str) -> dict:
    from fer_video.types import Settings
    from fer_video.video import VideoReader, VideoWriter

    s = Settings(**json.loads(settings_json))
    t = time.perf_counter()
    stages = {"decode": 0.0, "encode": 0.0}
    frames = 0
    with VideoReader(video) as reader:
        info = reader.info
        writer = VideoWriter(Path(out_dir) / "floor.mp4", info.width, info.height, info.fps, s.crf, s.preset)
        it = iter(reader)
        while True:
            t0 = time.perf_counter()
            f = next(it, None)
            t1 = time.perf_counter()
            stages["decode"] += t1 - t0
            if f is None:
                break
            writer.write(f.image, f.time_s)
            stages["encode"] += time.perf_counter() - t1
            frames += 1
        t0 = time.perf_counter()
        writer.close()
        stages["encode"] += time.perf_counter() - t0
    wall = time.perf_counter() - t
    return {
        "frames": frames,
        "seconds": wall,
        "fps": frames / wall,
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
    }


def child_fer(video: str, out_dir: str, _settings_json: str) -> dict:
    """The peer: fer's own documented video path, every frame, annotated video with audio, CSV."""
    import logging

    logging.disable(logging.WARNING)
    os.chdir(out_dir)  # fer's Video.to_csv writes data.csv into the working directory
    t = time.perf_counter()
    import torchvision  # noqa: F401  # before TensorFlow: importing torchvision.ops after TF segfaults (seen here)
    from fer.classes import Video  # fer 25.10.3's package __init__ exports neither
    from fer.fer import FER

    detector = FER(mtcnn=True)
    v = Video(video, outdir=out_dir)
    data = v.analyze(
        detector,
        display=False,
        output="csv",
        frequency=1,
        save_frames=False,
        save_video=True,
        annotate_frames=True,
        zip_images=False,
        include_audio=True,
    )
    wall = time.perf_counter() - t
    frames = int(v.frameCount)
    return {
        "frames": frames,
        "seconds": wall,
        "fps": frames / wall,
        "csv_rows": len(data),
        "outputs": sorted(os.listdir(out_dir)),
    }


CHILDREN = {
    "fer-video": child_fer_video,
    "fer-video-killed": child_fer_video_killed,
    "floor-pyav": child_floor_pyav,
    "fer": child_fer,
}


def _child_main(argv: list[str]) -> None:
    kind, video, out_dir, settings_json, result_path = argv
    res = CHILDREN[kind](video, out_dir, settings_json)
    res["peak_rss_mb_self"] = round(_peak_rss_mb(), 1)
    Path(result_path).write_text(json.dumps(res, default=str))


# --------------------------------------------------------------------------------------------- parent side


def run_subprocess(cmd: list[str], log_path: Path, cwd: Path | None = None) -> tuple[int, dict]:
    """Run ``cmd``; its own peak RSS (MB), CPU seconds and wall seconds from ``wait4``."""
    with open(log_path, "w") as log:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, {
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1),
        "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2),
        "process_wall_seconds": round(wall, 2),
    }


def run_child(kind: str, python: str, video: Path, settings: dict, tag: str, folder: str | None = None) -> dict:
    """One child run in ``benchmarks/out/runs/TAG`` (made afresh), or in the folder of run ``folder`` as it is."""
    out_dir = OUT / "runs" / (folder or tag)
    if folder is None:
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
    result_path = out_dir / "result.json"
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "_child",
        kind,
        str(video.resolve()),
        str(out_dir.resolve()),
        json.dumps(settings),
        str(result_path.resolve()),
    ]
    result_path.unlink(missing_ok=True)
    rc, usage = run_subprocess(cmd, out_dir / f"log-{tag}.txt")
    if rc != 0 or not result_path.exists():
        tail = (out_dir / f"log-{tag}.txt").read_text(errors="replace").strip().splitlines()[-15:]
        return {"name": tag, "kind": kind, "error": f"exit {rc}", "log_tail": tail, **usage}
    res = json.loads(result_path.read_text())
    return {"name": tag, "kind": kind, **res, **usage}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_floor_ffmpeg(video: Path, crf: int, preset: str, frames: int, tag: str = "floor") -> dict:
    out_dir = OUT / "runs" / tag
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    cmd = [
        ffmpeg_exe(),
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(video),
        "-map",
        "0:v:0",
        "-map",
        "0:a?",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "copy",
        "-movflags",
        "+faststart",
        str(out_dir / "floor.mp4"),
    ]
    rc, usage = run_subprocess(cmd, out_dir / "log.txt")
    if rc != 0:
        return {"name": tag, "kind": "floor", "error": f"exit {rc}", **usage}
    wall = usage["process_wall_seconds"]
    return {
        "name": tag,
        "kind": "floor",
        "frames": frames,
        "seconds": wall,
        "fps": frames / wall,
        "command": " ".join(cmd[:1] + ["..."] + cmd[5:]),
        **usage,
    }


def make_input(seconds: float, width: int, height: int, fps: float, faces: int = 2) -> Path:
    params = {**DEMO_DEFAULTS, "seconds": seconds, "width": width, "height": height, "fps": fps, "faces": faces}
    name = f"demo_{width}x{height}_{fps:g}fps_{seconds:g}s{'' if faces == 2 else f'_{faces}face'}.mp4"
    path = OUT / "videos" / name
    if not path.exists():
        sys.path.insert(0, str(ROOT))
        from fer_video.demo import make_demo_video

        tmp = path.with_name(f".{name}.part.mp4")
        make_demo_video(tmp, **params)
        os.replace(tmp, path)
    return path


def probe(video: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from fer_video.video import VideoReader

    with VideoReader(video) as r:
        info = r.info
        frames = sum(1 for _ in r) if not info.frame_count else info.frame_count
    return {
        "path": str(video),
        "width": info.width,
        "height": info.height,
        "fps": info.fps,
        "frames": frames,
        "duration_s": info.duration_s,
        "has_audio": info.has_audio,
    }


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "avx512": "avx512f" in flags,
        "avx2": "avx2" in flags,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "loadavg_at_start": os.getloadavg(),
        "platform": platform.platform(),
    }


def parse_config(text: str) -> tuple[str, dict]:
    """``NAME:key=value,key=value`` -> (NAME, overrides) with values parsed as JSON when they can be."""
    name, _, rest = text.partition(":")
    over = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        try:
            over[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            over[k.strip()] = v
    return name, over


def checkpoint_cost(python: str, video: Path, pairs: int, every_s: float) -> tuple[list[dict], dict]:
    """``pairs`` interleaved runs with checkpoints off, then on: runs, and the on/off ratios of each pair."""
    runs, ratios = [], []
    for k in range(pairs):
        off = run_child("fer-video", python, video, {"checkpoint_s": 0}, f"checkpoints-off#{k + 1}")
        on = run_child("fer-video", python, video, {"checkpoint_s": every_s}, f"checkpoints-on#{k + 1}")
        runs += [off, on]
        if "error" not in off and "error" not in on:
            ratios.append(
                {
                    "wall": round(on["seconds"] / off["seconds"], 4),
                    "cpu": round(on["cpu_seconds"] / off["cpu_seconds"], 4),
                    "checkpoints": on["checkpoints_saved"],
                    "checkpoint_stage_s": on["stage_seconds"].get("checkpoint", 0.0),
                }
            )
    walls = sorted(r["wall"] for r in ratios)
    cpus = sorted(r["cpu"] for r in ratios)
    summary = {
        "checkpoint_s": every_s,
        "pairs": ratios,
        "median_wall_ratio": walls[len(walls) // 2] if walls else None,
        "median_cpu_ratio": cpus[len(cpus) // 2] if cpus else None,
    }
    return runs, summary


def resume_saving(python: str, video: Path, kill_at: float, every_s: float) -> tuple[list[dict], dict]:
    """A full run; a run killed at ``kill_at`` of its frames; that run resumed: what the resume saves."""
    settings = {"checkpoint_s": every_s}
    full = run_child("fer-video", python, video, settings, "resume-full")
    killed = run_child("fer-video-killed", python, video, {**settings, "_kill_at": kill_at}, "resume-killed")
    resumed = run_child("fer-video", python, video, {**settings, "_resume": True}, "resume-resumed", "resume-killed")
    runs = [full, killed, resumed]
    summary: dict = {"kill_at": kill_at, "checkpoint_s": every_s, "killed_exit": killed.get("error")}
    if "error" not in full and "error" not in resumed:
        same = Path(full["csv"]).read_bytes() == Path(resumed["csv"]).read_bytes()
        summary.update(
            resumed_at_frame=resumed["resumed_at_frame"],
            frames=resumed["frames"],
            frames_annotated=resumed["frames_annotated"],
            wall_ratio=round(resumed["process_wall_seconds"] / full["process_wall_seconds"], 4),
            cpu_ratio=round(resumed["cpu_seconds"] / full["cpu_seconds"], 4),
            killed_plus_resumed_wall_ratio=round(
                (killed["process_wall_seconds"] + resumed["process_wall_seconds"]) / full["process_wall_seconds"], 4
            ),
            same_csv=same,
        )
    return runs, summary


# --------------------------------------------------------------------------------------------- accuracy


def read_timeline(path: Path):
    import pandas as pd

    df = pd.read_csv(path)
    return df[df["face_id"].notna()]


def compare_timelines(ref_csv: Path, test_csv: Path, iou_min: float = 0.5) -> dict:
    """Boxes and emotions of ``test`` against the reference, per (frame, face): faces matched per frame by
    IoU (Hungarian, IoU >= ``iou_min``); mean IoU of matches; recall/precision of faces; agreement of the
    smoothed (``emotion``) and the raw argmax emotion over matched faces."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    sys.path.insert(0, str(ROOT))
    from fer_video.track import iou_matrix

    ref, test = read_timeline(ref_csv), read_timeline(test_csv)
    raw_cols = [c for c in ref.columns if c.startswith("raw_")]
    ious, same_emotion, same_raw = [], 0, 0
    n_ref, n_test = len(ref), len(test)
    test_by_frame = {f: g for f, g in test.groupby("frame")}
    for frame, r in ref.groupby("frame"):
        t = test_by_frame.get(frame)
        if t is None:
            continue
        a = r[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
        b = t[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
        iou = iou_matrix(a, b)
        rows, cols = linear_sum_assignment(-iou)
        ra, ta = r[raw_cols].to_numpy(np.float32).argmax(1), t[raw_cols].to_numpy(np.float32).argmax(1)
        for i, j in zip(rows, cols, strict=True):
            if iou[i, j] >= iou_min:
                ious.append(float(iou[i, j]))
                same_emotion += r["emotion"].iloc[i] == t["emotion"].iloc[j]
                same_raw += int(ra[i] == ta[j])
    m = len(ious)
    return {
        "ref_faces": n_ref,
        "test_faces": n_test,
        "matched": m,
        "recall": round(m / max(n_ref, 1), 4),
        "precision": round(m / max(n_test, 1), 4),
        "mean_iou": round(float(np.mean(ious)) if ious else 0.0, 4),
        "emotion_agreement": round(same_emotion / max(m, 1), 4),
        "raw_emotion_agreement": round(same_raw / max(m, 1), 4),
    }


# --------------------------------------------------------------------------------------------- report


def table(runs: list[dict], floor_fps: float | None, fer_fps: float | None) -> str:
    stages = ["decode", "detect", "track", "classify", "smooth", "draw", "encode", "csv", "mux", "plot"]
    head = ["run", "frames", "wall s", "fps", "x floor", "x fer", "RSS MB", "CPU s"] + stages + ["IoU", "emo agr"]
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in runs:
        if "error" in r:
            lines.append(f"{r['name']} | ERROR {r['error']}")
            continue
        ss = r.get("stage_seconds", {})
        acc = r.get("accuracy", {})
        row = [
            r["name"],
            str(r["frames"]),
            f"{r['seconds']:.1f}",
            f"{r['fps']:.2f}",
            f"{r['fps'] / floor_fps:.1%}" if floor_fps else "",
            f"{r['fps'] / fer_fps:.2f}x" if fer_fps else "",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['cpu_seconds']:.0f}",
        ]
        row += [f"{ss[s]:.1f}" if s in ss else "" for s in stages]
        row += [f"{acc['mean_iou']:.3f}" if acc else "", f"{acc['emotion_agreement']:.3f}" if acc else ""]
        lines.append(" | ".join(row))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        _child_main(argv[1:])
        return 0
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("video", nargs="?", help="any video (default: a generated 1280x720 clip with two faces)")
    p.add_argument("--seconds", type=float, default=DEMO_DEFAULTS["seconds"], help="length of the generated clip")
    p.add_argument("--size", default="1280x720", help="WxH of the generated clip")
    p.add_argument("--fps", type=float, default=DEMO_DEFAULTS["fps"], help="frame rate of the generated clip")
    p.add_argument("--faces", type=int, default=DEMO_DEFAULTS["faces"], help="faces in the generated clip (1 or 2)")
    p.add_argument(
        "--pairs",
        type=int,
        default=0,
        metavar="N",
        help="N more floor / fer-video (defaults) runs, interleaved; the headline gives the median of the N "
        "ratios of each pair (a shared, noisy machine moves both runs of a pair alike)",
    )
    p.add_argument("--compare-fer", action="store_true", help="also run fer 25.10.3 (needs setup_fer_env.sh)")
    p.add_argument("--fer-python", default=str(FER_ENV / "bin" / "python"), help="python of fer's venv")
    p.add_argument(
        "--accuracy",
        action="store_true",
        help="add the exact reference run (detect_every=1, detect_max_side=0, min_face=20, tta, fp32); compare with it",
    )
    p.add_argument(
        "--long-factor",
        type=int,
        default=0,
        metavar="N",
        help="also run the defaults on the generated clip N times longer (peak-RSS flatness)",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME:key=val,...",
        help="an extra fer-video run with Settings overrides, e.g. 'every1:detect_every=1'",
    )
    p.add_argument("--no-default", action="store_true", help="skip the run with the default Settings")
    p.add_argument("--no-floor", action="store_true", help="skip the floor runs")
    p.add_argument("--repeat", type=int, default=1, help="run each fer-video configuration this many times")
    p.add_argument(
        "--checkpoint-cost",
        type=int,
        default=0,
        metavar="N",
        help="N interleaved pairs of runs with checkpoints off and on (--checkpoint-s): the cost of checkpoints",
    )
    p.add_argument(
        "--resume-at",
        type=float,
        metavar="F",
        help="a run killed once a fraction F of its frames is done, resumed, against a full run",
    )
    p.add_argument("--checkpoint-s", type=float, default=10.0, help="the checkpoint interval of those runs")
    p.add_argument("--save", metavar="NAME", help="also write benchmarks/results/NAME.json")
    args = p.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from fer_video.types import Settings

    OUT.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in args.size.lower().split("x"))
    video = Path(args.video) if args.video else make_input(args.seconds, w, h, args.fps, args.faces)
    info = probe(video)
    d = Settings()
    print(
        f"video: {video} {info['width']}x{info['height']} {info['fps']} fps {info['frames']} frames "
        f"audio={info['has_audio']}",
        flush=True,
    )
    python = sys.executable
    runs: list[dict] = []

    def record(r: dict) -> None:
        runs.append(r)
        brief = {k: r.get(k) for k in ("name", "fps", "seconds", "peak_rss_mb", "cpu_seconds", "error")}
        print(json.dumps(brief, default=str), flush=True)

    if not args.no_floor:
        record(run_floor_ffmpeg(video, d.crf, d.preset, info["frames"]))
        record(run_child("floor-pyav", python, video, {"crf": d.crf, "preset": d.preset}, "floor-pyav"))
    configs: list[tuple[str, dict]] = [] if args.no_default else [("fer-video", {})]
    configs += [parse_config(c) for c in args.config]
    if args.accuracy:
        exact = {"detect_every": 1, "detect_max_side": 0, "min_face": 20, "tta": True, "precision": "fp32"}
        configs.append(("exact", {**exact, "write_video": False, "write_plot": False}))
    for name, over in configs:
        for k in range(args.repeat):
            tag = name if args.repeat == 1 else f"{name}#{k + 1}"
            r = run_child("fer-video", python, video, over, tag)
            r["overrides"] = over
            record(r)
    pairs = []
    for k in range(args.pairs):
        fl = run_floor_ffmpeg(video, d.crf, d.preset, info["frames"], f"floor-pair{k + 1}")
        record(fl)
        fv = run_child("fer-video", python, video, {}, f"fer-video-pair{k + 1}")
        record(fv)
        if "error" not in fl and "error" not in fv:
            pairs.append({"floor_fps": fl["fps"], "fps": fv["fps"], "ratio": fv["fps"] / fl["fps"]})
    if args.compare_fer:
        if not Path(args.fer_python).exists():
            missing = f"{args.fer_python} missing: run benchmarks/setup_fer_env.sh"
            record({"name": "fer", "kind": "fer", "error": missing})
        else:
            record(run_child("fer", args.fer_python, video, {}, "fer"))
    if args.long_factor > 1 and not args.video:
        long_video = make_input(args.seconds * args.long_factor, w, h, args.fps)
        r = run_child("fer-video", python, long_video, {}, f"long-x{args.long_factor}")
        r["video"] = str(long_video)
        record(r)
        if not args.no_floor:  # the same long clip through the floor: a steady-state ratio
            long_frames = probe(long_video)["frames"]
            fl = run_floor_ffmpeg(long_video, d.crf, d.preset, long_frames, f"floor-long-x{args.long_factor}")
            fl["video"] = str(long_video)
            record(fl)

    extra: dict = {}
    if args.checkpoint_cost:
        more, extra["checkpoints"] = checkpoint_cost(python, video, args.checkpoint_cost, args.checkpoint_s)
        for r in more:
            record(r)
    if args.resume_at:
        more, extra["resume"] = resume_saving(python, video, args.resume_at, args.checkpoint_s)
        for r in more:
            record(r)

    ok = {r["name"]: r for r in runs if "error" not in r}
    floor = ok.get("floor") or ok.get("floor-pyav")
    floor_fps = floor["fps"] if floor else None
    fer_fps = ok["fer"]["fps"] if "fer" in ok else None
    if "exact" in ok:
        for r in runs:
            if r.get("kind") == "fer-video" and "error" not in r and r["name"] != "exact" and "long" not in r["name"]:
                r["accuracy"] = compare_timelines(Path(ok["exact"]["csv"]), Path(r["csv"]))
    if "fer-video" in ok:  # each other configuration against the defaults (e.g. what --classify-every costs)
        for r in runs:
            if r.get("overrides") and "error" not in r and r["name"] != "exact" and r.get("csv"):
                r["vs_default"] = compare_timelines(Path(ok["fer-video"]["csv"]), Path(r["csv"]))
    default = ok.get("fer-video") or ok.get("fer-video#1")
    headline = {}
    if default:
        headline = {
            "fps": round(default["fps"], 3),
            "floor_fps": round(floor_fps, 3) if floor_fps else None,
            "ratio_to_floor": round(default["fps"] / floor_fps, 4) if floor_fps else None,
            "floor_pyav_fps": round(ok["floor-pyav"]["fps"], 3) if "floor-pyav" in ok else None,
            "ratio_to_floor_pyav": (round(default["fps"] / ok["floor-pyav"]["fps"], 4) if "floor-pyav" in ok else None),
            "fer_fps": round(fer_fps, 3) if fer_fps else None,
            "ratio_to_fer": round(default["fps"] / fer_fps, 3) if fer_fps else None,
            "peak_rss_mb": default["peak_rss_mb"],
        }
        long_run = next((r for n, r in ok.items() if n.startswith("long")), None)
        if long_run:
            headline["long_peak_rss_mb"] = long_run["peak_rss_mb"]
            headline["long_rss_growth"] = round(long_run["peak_rss_mb"] / default["peak_rss_mb"] - 1, 4)
            headline["long_fps"] = round(long_run["fps"], 3)
            long_floor = next((r for n, r in ok.items() if n.startswith("floor-long")), None)
            if long_floor:
                headline["long_floor_fps"] = round(long_floor["fps"], 3)
                headline["long_ratio_to_floor"] = round(long_run["fps"] / long_floor["fps"], 4)
    if pairs:
        ratios = sorted(p["ratio"] for p in pairs)
        headline["pairs"] = {
            "n": len(pairs),
            "ratio_to_floor_median": round(statistics.median(ratios), 4),
            "ratio_to_floor_min": round(ratios[0], 4),
            "ratio_to_floor_max": round(ratios[-1], 4),
            "fps_median": round(statistics.median([p["fps"] for p in pairs]), 3),
            "floor_fps_median": round(statistics.median([p["floor_fps"] for p in pairs]), 3),
        }
        if fer_fps:
            headline["pairs"]["ratio_to_fer_median"] = round(headline["pairs"]["fps_median"] / fer_fps, 3)
    report = {
        "command": "python benchmarks/speed.py " + " ".join(argv),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "video": info,
        "default_settings": {k: v for k, v in vars(d).items() if k != "weights"},
        "headline": headline,
        **extra,
        "runs": runs,
    }
    print()
    print(table(runs, floor_fps, fer_fps))
    print()
    print(json.dumps(headline, indent=2))
    if extra:
        print(json.dumps({k: v for k, v in extra.items()}, indent=2))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_json = OUT / f"speed-{stamp}.json"
    out_json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {out_json}")
    if args.save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{args.save}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {RESULTS / (args.save + '.json')}")
    return 0 if all("error" not in r for r in runs if r["kind"] != "fer-video-killed") else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        if "fer_video" not in sys.modules:
            sys.path.insert(0, str(ROOT))
        _child_main(sys.argv[2:])
    else:
        sys.exit(main())
