"""Leave-one-subject-out refits of the last residual block and the head on the labelled clips (fast, cached).

The model's (`--weights`, default the shipped one) stem and layers 1-3 stay fixed, so their outputs (256 x 6 x 6
per face, plain and mirrored) are computed once for a FER2013 training subset, PublicTest and every clip face (the
crops annotate gives the classifier: `fer_video.training.clips`). For each subject, a copy of layer4 + fc is fine-
tuned on the FER2013 subset (labels, and the model's own soft targets at T=2) plus the clip faces of the *other*
subjects, then scores that subject's clips: argmax of the mean probability over the largest face's frames (raw, not
smoothed). It also reports each fold's PublicTest accuracy (single and flip).

    python benchmarks/real_clips/block_loso.py [--fer 6000] [--epochs 3] [--lr 0.01] [--clip-weight 1] [--weights PT]
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fer_video.model import load_model
from fer_video.predict import card_crop, centre_crop
from fer_video.training.clips import load_clip_faces
from fer_video.training.data import load_dataset

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ROOT.parent / "shared" / "videos" / "labelled-dev"


@torch.inference_mode()
def trunk(model, u8: np.ndarray, card) -> torch.Tensor:
    """(N, 2, 256, 6, 6) layer3 outputs of plain and mirrored faces (the centre square for a model of centre
    squares: 5 x 5), in bf16 to save memory."""
    out = []
    for s in range(0, len(u8), 256):
        x = centre_crop(torch.from_numpy(u8[s : s + 256]).unsqueeze(1).float() / 255, card_crop(card))
        x = ((x - card.mean[0]) / card.std[0]).contiguous(memory_format=torch.channels_last)
        views = []
        for v in (x, torch.flip(x, dims=[3])):
            h = model.maxpool(model.relu(model.bn1(model.conv1(v))))
            views.append(model.layer3(model.layer2(model.layer1(h))))
        out.append(torch.stack(views, 1).to(torch.bfloat16))
    return torch.cat(out)


def head(block, fc, h: torch.Tensor) -> torch.Tensor:
    return fc(torch.flatten(F.adaptive_avg_pool2d(block(h.float()), 1), 1))


@torch.inference_mode()
def probs(block, fc, acts: torch.Tensor) -> torch.Tensor:
    """(N, 2, C) probabilities of the plain and mirrored views."""
    block.eval()
    res = [torch.stack([F.softmax(head(block, fc, a[:, v]), 1) for v in (0, 1)], 1) for a in acts.split(512)]
    return torch.cat(res)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", default=str(CLIPS))
    p.add_argument("--cache", default="benchmarks/out/clip-faces")
    p.add_argument("--data", default="/work/data")
    p.add_argument("--fer", type=int, default=6000, help="FER2013 training images in the refit")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--clip-weight", type=float, default=1.0, help="loss weight of a clip face")
    p.add_argument("--distill", type=float, default=0.5, help="share of the self-distillation term on FER2013")
    p.add_argument("--out", default="benchmarks/out/block_loso.json")
    p.add_argument("--weights", default=str(ROOT / "weights" / "fer2013_resnet18.pt"), help="the model to refit")
    args = p.parse_args()
    torch.manual_seed(0)
    model, card = load_model(args.weights)
    model = model.float().eval().to(memory_format=torch.channels_last)
    classes = tuple(card.classes)
    faces = load_clip_faces(args.clips, Path(args.clips) / "labels.csv", classes, args.cache)
    train = load_dataset(args.data, "train", classes)
    test = load_dataset(args.data, "test", classes)
    pick = np.random.default_rng(0).permutation(len(train))[: args.fer]
    fer_y, test_y, clip_y = (torch.from_numpy(a) for a in (train.labels[pick], test.labels, faces.labels))
    # the fixed part's outputs, reused by later runs of the same model
    cached = Path(args.cache) / f"layer3-{args.fer}{'-' + card.sha256[:12] if card_crop(card) else ''}.pt"
    if cached.is_file():
        fer_x, test_x, clip_x = torch.load(cached)
    else:
        fer_x, test_x, clip_x = (trunk(model, u8, card) for u8 in (train.images[pick], test.images, faces.images))
        torch.save((fer_x, test_x, clip_x), cached)
    with torch.inference_mode():  # the model's own soft targets at T=2 on each view
        soft = torch.cat(
            [
                torch.stack([F.softmax(head(model.layer4, model.fc, a[:, v]) / 2, 1) for v in (0, 1)], 1)
                for a in fer_x.split(512)
            ]
        )
    subjects = list(dict.fromkeys(faces.subjects))
    rows, fold_tests = [], {}
    for subject in subjects:
        held = faces.subjects == subject
        block, fc = copy.deepcopy(model.layer4), copy.deepcopy(model.fc)
        params = [*block.parameters(), *fc.parameters()]
        opt = torch.optim.SGD(params, lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        x = torch.cat([fer_x, clip_x[torch.from_numpy(~held)]])
        y = torch.cat([fer_y, clip_y[torch.from_numpy(~held)]])
        is_clip = torch.cat(
            [torch.zeros(len(fer_y), dtype=torch.bool), torch.ones(int((~held).sum()), dtype=torch.bool)]
        )
        steps = args.epochs * ((len(y) + 127) // 128)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=max(steps, 1), pct_start=0.15)
        g = torch.Generator().manual_seed(0)
        for _ in range(args.epochs):
            block.train()
            order = torch.randperm(len(y), generator=g)
            for s in range(0, len(order), 128):
                idx = order[s : s + 128]
                view = torch.randint(0, 2, (len(idx),), generator=g)
                h = x[idx, view]
                logits = head(block, fc, h)
                w = torch.where(is_clip[idx], args.clip_weight, 1.0)
                ce = (F.cross_entropy(logits, y[idx], label_smoothing=0.1, reduction="none") * w).sum() / w.sum()
                fer = ~is_clip[idx]
                loss = ce
                if fer.any() and args.distill:
                    t = soft[idx[fer], view[fer]]  # FER2013 rows come first in x
                    kd = F.kl_div(F.log_softmax(logits[fer] / 2, 1), t, reduction="batchmean") * 4
                    loss = (1 - args.distill) * ce + args.distill * kd
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
        p_test = probs(block, fc, test_x)
        fold_tests[subject] = (
            float((p_test[:, 0].argmax(1) == test_y).float().mean()),
            float((p_test.mean(1).argmax(1) == test_y).float().mean()),
        )
        p_held = probs(block, fc, clip_x[torch.from_numpy(held)])[:, 0]  # single crop, as the default
        for file in dict.fromkeys(faces.files[held]):
            mine = torch.from_numpy(faces.files[held] == file)
            label = classes[int(clip_y[torch.from_numpy(held)][mine][0])]
            frame = p_held[mine].argmax(1)
            rows.append(
                {
                    "file": file,
                    "subject": subject,
                    "label": label,
                    "predicted": classes[int(p_held[mine].mean(0).argmax())],
                    "frames": int(mine.sum()),
                    "frames_right": int((frame == classes.index(label)).sum()),
                }
            )
        print(subject, fold_tests[subject], [(r["file"], r["predicted"]) for r in rows if r["subject"] == subject])
    right = sum(r["label"] == r["predicted"] for r in rows)
    per_class = {c: f"{sum(r['label'] == r['predicted'] for r in rows if r['label'] == c)}/"
                    f"{sum(r['label'] == c for r in rows)}" for c in classes}  # fmt: skip
    report = {
        "settings": vars(args),
        "clips_right": right,
        "clips": len(rows),
        "frame_accuracy": sum(r["frames_right"] for r in rows) / sum(r["frames"] for r in rows),
        "per_class": per_class,
        "publictest_single_mean": float(np.mean([v[0] for v in fold_tests.values()])),
        "publictest_flip_mean": float(np.mean([v[1] for v in fold_tests.values()])),
        "clips_detail": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "clips_detail"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
