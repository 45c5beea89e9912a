"""The model we ship in weights/: its card, its behaviour on a real face, and its PublicTest figure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest
import torch
from conftest import ROOT, SHIPPED_WEIGHTS

from fer_video.classify import EmotionClassifier
from fer_video.detect import FaceDetector
from fer_video.model import file_sha256, load_model
from fer_video.training.data import FER2013_CLASSES

FER_TAR = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013-images.tar.gz"


@pytest.fixture(scope="module")
def shipped():
    model, card = load_model(SHIPPED_WEIGHTS)
    return model, card


def test_card_describes_the_weights(shipped):
    _, card = shipped
    assert card.sha256 == file_sha256(SHIPPED_WEIGHTS)
    assert card.classes == list(FER2013_CLASSES)
    assert card.input_size == 48 and card.channels == 1
    assert card.metrics["split"] == "PublicTest" and card.metrics["accuracy_tta"] > 0.5
    assert card.training["command"].startswith("fer-video train")
    assert SHIPPED_WEIGHTS.stat().st_size < 50e6


def test_the_smiling_astronaut_is_happy(shipped):
    from skimage import data

    model, card = shipped
    image = data.astronaut()
    faces = FaceDetector(torch.device("cpu")).detect([image])[0]
    assert len(faces) == 1
    clf = EmotionClassifier(model, card, torch.device("cpu"))
    probs = clf.predict(clf.crops(image, faces.xyxy))[0]
    assert card.classes[int(np.argmax(probs))] == "happy", dict(zip(card.classes, probs.round(3), strict=True))


@pytest.mark.skipif(not FER_TAR.is_file(), reason=f"{FER_TAR} not present (CI has ../shared beside the clone)")
def test_publictest_accuracy_matches_the_card(shipped, tmp_path):
    from fer_video.evaluate import evaluate_weights

    with tarfile.open(FER_TAR) as tar:
        tar.extractall(
            tmp_path, members=[m for m in tar.getmembers() if m.name.lstrip("./").startswith("test")], filter="data"
        )
    _, card = shipped
    result = evaluate_weights(SHIPPED_WEIGHTS, tmp_path, "test", "cpu")
    assert result["images"] == 3589
    # fp16 storage and CPU kernels may move a handful of images
    assert abs(result["accuracy_tta"] - card.metrics["accuracy_tta"]) < 0.003
    assert abs(result["accuracy"] - card.metrics["accuracy"]) < 0.003


@pytest.mark.slow
def test_a_wheel_install_carries_the_model_and_the_app(tmp_path):
    """``pip install fer-video`` (not editable) must find the shipped model and the web app without the source tree."""
    source, wheels, target = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    for name in ("fer_video", "weights", "ui"):  # a copy, so the build leaves nothing in the checkout
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], check=True)
    (wheel,) = wheels.glob("fer_video-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", target, wheel], check=True)
    probe = (
        "import sys, fer_video.pipeline as p, fer_video.ui.app as a;"
        "print(p.__file__, p.default_weights(), a.__file__, a.ROOT in map(__import__('pathlib').Path, sys.path))"
    )
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    module, weights, app, app_touched_sys_path = out.stdout.split()
    assert module.startswith(str(target)) and app == str(target / "fer_video" / "ui" / "app.py")
    assert app_touched_sys_path == "False"  # fer_video/ on sys.path would shadow the stdlib (fer_video/types.py)
    assert weights == str(target / "fer_video" / "weights" / SHIPPED_WEIGHTS.name)
    assert file_sha256(weights) == file_sha256(SHIPPED_WEIGHTS)
