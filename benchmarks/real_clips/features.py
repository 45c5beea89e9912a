"""Penultimate features of the shipped model: FER2013 train/PublicTest and the real clips' largest-face crops."""

import csv
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fer_video.classify import crop_box
from fer_video.model import load_model
from fer_video.training.data import load_dataset

torch.set_num_threads(1)
weights = sys.argv[1]
out = Path(sys.argv[2])
model, card = load_model(weights)
model.eval()
fc = model.fc
model.fc = nn.Identity()


@torch.inference_mode()
def feats(u8):  # (N,48,48) uint8
    res = []
    for s in range(0, len(u8), 256):
        x = torch.from_numpy(u8[s : s + 256]).unsqueeze(1).float() / 255
        x = ((x - card.mean[0]) / card.std[0]).contiguous(memory_format=torch.channels_last)
        f = model(x)
        ff = model(torch.flip(x, dims=[3]))
        res.append(torch.stack([f, ff], 1))
    return torch.cat(res).numpy()


root = Path(os.environ.get("FER_VIDEO_CLIPS", Path(__file__).resolve().parents[3] / "shared/videos/labelled-dev"))
cache = Path(os.environ.get("FER_VIDEO_CLIPS_CACHE", "benchmarks/out/real_clips_cache"))
clips = {}
for r in csv.DictReader(open(root / "labels.csv")):
    z = np.load(cache / (r["file"] + ".npz"), allow_pickle=True)
    cr = []
    for im, b in zip(z["frames"], z["boxes"], strict=True):
        if len(b) == 0:
            continue
        i = int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))
        h, w = im.shape[:2]
        l, t, rr, bb = crop_box(b[i], card.crop_margin, w, h)
        g = cv2.cvtColor(im[t:bb, l:rr], cv2.COLOR_RGB2GRAY)
        cr.append(cv2.resize(g, (48, 48), interpolation=cv2.INTER_AREA))
    clips[r["file"]] = (r["label"], r["subject"], feats(np.stack(cr)))
    print(r["file"], flush=True)
tr = load_dataset(os.environ.get("FER2013", "/work/data"), "train")
te = load_dataset(os.environ.get("FER2013", "/work/data"), "test")
np.save(
    out,
    {
        "clips": clips,
        "train": (feats(tr.images), tr.labels),
        "test": (feats(te.images), te.labels),
        "fc_w": fc.weight.detach().float().numpy(),
        "fc_b": fc.bias.detach().float().numpy(),
        "classes": list(card.classes),
    },
    allow_pickle=True,
)
print("done")
