"""Evaluate a weights file on a FER2013-layout folder or CSV: accuracy, macro-F1, per-class precision/recall,
confusion matrix (PNG + CSV), with and without horizontal-flip test-time augmentation, images/s."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from fer_video.device import resolve_device
from fer_video.errors import OutputError, SettingsError
from fer_video.model import load_model
from fer_video.predict import Batches, card_crop, predict_loaded, predict_ten_crop
from fer_video.training.data import load_dataset
from fer_video.training.metrics import confusion, save_confusion, summarize

log = logging.getLogger(__name__)


VIDEO_SKIP = frozenset({"weights", "device", "write_video", "write_plot", "crf", "preset"})


def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    from fer_video.options import add_arguments
    from fer_video.types import Settings

    p = parser or argparse.ArgumentParser(description="Evaluate a fer-video model")
    p.description = (
        "Evaluate a model on face images (--data: FER2013 layout) or on labelled videos (--videos and --labels). "
        "A video's prediction is the argmax of the mean smoothed probability of its largest face over the "
        "frames where that face is seen (also reported from the raw probabilities); frame accuracy scores every "
        "frame of that face against the video's label."
    )
    p.add_argument("--weights", default=None, help="model .pt (its .json beside it); default: the shipped model")
    p.add_argument("--data", default=None, help="folder with class sub-folders (or test/), or fer2013.csv")
    p.add_argument("--videos", default=None, metavar="DIR", help="folder of labelled videos (with --labels)")
    p.add_argument("--labels", default=None, metavar="CSV", help="CSV with file and label columns (with --videos)")
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "test", "private"],
        help="test = PublicTest (default); private = PrivateTest rows of a CSV",
    )
    p.add_argument("--out", default=None, help="folder for confusion PNG/CSV and metrics.json")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    add_arguments(p.add_argument_group("annotate settings for --videos"), Settings(), skip=VIDEO_SKIP)
    return p


def evaluate_weights(
    weights: str | Path, data: str | Path, split: str = "test", device: str = "auto", out: str | Path | None = None
) -> dict[str, Any]:
    from fer_video.outputs import os_error_reason, prepare_output_folder

    if out:
        out = Path(out)
        prepare_output_folder(out)  # one clear error before the model and the data are loaded
    dev = resolve_device(device)
    model, card = load_model(weights, dev)
    ds = load_dataset(data, split, tuple(card.classes))
    batches = Batches.from_dataset(ds)
    t = time.perf_counter()
    probs, probs_tta = predict_loaded(model, card, batches, dev)
    seconds = time.perf_counter() - t
    labels = batches.labels.numpy()
    plain, tta = summarize(labels, probs.argmax(1), card.classes), summarize(labels, probs_tta.argmax(1), card.classes)
    cm = confusion(labels, probs_tta.argmax(1), len(card.classes))
    result = {
        "weights": str(weights),
        "model": card.name,
        "data": str(ds.source),
        "split": split,
        "images": len(labels),
        "accuracy": plain["accuracy"],
        "accuracy_tta": tta["accuracy"],
        "macro_f1": plain["macro_f1"],
        "macro_f1_tta": tta["macro_f1"],
        "per_class": plain["per_class"],
        "per_class_tta": tta["per_class"],
        "confusion_tta": cm.tolist(),
        "classes": card.classes,
        # predict() runs each image twice (plain + mirrored): images/s counts both passes as one image
        "images_per_s_with_tta": round(len(labels) / seconds, 1),
        "device": str(dev),
    }
    crop = card_crop(card)
    if crop:  # a model of centre squares: also the mean of its ten crops (annotate --ten-crop)
        import torch

        ten = predict_ten_crop(
            model.to(memory_format=torch.channels_last), batches, dev, crop, mean=card.mean[0], std=card.std[0]
        )
        result["accuracy_tencrop"] = summarize(labels, ten.argmax(1), card.classes)["accuracy"]
    if out:
        try:
            save_confusion(
                cm, card.classes, out / "confusion.png", f"{card.name} on {split}: acc+TTA {tta['accuracy']:.4f}"
            )
            (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the evaluation outputs ({os_error_reason(exc)})") from None
    return result


def format_report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['model']} on {r['data']} ({r['split']}, {r['images']} images, {r['device']})",
        f"accuracy {r['accuracy']:.4f}  with flip TTA {r['accuracy_tta']:.4f}",
        f"macro-F1 {r['macro_f1']:.4f}  with flip TTA {r['macro_f1_tta']:.4f}",
        f"{'class':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}   (with flip TTA)",
    ]
    if "accuracy_tencrop" in r:
        lines.insert(2, f"accuracy with ten-crop TTA {r['accuracy_tencrop']:.4f}")
    for c, m in r["per_class_tta"].items():
        lines.append(f"{c:<10}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['support']:>9d}")
    lines.append(f"{r['images_per_s_with_tta']} images/s (each with its mirrored copy)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from fer_video.stages import default_weights

    if (args.data is None) == (args.videos is None) or (args.videos is None) != (args.labels is None):
        raise SettingsError("give either --data, or --videos with --labels")
    if args.videos is not None:
        return _run_videos(args)
    result = evaluate_weights(args.weights or default_weights(), args.data, args.split, args.device, args.out)
    print(json.dumps(result) if args.json else format_report(result))
    return 0


def _run_videos(args: argparse.Namespace) -> int:
    """Exit 0 when every labelled row was scored, 1 when any row failed (each failure printed on one line)."""
    import sys

    from fer_video import evaluate_videos as ev
    from fer_video.options import flag_of, settings_kwargs
    from fer_video.types import Settings

    settings = Settings(**settings_kwargs(args))  # --weights and --device too: evaluate defines them the same way
    wrong = settings.problems()
    if wrong:
        raise SettingsError("; ".join(f"{flag_of(n)} {why}" for n, why in wrong))
    report = ev.evaluate_videos(
        args.videos,
        args.labels,
        settings,
        args.out,
        on_error=lambda m: print(f"fer-video: error: {m}", file=sys.stderr),
    )
    print(json.dumps(report) if args.json else ev.format_report(report))
    return 1 if report["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO)
    return run(get_args_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
