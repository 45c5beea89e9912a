"""Clip/frame accuracy of crop variants on the cached detections (largest face per frame)."""

import csv
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from fer_video.classify import crop_box
from fer_video.model import load_model

torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
root = Path(os.environ.get("FER_VIDEO_CLIPS", Path(__file__).resolve().parents[3] / "shared/videos/labelled-dev"))
cache = Path(os.environ.get("FER_VIDEO_CLIPS_CACHE", "benchmarks/out/real_clips_cache"))
weights = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else "weights/fer2013_resnet18.pt"
model, card = load_model(weights)
model.eval()
classes = list(card.classes)
rows = [r for r in csv.DictReader(open(root / "labels.csv")) if (cache / (r["file"] + ".npz")).exists()]


def box_crop(img, box, margin):
    h, w = img.shape[:2]
    l, t, r, b = crop_box(box, margin, w, h)
    g = cv2.cvtColor(img[t:b, l:r], cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, (48, 48), interpolation=cv2.INTER_AREA)


def aligned_crop(img, lm, scale, yshift, box=None, rotate=True):
    """Rotate about the eyes' midpoint so the eyes are level; square side = scale * eye-to-mouth distance,
    centred at the eye-mouth midpoint moved down by yshift * side."""
    le, re, nose, lm_, rm = lm
    eye = (le + re) / 2
    mouth = (lm_ + rm) / 2
    ang = math.degrees(math.atan2(re[1] - le[1], re[0] - le[0])) if rotate else 0.0
    d = np.linalg.norm(mouth - eye)
    side = scale * d
    c = (eye + mouth) / 2
    M = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), ang, 48.0 / side)
    M[0, 2] += 24 - c[0]
    M[1, 2] += 24 - c[1] - yshift * 48
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    # area-like: pre-blur when shrinking a lot
    f = side / 48
    if f > 2:
        g = cv2.GaussianBlur(g, (0, 0), sigmaX=0.5 * f)
    return cv2.warpAffine(g, M, (48, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@torch.inference_mode()
def probs(crops, tta=False):
    x = torch.from_numpy(np.stack(crops)).unsqueeze(1).float() / 255
    x = (x - card.mean[0]) / card.std[0]
    p = torch.softmax(model(x), 1)
    if tta:
        p = (p + torch.softmax(model(torch.flip(x, dims=[3])), 1)) / 2
    return p.numpy()


def data():
    for r in rows:
        z = np.load(cache / (r["file"] + ".npz"), allow_pickle=True)
        yield r, z["frames"], z["boxes"], z["lms"]


variants = {
    "box m0": lambda im, b, l: box_crop(im, b, 0.0),
    "box m0.1": lambda im, b, l: box_crop(im, b, 0.1),
    "box m0.2": lambda im, b, l: box_crop(im, b, 0.2),
    "al s2.2": lambda im, b, l: aligned_crop(im, l, 2.2, 0.0),
    "al s2.5": lambda im, b, l: aligned_crop(im, l, 2.5, 0.0),
    "al s2.8": lambda im, b, l: aligned_crop(im, l, 2.8, 0.0),
    "al s2.5 up": lambda im, b, l: aligned_crop(im, l, 2.5, -0.05),
    "al s2.5 norot": lambda im, b, l: aligned_crop(im, l, 2.5, 0.0, rotate=False),
}
results = {k: [] for k in variants}
sheets = {}
for r, frames, boxes, lms in data():
    for k, fn in variants.items():
        cr = []
        for im, b, l in zip(frames, boxes, lms, strict=True):
            if len(b) == 0:
                continue
            a = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            i = int(np.argmax(a))
            cr.append(fn(im, b[i], l[i]))
        p = probs(cr)
        results[k].append((r["file"], r["label"], r["subject"], p))
        if k in ("box m0", "al s2.5"):
            sheets.setdefault(r["file"], {})[k] = np.stack(cr[:: max(1, len(cr) // 8)][:8])
np.save(
    str(cache.parent / "real_clips_results.npy"),
    {k: [(f, l, s, p) for f, l, s, p in v] for k, v in results.items()},
    allow_pickle=True,
)
# priors
counts = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965], float)  # angry disgust fear happy sad surprise neutral
prior = counts / counts.sum()


def score(res, tau=0.0, agg="mean"):
    ok = 0
    fr = 0
    nf = 0
    per = {}
    for _file, lab, _subject, p in res:
        q = p / prior**tau
        q = q / q.sum(1, keepdims=True)
        pred = classes[int(q.mean(0).argmax())]
        ok += pred == lab
        per.setdefault(lab, [0, 0])
        per[lab][0] += pred == lab
        per[lab][1] += 1
        fr += (q.argmax(1) == classes.index(lab)).sum()
        nf += len(q)
    return ok, fr / nf, per


for k, v in results.items():
    for tau in (0.0, 0.5, 1.0):
        ok, fa, per = score(v, tau)
        print(
            f"{k:16s} tau={tau:.1f} clips {ok}/{len(v)} frames {fa:.3f} ",
            " ".join(f"{c[:3]}{a}/{n}" for c, (a, n) in per.items()),
        )
if "--verbose" in sys.argv:
    for k in ("box m0", "al s2.5"):
        for f, lab, _subject, p in results[k]:
            m = p.mean(0)
            shares = " ".join(f"{c[:3]}{x:.2f}" for c, x in zip(classes, m, strict=True))
            print(k, f, lab, "->", classes[int(m.argmax())], shares)
# contact sheet
rowsimg = []
for d in sheets.values():
    rowsimg.append(
        np.concatenate(
            [
                np.concatenate(list(d["box m0"]), 1),
                np.full((48, 8), 255, np.uint8),
                np.concatenate(list(d["al s2.5"]), 1),
            ],
            1,
        )
    )
w = max(r.shape[1] for r in rowsimg)
rowsimg = [np.pad(r, ((0, 0), (0, w - r.shape[1])), constant_values=255) for r in rowsimg]
cv2.imwrite(str(cache.parent / "real_clips_crops.png"), np.concatenate(rowsimg, 0))
