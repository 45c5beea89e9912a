"""PublicTest accuracy of fer-video models alone and of every ensemble of them (mean flip-TTA probabilities).

    .venv/bin/python benchmarks/ensemble.py --data /work/data A.pt B.pt [C.pt ...] [--soup]

``--soup`` also scores every "model soup": one model whose weights (BatchNorm statistics included) are the mean
of the models' weights, which only makes sense for models of one lineage (warm restarts of each other).

Used to choose distillation teachers (``fer-video train --teacher``): an ensemble that beats its best member
is worth distilling into one model. PublicTest only: PrivateTest is kept back.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch

from fer_video.errors import FerVideoError
from fer_video.model import load_model
from fer_video.predict import Batches, predict_loaded
from fer_video.training.data import load_dataset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", help="model .pt files (each with its .json beside it)")
    p.add_argument("--data", required=True, help="FER2013 folder (with test/) or fer2013.csv")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--soup", action="store_true", help="also score the weight average of every combination")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    probs: dict[str, np.ndarray] = {}
    states: dict[str, dict[str, torch.Tensor]] = {}
    labels = classes = None

    def percent(p: np.ndarray) -> str:
        """PublicTest accuracy of the predicted probabilities ``p``, in percent."""
        return f"{np.mean(p.argmax(1) == labels) * 100:6.2f} %"

    for w in args.weights:
        model, card = load_model(w, "cpu")
        if classes is None:
            classes = card.classes
            batches = Batches.from_dataset(load_dataset(args.data, "test", tuple(classes)))
            labels = batches.labels.numpy()
        elif card.classes != classes:
            raise SystemExit(f"{w}: classes {card.classes} differ from {classes}")
        _, tta = predict_loaded(model, card, batches, torch.device("cpu"))
        probs[w] = tta
        states[w] = model.state_dict()
        print(f"{percent(tta)}  {Path(w)}", flush=True)
    for n in range(2, len(probs) + 1):
        for combo in itertools.combinations(probs, n):
            mean = sum(probs[c] for c in combo) / n
            names = " + ".join(str(Path(c)) for c in combo)
            print(f"{percent(mean)}  {names}")
            if args.soup:
                soup, card = load_model(combo[0], "cpu")
                soup.load_state_dict(
                    {
                        k: sum(states[c][k] for c in combo) / n if v.is_floating_point() else v
                        for k, v in states[combo[0]].items()
                    }
                )
                plain, tta = predict_loaded(soup, card, batches, torch.device("cpu"))
                print(f"{percent(tta)}  soup of {names} (single crop {percent(plain).strip()})")


if __name__ == "__main__":
    try:
        main()
    except FerVideoError as exc:  # a missing or mismatched weights file, unreadable data: one line, no traceback
        raise SystemExit(f"error: {exc}") from None
