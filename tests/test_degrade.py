"""Video-like degradations for training (fer_video.training.degrade): shape, range, share, determinism."""

import torch

from fer_video.training.degrade import degrade


def _faces(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 48).view(1, 1, 1, 48).expand(n, 1, 48, 48)
    return (ramp * 0.6 + torch.rand(n, 1, 48, 48, generator=g) * 0.4).contiguous()


def test_degrade_keeps_shape_and_range_and_is_deterministic():
    x = _faces()
    a = degrade(x, torch.Generator().manual_seed(3), 1.0)
    b = degrade(x, torch.Generator().manual_seed(3), 1.0)
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)


def test_degrade_changes_about_the_share_asked_for():
    x = _faces(400)
    y = degrade(x, torch.Generator().manual_seed(1), 0.5)
    changed = ((y - x).abs().flatten(1).max(1).values > 1e-6).float().mean().item()
    # half the images are chosen and each chosen one gets each of six steps with probability 1/2
    assert 0.5 * (1 - 0.5**6) - 0.08 < changed < 0.5 + 0.05
    assert torch.equal(degrade(x, torch.Generator().manual_seed(1), 0.0), x)


def test_teacher_sees_the_clean_view_of_the_students_degraded_batch():
    from fer_video.training.augment import Augmentation, student_teacher_inputs, training_inputs

    images = (_faces(32) * 255).to(torch.uint8)
    cpu = torch.device("cpu")
    batch = student_teacher_inputs(images, torch.Generator().manual_seed(5), Augmentation("full", 0.25, 1.0), cpu)
    plain = training_inputs(images, torch.Generator().manual_seed(5), Augmentation("full", 0.25), cpu)
    assert list(batch.views) == [48] and torch.equal(batch.views[48], plain)  # the plain training batch
    assert not torch.equal(batch.student, plain)
    same = student_teacher_inputs(images, torch.Generator().manual_seed(5), Augmentation("full", 0.25, 0.0), cpu)
    assert torch.equal(same.student, plain) and same.student is same.views[48]
