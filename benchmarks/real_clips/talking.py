"""Talking faces: does speech move the model's reading of a face? Frame by frame on the labelled clips.

    python benchmarks/real_clips/talking.py [--videos DIR] [--weights PT] [--save NAME] [--plot PNG]

Each clip is annotated at the default settings (as ``fer-video evaluate --videos`` does) and the largest face's
rows are kept. A frame counts as *speaking* when the clip's audio around it (the frame's duration) is louder
than a quarter of the clip's loudest 5 % (RMS, mono); clips whose audio has no such contrast (less than 4x
between the loud and the quiet frames) count as all silent. Per clip: the share of speaking frames, frame
accuracy while speaking and while silent, the class read most often in each, and the clip's prediction (mean
smoothed probability) from all frames, from the silent frames only and from the frames whose raw probability of
neutral is below its median (the clip's more expressive half). ``--plot`` draws, per clip, the raw probability
of the clip's label and of the class read most often, with the speaking frames shaded (no image of the faces).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fer_video.evaluate_videos import largest_face, read_labels  # noqa: E402
from fer_video.pipeline import annotate_video, load_models  # noqa: E402
from fer_video.types import Settings  # noqa: E402

SPEAKING_SHARE = 0.25  # of the loudest 5 % of the clip's frames
MIN_CONTRAST = 4.0  # loud frames / quiet frames, below which a clip has no speech to tell apart


def frame_loudness(path: Path, times: np.ndarray, fps: float) -> np.ndarray:
    """RMS of the mono audio over each frame's duration (NaN where the audio does not reach; all NaN: no audio)."""
    out = np.full(len(times), np.nan)
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return out
        stream = c.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks, start = [], None
        for frame in c.decode(stream):
            for f in resampler.resample(frame):
                if start is None:
                    start = float(f.pts * f.time_base) if f.pts is not None else 0.0
                chunks.append(f.to_ndarray().reshape(-1))
    if not chunks:
        return out
    samples = np.concatenate(chunks)
    for i, t in enumerate(times):
        a, b = int((t - start) * 16000), int((t - start + 1 / fps) * 16000)
        if 0 <= a < b <= len(samples):
            out[i] = float(np.sqrt(np.mean(samples[a:b] ** 2)))
    return out


def speaking_frames(loudness: np.ndarray) -> tuple[np.ndarray, float]:
    """Which frames are louder than SPEAKING_SHARE of the loudest 5 %, and the clip's loud/quiet contrast."""
    ok = np.isfinite(loudness)
    if ok.sum() < 5:
        return np.zeros(len(loudness), bool), 0.0
    loud, quiet = np.percentile(loudness[ok], 95), np.percentile(loudness[ok], 10)
    contrast = float(loud / max(quiet, 1e-6))
    if contrast < MIN_CONTRAST:
        return np.zeros(len(loudness), bool), contrast
    return ok & (loudness > SPEAKING_SHARE * loud), contrast


def clip_rows(rows: pd.DataFrame, label: str, classes: list[str], speaking: np.ndarray) -> dict:
    raw = rows[[f"raw_{c}" for c in classes]].to_numpy(np.float64)
    smoothed = rows[classes].to_numpy(np.float64)
    read = np.array(classes)[raw.argmax(1)]
    expressive = raw[:, classes.index("neutral")] < np.median(raw[:, classes.index("neutral")])

    def pick(mask: np.ndarray) -> dict:
        if not mask.any():
            return {"frames": 0}
        names, counts = np.unique(read[mask], return_counts=True)
        return {
            "frames": int(mask.sum()),
            "raw_accuracy": round(float((read[mask] == label).mean()), 3),
            "read_most": str(names[counts.argmax()]),
            "mean_raw": {c: round(float(p), 3) for c, p in zip(classes, raw[mask].mean(0), strict=True)},
        }

    def predicted(mask: np.ndarray) -> str | None:
        return classes[int(smoothed[mask].mean(0).argmax())] if mask.any() else None

    everything = np.ones(len(rows), bool)
    return {
        "speaking_share": round(float(speaking.mean()), 3),
        "speaking": pick(speaking),
        "silent": pick(~speaking),
        "predicted_all": predicted(everything),
        "predicted_silent": predicted(~speaking),
        "predicted_expressive_half": predicted(expressive),
    }


