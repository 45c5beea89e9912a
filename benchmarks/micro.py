"""CPU-time micro-benchmarks of the two models, for a machine too busy for wall-clock numbers.

    python benchmarks/micro.py detect [VIDEO] [--sides 480 640 960] [--min-faces 20 40]   # MTCNN CPU ms/frame
    python benchmarks/micro.py classify                                # ResNet18 ms of CPU per face crop

``time.process_time`` counts the CPU this process used, whatever share of the machine it got, so the
numbers hold on a loaded machine (wall-clock ones do not). One torch thread: per-core cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def detect(video: Path, sides: list[int], min_faces: list[int], n: int = 4) -> None:
    from fer_video.detect import FaceDetector
    from fer_video.video import VideoReader

    frames = []
    with VideoReader(video) as r:
        for f in r:
            frames.append(f.image)
            if len(frames) == n:
                break
    for side in sides:
        for min_face in min_faces:
            for channels_last in (False, True):
                d = FaceDetector(torch.device("cpu"), min_face, 0.9, side, channels_last=channels_last)
                d.detect(frames[:1])  # builds MTCNN
                c = time.process_time()
                out = d.detect(frames)
                c = time.process_time() - c
                layout = "channels_last" if channels_last else "NCHW"
                print(
                    f"max_side {side} min_face {min_face} {layout}: cpu {c / n * 1000:.0f} ms/frame "
                    f"faces {[len(o) for o in out]}",
                    flush=True,
                )


def classify(n_crops: int = 32, repeat: int = 3) -> None:
    from fer_video.classify import EmotionClassifier
    from fer_video.pipeline import default_weights

    clf = EmotionClassifier.from_weights(str(default_weights()), torch.device("cpu"), 64, True)
    crops = np.random.default_rng(0).integers(0, 255, (n_crops, 48, 48, 1), dtype=np.uint8)

    def nchw_tta(c: np.ndarray) -> np.ndarray:  # the same maths without channels_last
        x = torch.from_numpy(c).permute(0, 3, 1, 2).float() / 255.0
        x = ((x - clf._mean) / clf._std).contiguous()
        with torch.inference_mode():
            logits = clf.model(torch.cat([x, torch.flip(x, dims=[3])]))
        p = torch.softmax(logits.float(), 1)
        return ((p[: len(x)] + p[len(x) :]) / 2).numpy()

    def bench(name: str, fn) -> np.ndarray:
        p = fn(crops)
        c = time.process_time()
        for _ in range(repeat):
            p = fn(crops)
        c = (time.process_time() - c) / repeat / n_crops * 1000
        print(f"{name}: cpu {c:.1f} ms/crop", flush=True)
        return p

    ref = bench("channels_last tta", clf.predict)
    clf.tta = False
    bench("channels_last no-tta", clf.predict)
    clf.tta = True
    clf.model = clf.model.to(memory_format=torch.contiguous_format)
    p = bench("nchw tta", nchw_tta)
    print("max |p - p_channels_last| =", float(np.abs(p - ref).max()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["detect", "classify"])
    p.add_argument("video", nargs="?", default=str(ROOT / "benchmarks/out/videos/demo_1280x720_25fps_10s.mp4"))
    p.add_argument("--sides", type=int, nargs="+", default=[480, 640, 960])
    p.add_argument("--min-faces", type=int, nargs="+", default=[20, 40])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.what == "detect":
        detect(Path(args.video), args.sides, args.min_faces)
    else:
        classify()


if __name__ == "__main__":
    main()
