"""Shared fixtures: small synthetic videos built from package-shipped face photos, and a random-init model.

Everything is generated on the fly (no committed media) and cached per test session.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fer_video.demo import make_demo_video
from fer_video.model import ModelCard, build_model, export_model
from fer_video.pipeline import Models, load_models
from fer_video.training.data import FER2013_CLASSES
from fer_video.types import Settings

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_WEIGHTS = ROOT / "weights" / "fer2013_resnet18.pt"

# small and short: 2 faces for 75 % of the clip, then no face; 10 fps keeps MTCNN's work small
DEMO = dict(width=320, height=180, fps=10.0, seconds=2.0, faces=2, noface_from=0.75, audio=True)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A random-init ResNet18 exported exactly like a trained one (state dict + card with sha256)."""
    torch.manual_seed(0)
    model = build_model(len(FER2013_CLASSES))
    card = ModelCard(name="random-init-test", classes=list(FER2013_CLASSES))
    return export_model(model, card, tmp_path_factory.mktemp("weights") / "random_resnet18")


@pytest.fixture(scope="session")
def fast_settings(tiny_weights) -> Settings:
    # the test clips run at 10 fps, so detection every 5th frame is every 0.5 s (the default 8 at 25 fps is
    # 0.32 s); the faces leave the demo clip at frame 15, a detection frame, so no box is carried past them
    return Settings(weights=str(tiny_weights), device="cpu", min_face=20, detect_every=5)


@pytest.fixture(scope="session")
def models(fast_settings) -> Models:
    """Real MTCNN + the random-init ResNet18, loaded once for the whole session."""
    return load_models(fast_settings)


@pytest.fixture(scope="session")
def demo_video(tmp_path_factory) -> Path:
    """320x180, 10 fps, 2 s: two faces for 1.5 s, then 0.5 s without a face; a sine-tone AAC track."""
    return make_demo_video(tmp_path_factory.mktemp("videos") / "two faces.mp4", **DEMO)


@pytest.fixture(scope="session")
def make_video(tmp_path_factory):
    """Factory: ``make_video(name, **make_demo_video kwargs)`` -> path of a fresh synthetic clip."""
    folder = tmp_path_factory.mktemp("made")

    def make(name: str, **kwargs) -> Path:
        params = {**DEMO, **kwargs}
        return make_demo_video(folder / name, **params)

    return make


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """A folder for one test module's generated clips."""
    return tmp_path_factory.mktemp("bad_inputs")


@pytest.fixture(scope="module")
def good_clip(clips) -> Path:
    """160x120, 10 fps, 1 s, one face all along, no audio."""
    from media import small

    return small(clips / "good.mp4")
