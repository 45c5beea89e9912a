"""Classification metrics and their pictures: shared by training and evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def confusion(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(num_classes, -1)


def summarize(labels: np.ndarray, preds: np.ndarray, classes: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """accuracy, macro-F1 and per-class precision/recall/F1/support.

    macro-F1 is the mean F1 over the classes present in ``labels`` or ``preds`` (scikit-learn's convention), not
    over all of ``classes``: a class absent from both (e.g. a 4-class folder evaluated with the 7-class model)
    would add an F1 of 0 that says nothing about the model. With every class present it is the plain mean.
    """
    cm = confusion(labels, preds, len(classes)).astype(np.float64)
    tp = np.diag(cm)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = (cm.sum(0) + cm.sum(1)) > 0
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(classes, precision, recall, f1, cm.sum(1), strict=True)
        },
    }


def save_confusion(cm: np.ndarray, classes: list[str] | tuple[str, ...], png: Path, title: str = "") -> None:
    """Confusion matrix as CSV (counts) and PNG (row-normalised, counts in the cells)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pd.DataFrame(cm, index=list(classes), columns=list(classes)).rename_axis("true\\pred").to_csv(
        png.with_suffix(".csv")
    )
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({int(cm[i, j])})",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