def plot(per_clip: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(per_clip)
    cols = 4
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.2 * rows), squeeze=False, sharey=True)
    for ax, clip in zip(axes.flat, per_clip, strict=False):
        t = np.array(clip["trace"]["time_s"])
        speaking = np.array(clip["trace"]["speaking"], bool)
        ax.fill_between(t, 0, 1, where=speaking, color="0.85", step="mid", label="speaking")
        ax.plot(t, clip["trace"]["label_raw"], color="tab:green", lw=1.2, label=f"label ({clip['label']})")
        other = clip["trace"]["other"]
        if other["name"] != clip["label"]:
            ax.plot(t, other["raw"], color="tab:red", lw=1.0, label=f"read most ({other['name']})")
        ax.set_title(clip["file"].replace(".mp4", ""), fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.supxlabel("seconds", fontsize=8)
    fig.supylabel("raw probability (largest face)", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", default=str(ROOT.parent / "shared/videos/labelled-dev"))
    ap.add_argument("--labels", default=None, help="default: VIDEOS/labels.csv")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--save", default=None, help="also write benchmarks/results/NAME.json")
    ap.add_argument("--plot", default=None, help="PNG of the per-frame probabilities and the speaking frames")
    args = ap.parse_args(argv)
    videos = Path(args.videos)
    table = read_labels(args.labels or videos / "labels.csv")
    settings = Settings(weights=args.weights, write_video=False, write_plot=False)
    models = load_models(settings)
    classes = list(models.classifier.classes)
    t0 = time.perf_counter()
    per_clip = []
    with tempfile.TemporaryDirectory(prefix="fer-video-talking-") as work:
        for row in table.itertuples(index=False):
            result = annotate_video(videos / row.file, work, settings, models=models)
            timeline = pd.read_csv(result.outputs["csv"], dtype={"face_id": "Int64"})
            rows = largest_face(timeline)
            if rows.empty:
                continue
            loudness = frame_loudness(videos / row.file, rows["time_s"].to_numpy(), result.info.fps)
            speaking, contrast = speaking_frames(loudness)
            stats = clip_rows(rows, row.label, classes, speaking)
            read = rows[[f"raw_{c}" for c in classes]].to_numpy().argmax(1)
            other = classes[int(np.bincount(read, minlength=len(classes)).argmax())]
            per_clip.append(
                {
                    "file": row.file,
                    "label": row.label,
                    "audio_contrast": round(contrast, 1),
                    **stats,
                    "trace": {
                        "time_s": rows["time_s"].round(3).tolist(),
                        "speaking": speaking.astype(int).tolist(),
                        "label_raw": rows[f"raw_{row.label}"].round(3).tolist(),
                        "other": {"name": other, "raw": rows[f"raw_{other}"].round(3).tolist()},
                    },
                }
            )
            s = per_clip[-1]
            print(
                f"{row.file:32s} {row.label:8s} speaking {s['speaking_share']:4.0%} (contrast {contrast:5.1f}) | "
                f"right speaking {s['speaking'].get('raw_accuracy', float('nan')):.2f} "
                f"({s['speaking'].get('read_most', '-')}), silent {s['silent'].get('raw_accuracy', float('nan')):.2f} "
                f"({s['silent'].get('read_most', '-')}) | clip: all {s['predicted_all']}, silent "
                f"{s['predicted_silent']}, expressive half {s['predicted_expressive_half']}"
            )

    def right(key: str) -> int:
        return sum(c[key] == c["label"] for c in per_clip)

    speaking_frames_n = sum(c["speaking"]["frames"] for c in per_clip)
    silent_frames_n = sum(c["silent"]["frames"] for c in per_clip)
    summary = {
        "command": "python benchmarks/real_clips/talking.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "weights": str(models.weights),
        "clips": len(per_clip),
        "clips_with_speech": sum(c["speaking_share"] > 0 for c in per_clip),
        "speaking_frames": speaking_frames_n,
        "silent_frames": silent_frames_n,
        "raw_frame_accuracy_speaking": round(
            sum(c["speaking"].get("raw_accuracy", 0) * c["speaking"]["frames"] for c in per_clip)
            / max(speaking_frames_n, 1),
            3,
        ),
        "raw_frame_accuracy_silent": round(
            sum(c["silent"].get("raw_accuracy", 0) * c["silent"]["frames"] for c in per_clip) / max(silent_frames_n, 1),
            3,
        ),
        "clips_right_all_frames": right("predicted_all"),
        "clips_right_silent_frames": right("predicted_silent"),
        "clips_right_expressive_half": right("predicted_expressive_half"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=1))
    if args.plot:
        plot(per_clip, Path(args.plot))
    record = {**summary, "per_clip": per_clip}
    out = ROOT / "benchmarks/out/talking.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record))
    if args.save:
        (ROOT / "benchmarks/results" / f"{args.save}.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
