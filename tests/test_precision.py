"""The classifier's precision setting: bf16 autocast where asked (or native), close to fp32, and on record."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_video.classify import EmotionClassifier
from fer_video.options import OPTIONS
from fer_video.types import Settings


def test_bf16_probabilities_stay_close_to_fp32(tiny_weights):
    crops = np.random.default_rng(0).integers(0, 255, (24, 48, 48, 1), dtype=np.uint8)
    cpu = torch.device("cpu")
    fp32 = EmotionClassifier.from_weights(str(tiny_weights), cpu, 64, False, "fp32")
    bf16 = EmotionClassifier.from_weights(str(tiny_weights), cpu, 64, False, "bf16")
    assert fp32.autocast is None and bf16.autocast is torch.bfloat16
    assert fp32.describe()["precision"] == "fp32" and bf16.describe()["precision"] == "bf16"
    for tta in (False, True):
        a, b = fp32.predict(crops, tta), bf16.predict(crops, tta)
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a.sum(1), 1, atol=1e-5)
        assert np.abs(a - b).max() < 0.05


def test_precision_is_an_annotate_option_checked_like_the_others():
    assert OPTIONS["precision"].flag == "--precision" and Settings().precision == "auto"
    with pytest.raises(Exception, match="precision"):
        Settings(precision="fp16").check()


def test_folding_batchnorm_keeps_the_function():
    """The classifier runs the model with BatchNorm folded into the convolutions: the same outputs (fp32), no
    BatchNorm left, the original model untouched."""
    from torch import nn

    from fer_video.classify import fold_batchnorm
    from fer_video.model import build_model

    torch.manual_seed(0)
    model = build_model(7).eval()
    for m in model.modules():  # statistics far from the identity, so a missed or wrong fold shows
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 20  # stem, 16 in blocks, 3 shortcuts
    x = torch.randn(5, 1, 48, 48)
    with torch.inference_mode():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)
