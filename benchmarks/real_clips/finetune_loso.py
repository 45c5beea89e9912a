"""Leave-one-subject-out fine-tuning on the labelled clips: the real-clip figure of a model trained with --clips.

For each subject, `fer-video train --clips ... --clip-exclude SUBJECT` fine-tunes the starting model on FER2013
(a random subset, taught by the teachers) plus the clip faces of the *other* subjects, then `fer-video evaluate
--videos` scores that subject's clips with the fold's model. No clip is ever scored by a model that saw frames of
its person. Folds already scored are skipped, so the script resumes.

    python benchmarks/real_clips/finetune_loso.py --out /work/runs/loso [--subjects S01,A05] [train options]
    # the last residual block and the head only (the shipped model's recipe):
    python benchmarks/real_clips/finetune_loso.py --out /work/runs/loso-block --limit 6000 --teacher-mode fixed \
        --extra "--train-layers layer4,fc"

Prints the pooled clip accuracy (out of all clips), per-class recall and frame accuracy, and writes
OUT/loso_clips.csv (one row per clip) and OUT/loso.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ROOT.parent / "shared" / "videos" / "labelled-dev"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", default=str(CLIPS))
    p.add_argument("--labels", default=None, help="default CLIPS/labels.csv")
    p.add_argument("--out", required=True)
    p.add_argument("--subjects", default="", help="only these folds (default: every subject)")
    p.add_argument("--init", default=str(ROOT / "weights" / "fer2013_resnet18.pt"))
    p.add_argument("--teacher", default=str(ROOT / "weights" / "fer2013_resnet18.pt"))
    p.add_argument("--data", default="/work/data")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--limit", type=int, default=4000)
    p.add_argument("--clip-repeat", type=int, default=1)
    p.add_argument("--distill-weight", type=float, default=0.5)
    p.add_argument("--teacher-mode", choices=["fixed", "consistent"], default="consistent")
    p.add_argument("--erasing", type=float, default=0.25)
    p.add_argument("--clip-cache", default=None, help="default OUT/clip-faces")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--extra", default="", help="more `fer-video train` options, one string")
    args = p.parse_args()
    labels = Path(args.labels or Path(args.clips) / "labels.csv")
    table = pd.read_csv(labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    subjects = [s for s in args.subjects.split(",") if s] or list(dict.fromkeys(table["subject"].astype(str)))
    for subject in subjects:
        fold = out / subject
        if (fold / "eval" / "video_clips.csv").is_file():
            continue
        train = [
            sys.executable, "-m", "fer_video", "train", "--data", args.data, "--init", args.init,
            "--teacher", args.teacher, "--teacher-mode", args.teacher_mode,
            "--distill-weight", str(args.distill_weight),
            "--clips", args.clips, "--clip-labels", str(labels), "--clip-exclude", subject,
            "--clip-cache", args.clip_cache or str(out / "clip-faces"), "--clip-repeat", str(args.clip_repeat),
            "--limit", str(args.limit), "--epochs", str(args.epochs), "--lr", str(args.lr),
            "--erasing", str(args.erasing),
            "--threads", str(args.threads), "--seed", "24", "--out", str(fold), "--name", "fer2013_resnet18",
            "--resume",
            *args.extra.split(),
        ]  # fmt: skip
        subprocess.run(train, check=True)
        held = fold / "labels.csv"
        table[table["subject"].astype(str) == subject].to_csv(held, index=False)
        evaluate = [
            sys.executable, "-m", "fer_video", "evaluate", "--videos", args.clips, "--labels", str(held),
            "--weights", str(fold / "model.pt"), "--out", str(fold / "eval"), "--json",
        ]  # fmt: skip
        subprocess.run(evaluate, check=True, stdout=subprocess.DEVNULL)
    rows = []
    for subject in subjects:
        clips = pd.read_csv(out / subject / "eval" / "video_clips.csv")
        card = json.loads((out / subject / "model.json").read_text())
        rows.append(clips.assign(subject=subject, publictest_tta=card["metrics"]["accuracy_tta"]))
    clips = pd.concat(rows, ignore_index=True)
    clips.to_csv(out / "loso_clips.csv", index=False)
    recall = clips.assign(right=clips["label"] == clips["predicted"]).groupby("label")["right"].agg(["sum", "count"])
    report = {
        "clips": len(clips),
        "clips_right": int((clips["label"] == clips["predicted"]).sum()),
        "clips_right_raw": int((clips["label"] == clips["predicted_raw"]).sum()),
        "frame_accuracy": float(clips["frames_right"].sum() / clips["face_frames"].sum()),
        "per_class": {c: f"{int(r['sum'])}/{int(r['count'])}" for c, r in recall.iterrows()},
        "publictest_tta_per_fold": {
            s: round(float(a), 4) for s, a in zip(subjects, [r["publictest_tta"].iloc[0] for r in rows], strict=True)
        },
    }
    (out / "loso.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
