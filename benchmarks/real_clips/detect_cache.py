"""Cache MTCNN boxes + 5 landmarks for every frame of the labelled clips (facenet-pytorch MTCNN, offline weights)."""

import csv
import os
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN

from fer_video.video import VideoReader

torch.set_num_threads(2)
root = Path(os.environ.get("FER_VIDEO_CLIPS", Path(__file__).resolve().parents[3] / "shared/videos/labelled-dev"))
out = Path(os.environ.get("FER_VIDEO_CLIPS_CACHE", "benchmarks/out/real_clips_cache"))
out.mkdir(parents=True, exist_ok=True)
m = MTCNN(keep_all=True, device="cpu", min_face_size=40, thresholds=[0.6, 0.7, 0.7])
rows = list(csv.DictReader(open(root / "labels.csv")))
for r in rows:
    f = out / (r["file"] + ".npz")
    if f.exists():
        continue
    frames, boxes, lms, probs = [], [], [], []
    for fr in VideoReader(root / r["file"]):
        img = fr.image
        b, p, l = m.detect(img, landmarks=True)
        if b is None:
            b, p, l = np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        keep = p >= 0.9
        frames.append(img)
        boxes.append(b[keep])
        probs.append(p[keep])
        lms.append(l[keep])
    np.savez_compressed(
        f,
        frames=np.stack(frames),
        boxes=np.array(boxes, dtype=object),
        lms=np.array(lms, dtype=object),
        probs=np.array(probs, dtype=object),
    )
    print(r["file"], len(frames), sum(len(b) > 0 for b in boxes), flush=True)
