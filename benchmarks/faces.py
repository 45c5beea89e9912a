"""How the cost grows with the number of faces: `speed.py` on generated 640x360 clips with 1, 3 and 10 faces.

    python benchmarks/faces.py [--faces 1,3,10] [--seconds 10] [--save NAME]

Each clip is a grid of the face photos that ship inside installed packages (scikit-image's astronaut,
matplotlib's Grace Hopper; alternately mirrored), each drifting slowly in its cell, 25 fps, with a tone as
audio. For each clip, `speed.py` runs the floor (ffmpeg decode + the same libx264 encode) and fer-video at the
default settings in fresh processes, one at a time; the table gives frames/s, the ratio to the floor and the
stage seconds. Results: benchmarks/out/faces-*.json (with --save also benchmarks/results/NAME.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"


def grid_clip(path: Path, faces: int, width: int = 640, height: int = 360, fps: float = 25.0, seconds: float = 10):
    """``faces`` face photos on a grid, each drifting in its cell."""
    import av

    sys.path.insert(0, str(ROOT))
    from fer_video.demo import face_sprites

    sprites = face_sprites()
    cols = max(1, math.ceil(math.sqrt(faces * width / height)))
    rows = math.ceil(faces / cols)
    cw, ch = width / cols, height / rows
    side = int(min(cw, ch) * 0.75)
    tiles = []
    for k in range(faces):
        sprite = sprites[k % len(sprites)]
        tile = cv2.resize(sprite, (int(side * sprite.shape[1] / sprite.shape[0]), side), interpolation=cv2.INTER_AREA)
        tiles.append(tile[:, ::-1] if (k // len(sprites)) % 2 else tile)
    n = int(round(seconds * fps))
    tmp = path.with_name(f".{path.name}.part.mp4")
    with av.open(str(tmp), "w") as out:
        v = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=44100)
        a.layout = "mono"
        for i in range(n):
            t = i / fps
            frame = np.full((height, width, 3), 140, np.uint8)
            for k, tile in enumerate(tiles):
                r, c = divmod(k, cols)
                th, tw = tile.shape[:2]
                x = int(c * cw + (cw - tw) / 2 + (cw - tw) / 3 * math.sin(0.7 * t + k))
                y = int(r * ch + (ch - th) / 2 + (ch - th) / 3 * math.cos(0.5 * t + k))
                x, y = min(max(x, 0), width - tw), min(max(y, 0), height - th)
                frame[y : y + th, x : x + tw] = tile[: height - y, : width - x]
            out.mux(v.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(v.encode(None))
        samples = int(44100 * seconds)
        tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)
        for s in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, s : s + 1024], format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 44100, s
            out.mux(a.encode(chunk))
        out.mux(a.encode(None))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", default="1,3,10")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--save", metavar="NAME")
    p.add_argument("--pairs", type=int, default=0, help="speed.py --pairs N: the median ratio of N interleaved pairs")
    args = p.parse_args(argv)
    (OUT / "videos").mkdir(parents=True, exist_ok=True)
    rows = []
    for n in (int(f) for f in args.faces.split(",")):
        clip = OUT / "videos" / f"grid_{n}faces_640x360_{args.seconds:g}s.mp4"
        if not clip.exists():
            grid_clip(clip, n, seconds=args.seconds)
        before = set(OUT.glob("speed-*.json"))
        extra = ["--pairs", str(args.pairs)] if args.pairs else []
        command = [sys.executable, str(HERE / "speed.py"), str(clip), *extra]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        report = json.loads(max(set(OUT.glob("speed-*.json")) - before).read_text())
        run = next(r for r in report["runs"] if r["name"] == "fer-video")
        rows.append(
            {
                "faces": n,
                "faces_found": run.get("faces"),
                "fps": report["headline"]["fps"],
                "floor_fps": report["headline"]["floor_fps"],
                "ratio_to_floor": report["headline"]["ratio_to_floor"],
                "stage_seconds": run.get("stage_seconds"),
                "cpu_seconds": run.get("cpu_seconds"),
                "loadavg_at_start": report["machine"]["loadavg_at_start"],
                **({"pairs": report["headline"]["pairs"]} if "pairs" in report["headline"] else {}),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {"command": "python benchmarks/faces.py " + " ".join(argv or sys.argv[1:]), "machine": report["machine"]}
    result["started_utc"], result["rows"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), rows
    print("\n| faces | fer-video fps | floor fps | ratio to the floor | median of the pairs |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        pair = f"{r['pairs']['ratio_to_floor_median']:.2f}x ({r['pairs']['n']})" if "pairs" in r else ""
        print(f"| {r['faces']} | {r['fps']:.1f} | {r['floor_fps']:.1f} | {r['ratio_to_floor']:.2f}x | {pair} |")
    (OUT / f"faces-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.save:
        (HERE / "results" / f"{args.save}.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
