"""Training and evaluation commands on a tiny generated FER2013-shaped dataset (folder and CSV layouts)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from fer_video.cli import main
from fer_video.errors import DataError, SettingsError, WeightsError
from fer_video.model import build_model, load_imagenet_init, load_model
from fer_video.training.data import FER2013_CLASSES, load_dataset, parse_classes


@pytest.fixture(scope="module")
def tiny_fer(tmp_path_factory):
    """The same 70 random 48x48 grey images as an image-folder tree (train/ + test/) and as a Kaggle CSV."""
    root = tmp_path_factory.mktemp("fer")
    rng = np.random.default_rng(0)
    rows = []
    for split, usage, per_class in (("train", "Training", 8), ("test", "PublicTest", 2)):
        for label, name in enumerate(FER2013_CLASSES):
            (root / "images" / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = rng.integers(0, 256, (48, 48), dtype=np.uint8)
                cv2.imwrite(str(root / "images" / split / name / f"{usage}_{i:04d}.png"), img)
                rows.append({"emotion": label, "pixels": " ".join(map(str, img.ravel())), "Usage": usage})
    pd.DataFrame(rows).to_csv(root / "fer2013.csv", index=False)
    return root


def test_folder_and_csv_layouts_load_the_same_images(tiny_fer):
    a = load_dataset(tiny_fer / "images", "train")
    b = load_dataset(tiny_fer / "fer2013.csv", "train")
    assert a.images.shape == b.images.shape == (56, 48, 48)
    order_a, order_b = (
        np.lexsort((a.images.reshape(56, -1).sum(1), a.labels)),
        np.lexsort((b.images.reshape(56, -1).sum(1), b.labels)),
    )
    np.testing.assert_array_equal(a.images[order_a], b.images[order_b])
    np.testing.assert_array_equal(a.labels[order_a], b.labels[order_b])
    assert len(load_dataset(tiny_fer / "fer2013.csv", "test")) == 14


def test_class_subset_relabels_in_the_given_order(tiny_fer):
    classes = parse_classes("angry,happy,sad,neutral")
    ds = load_dataset(tiny_fer / "fer2013.csv", "train", classes)
    assert ds.classes == ("angry", "happy", "sad", "neutral") and len(ds) == 32
    assert np.bincount(ds.labels).tolist() == [8, 8, 8, 8]
    with pytest.raises(DataError, match="classes"):
        parse_classes("angry,joy")


def test_bad_dataset_paths_give_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing column"):
        load_dataset(tmp_path / "bad.csv")


def test_train_resume_export_and_evaluate(tiny_fer, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--data",
        str(tiny_fer / "images"),
        "--classes",
        "angry,happy,sad,neutral",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--threads",
        "1",
    ]
    assert main(args) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 2
    for name in ("model.pt", "model.json", "curves.png", "confusion.png", "confusion.csv", "history.json"):
        assert (out / name).is_file(), name
    # --resume on a finished run trains nothing more and keeps the history
    assert main(args + ["--resume"]) == 0
    assert len(json.loads((out / "history.json").read_text())) == 2
    model, card = load_model(out / "model.pt")
    assert card.classes == ["angry", "happy", "sad", "neutral"] and card.input_size == 48
    assert card.training["command"].startswith("fer-video train")
    assert card.metrics["split"] == "PublicTest" and 0 <= card.metrics["accuracy_tta"] <= 1
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--weights",
                str(out / "model.pt"),
                "--data",
                str(tiny_fer / "fer2013.csv"),
                "--json",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["images"] == 8 and set(metrics["per_class"]) == set(card.classes)
    for key in ("accuracy", "accuracy_tta", "macro_f1", "confusion_tta", "images_per_s_with_tta"):
        assert key in metrics
    assert np.array(metrics["confusion_tta"]).sum() == 8
    assert (tmp_path / "eval" / "confusion.png").is_file()


def test_resume_continues_from_the_last_checkpoint(tiny_fer, tmp_path):
    """A 2-epoch schedule run as two sessions of one epoch matches the one-go history length and schedule."""
    out = tmp_path / "run"
    base = [
        "train",
        "--data",
        str(tiny_fer / "fer2013.csv"),
        "--batch-size",
        "16",
        "--out",
        str(out),
        "--threads",
        "1",
        "--limit",
        "32",
        "--epochs",
        "2",
    ]
    assert main(base + ["--epochs-this-run", "1"]) == 0
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    assert ckpt["epoch"] == 0 and len(ckpt["history"]) == 1
    assert main(base + ["--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert history[1]["lr"] < history[0]["lr"]  # the one-cycle schedule went on, not restarted


def test_imagenet_init_needs_the_cached_file(tmp_path):
    model = build_model(7)
    with pytest.raises(WeightsError, match="not found"):
        load_imagenet_init(model, "3x3s1", cache_dir=tmp_path)
    # with a (fake, correctly shaped) cached file the stem and body are copied, the classifier kept
    from torchvision.models import resnet18

    ref = resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    load_imagenet_init(model, "3x3s1", cache_dir=tmp_path)
    torch.testing.assert_close(model.layer1[0].conv1.weight, ref.layer1[0].conv1.weight)
    torch.testing.assert_close(model.conv1.weight, ref.conv1.weight[:, :, 2:5, 2:5].sum(1, keepdim=True))


def test_init_from_our_own_model_is_a_warm_restart(tiny_fer, tmp_path):
    """--init PATH starts from an exported model (same classes): its weights, and the card records the lineage."""
    common = ["--data", str(tiny_fer / "fer2013.csv"), "--batch-size", "16", "--threads", "1", "--limit", "32"]
    first = tmp_path / "first"
    assert main(["train", *common, "--epochs", "1", "--out", str(first), "--name", "first"]) == 0
    from fer_video.training.run import init_from_model

    model = build_model(7)
    lineage = init_from_model(model, str(first / "model.pt"), FER2013_CLASSES, "3x3s1")
    source, card = load_model(first / "model.pt")
    torch.testing.assert_close(model.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert lineage["name"] == "first" and lineage["sha256"] == card.sha256

    second = tmp_path / "second"
    args = ["train", *common, "--epochs", "1", "--out", str(second), "--init", str(first / "model.pt")]
    assert main(args + ["--erasing", "0"]) == 0
    _, card2 = load_model(second / "model.pt")
    assert card2.training["initialised_from"]["name"] == "first"
    assert card2.training["recipe"]["erasing"] == 0

    # a model for other classes cannot seed this run: one clear error naming both class lists
    with pytest.raises(WeightsError, match="classes"):
        init_from_model(build_model(4), str(first / "model.pt"), parse_classes("angry,happy,sad,neutral"), "3x3s1")


def test_train_layers_trains_only_the_named_parts(tiny_fer, tmp_path):
    """--train-layers layer4,fc: the other parts keep their weights and BatchNorm statistics exactly; an unknown
    part name is one clear error before any work."""
    common = ["--data", str(tiny_fer / "fer2013.csv"), "--batch-size", "16", "--threads", "1", "--limit", "48"]
    first = tmp_path / "first"
    assert main(["train", *common, "--epochs", "1", "--out", str(first)]) == 0
    second = tmp_path / "second"
    args = ["train", *common, "--epochs", "2", "--lr", "0.05", "--init", str(first / "model.pt")]
    assert main(args + ["--train-layers", "layer4,fc", "--out", str(second)]) == 0
    before, _ = load_model(first / "model.pt")
    after, card = load_model(second / "model.pt")
    assert card.training["recipe"]["train_layers"] == "layer4,fc"
    old, new = before.state_dict(), after.state_dict()
    for name in old:
        if name.startswith(("layer4.", "fc.")):
            continue
        torch.testing.assert_close(new[name], old[name], rtol=0, atol=0, msg=name)  # weights and BN statistics
    moved = [n for n in old if n.startswith(("layer4.", "fc.")) and not torch.equal(new[n], old[n])]
    assert "fc.weight" in moved and any(n.startswith("layer4.") and "running_mean" in n for n in moved)

    with pytest.raises(SettingsError, match="--train-layers: no part layer5"):
        main(["--debug", *args, "--train-layers", "layer5", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()  # checked before the run folder is made


def test_crop_trains_on_squares_and_inference_takes_the_centre_one(tiny_fer, tiny_weights, tmp_path, capsys):
    """--crop 40: the card says the network sees the centre 40 px of a 48 px face; training scores ten-crop too;
    evaluation and the video classifier take that centre square (a face crop 40/48 as wide) from the card."""
    from fer_video.classify import EmotionClassifier
    from fer_video.predict import ten_crops

    out = tmp_path / "c40"
    common = ["--data", str(tiny_fer / "fer2013.csv"), "--batch-size", "16", "--threads", "1", "--limit", "32"]
    assert main(["train", *common, "--epochs", "1", "--crop", "40", "--out", str(out)]) == 0
    model, card = load_model(out / "model.pt")
    assert (card.input_size, card.resize_size) == (40, 48)
    assert 0 <= card.metrics["accuracy_tencrop"] <= 1
    assert "val_acc_tencrop" in json.loads((out / "history.json").read_text())[0]
    capsys.readouterr()
    assert (
        main(["evaluate", "--weights", str(out / "model.pt"), "--data", str(tiny_fer / "fer2013.csv"), "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 14 and 0 <= report["accuracy_tencrop"] <= 1
    assert main(["evaluate", "--weights", str(out / "model.pt"), "--data", str(tiny_fer / "fer2013.csv")]) == 0
    assert f"accuracy with ten-crop TTA {report['accuracy_tencrop']:.4f}" in capsys.readouterr().out

    clf = EmotionClassifier(model, card, torch.device("cpu"))
    frame = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    box = np.array([[100.0, 50.0, 196.0, 146.0]])  # 96 px: the centre 40/48 of it is the middle 80 px
    centre, whole = clf.crops(frame, box), clf.crops(frame, box, whole=True)
    assert centre.shape == (1, 40, 40, 1) and whole.shape == (1, 48, 48, 1)
    grey = cv2.cvtColor(frame[58:138, 108:188], cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(centre[0, :, :, 0], cv2.resize(grey, (40, 40), interpolation=cv2.INTER_AREA))
    assert clf.predict(centre).shape == (1, 7)
    # --ten-crop: the whole 48 px face, and the mean of the network's ten views of it
    ten = EmotionClassifier(model, card, torch.device("cpu"), ten_crop=True)
    faces = ten.crops(frame, box)
    np.testing.assert_array_equal(faces, whole)
    x = (torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 255 - card.mean[0]) / card.std[0]
    with torch.no_grad():
        expected = torch.stack([torch.softmax(model(v), 1) for v in ten_crops(x, 40)]).mean(0)
    np.testing.assert_allclose(ten.predict(faces), expected.numpy(), atol=1e-5)
    plain_model, plain_card = load_model(tiny_weights)  # a model of whole faces has no ten crops
    with pytest.raises(SettingsError, match="--ten-crop needs a model trained on centre squares"):
        EmotionClassifier(plain_model, plain_card, torch.device("cpu"), ten_crop=True)
    same = dataclasses.replace(plain_card, resize_size=plain_card.input_size)  # a "crop" as large as the face
    with pytest.raises(SettingsError, match="--ten-crop needs a model trained on centre squares"):
        EmotionClassifier(plain_model, same, torch.device("cpu"), ten_crop=True)
    np.testing.assert_array_equal(
        EmotionClassifier(plain_model, same, torch.device("cpu")).crops(frame, box),
        EmotionClassifier(plain_model, plain_card, torch.device("cpu")).crops(frame, box),
    )

    with pytest.raises(SettingsError, match="--crop"):
        main(["--debug", "train", *common, "--crop", "60", "--out", str(tmp_path / "bad")])


def test_random_and_ten_crops_are_squares_of_the_image():
    from fer_video.predict import centre_crop, ten_crops
    from fer_video.training.augment import augment, random_crop

    x = torch.arange(4 * 48 * 48, dtype=torch.float32).view(4, 1, 48, 48)
    crops = random_crop(x, 40, torch.Generator().manual_seed(0))
    for image, crop in zip(x, crops, strict=True):
        top, left = divmod(int(crop[0, 0, 0].item()) % (48 * 48), 48)  # the values name their own positions
        assert top <= 8 and left <= 8
        torch.testing.assert_close(crop, image[:, top : top + 40, left : left + 40])
    views = ten_crops(x, 40)
    assert len(views) == 10 and all(v.shape == (4, 1, 40, 40) for v in views)
    torch.testing.assert_close(views[4], centre_crop(x, 40))
    torch.testing.assert_close(views[9], torch.flip(views[4], dims=[3]))
    torch.testing.assert_close(views[0], x[..., :40, :40])
    assert centre_crop(x, 0) is x
    # --augment flip: each image comes back as itself or its mirror image, nothing else
    images = torch.rand(64, 1, 48, 48)
    flipped = augment(images, torch.Generator().manual_seed(2), 0.0, "flip")
    mirrored = [torch.equal(f, i.flip(2)) for f, i in zip(flipped, images, strict=True)]
    assert all(m or torch.equal(f, i) for m, f, i in zip(mirrored, flipped, images, strict=True))
    assert 10 < sum(mirrored) < 54


def _write_csv(path, rows):
    """A Kaggle-style CSV from (emotion, pixels) pairs, all PublicTest; ``pixels`` None -> a valid random face."""
    rng = np.random.default_rng(1)
    cells = [
        {
            "emotion": emotion,
            "pixels": " ".join(map(str, rng.integers(0, 256, 48 * 48))) if pixels is None else pixels,
            "Usage": "PublicTest",
        }
        for emotion, pixels in rows
    ]
    pd.DataFrame(cells).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("bad", [9, -1, 7])
def test_csv_out_of_range_label_names_file_line_and_value(tmp_path, bad):
    """emotion 9 used to raise IndexError, -1 silently became 'neutral' (FER2013_CLASSES[-1])."""
    csv = _write_csv(tmp_path / "labels.csv", [(3, None), (bad, None), (0, None)])
    with pytest.raises(DataError) as info:
        load_dataset(csv, "test")
    message = str(info.value)
    assert "labels.csv" in message and "line 3" in message and str(bad) in message and "\n" not in message


@pytest.mark.parametrize(
    "pixels, expected", [("1 2 3", "3 values"), ("x " * 2304, "not"), (" ".join(["300"] * 2304), "0-255")]
)
def test_csv_bad_pixels_row_names_its_line(tmp_path, pixels, expected):
    """A short row used to crash np.stack with 'all input arrays must have the same shape'."""
    csv = _write_csv(tmp_path / "pixels.csv", [(3, None), (0, None), (6, pixels), (2, "1 2")])
    with pytest.raises(DataError, match=f"pixels.csv: line 4: .*{expected}"):
        load_dataset(csv, "test")


def test_evaluate_bad_csv_is_one_line_through_the_cli(tmp_path, tiny_weights, capsys):
    csv = _write_csv(tmp_path / "bad.csv", [(3, None), (3, "1 2 3")])
    assert main(["evaluate", "--weights", str(tiny_weights), "--data", str(csv), "--device", "cpu"]) != 0
    err = capsys.readouterr().err
    assert "fer-video: error:" in err and "line 3" in err and "3 values" in err and "Traceback" not in err


def test_evaluate_out_is_a_file_fails_before_any_work(tmp_path, capsys):
    """--out naming a file used to raise FileExistsError, and only after the whole evaluation ran."""
    (tmp_path / "taken").write_text("not a folder")
    args = ["evaluate", "--weights", str(tmp_path / "missing.pt"), "--data", str(tmp_path / "missing.csv")]
    assert main(args + ["--out", str(tmp_path / "taken")]) != 0
    err = capsys.readouterr().err.strip()
    # the output folder is checked first: neither the (missing) weights nor the (missing) data are looked at
    assert err.startswith("fer-video: error:") and "taken" in err and "is a file" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_macro_f1_averages_over_the_classes_present():
    from fer_video.training.metrics import summarize

    classes = list(FER2013_CLASSES)
    rng = np.random.default_rng(0)

    def old_macro_f1(labels, preds):
        cm = np.zeros((7, 7))
        np.add.at(cm, (labels, preds), 1)
        tp = np.diag(cm)
        p, r = tp / np.maximum(cm.sum(0), 1), tp / np.maximum(cm.sum(1), 1)
        return np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1), 0).mean()

    # all 7 classes occur: the same figure as before (the shipped model card's macro-F1 must not move)
    labels, preds = rng.integers(0, 7, 500), rng.integers(0, 7, 500)
    assert summarize(labels, preds, classes)["macro_f1"] == pytest.approx(old_macro_f1(labels, preds), abs=1e-12)

    # 4 classes in the data, one more predicted: the mean over those 5, not over all 7
    labels = np.array([0, 0, 3, 3, 4, 4, 6, 6])
    preds = np.array([0, 3, 3, 3, 4, 2, 6, 6])
    per_class = summarize(labels, preds, classes)["per_class"]
    f1 = {c: per_class[c]["f1"] for c in ("angry", "happy", "sad", "neutral", "fear")}
    assert f1["fear"] == 0 and f1["neutral"] == 1
    macro = summarize(labels, preds, classes)["macro_f1"]
    assert macro == pytest.approx(sum(f1.values()) / 5) and macro > old_macro_f1(labels, preds)


def test_distillation_term_is_zero_when_the_student_matches_the_teacher():
    from fer_video.training.distill import Distillation

    teacher_logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0]])
    kd = Distillation(weight=0.5, temperature=2.0, targets=torch.softmax(teacher_logits / 2.0, 1))
    idx = torch.tensor([1, 0])
    targets = kd.soft_targets(torch.zeros(2, 1, 4, 4), idx)  # fixed targets: the rows of the images idx
    assert kd.loss(teacher_logits[idx], targets).item() == pytest.approx(0.0, abs=1e-6)
    # a student that disagrees pays for it, and more the further it is
    near, far = teacher_logits[idx] * 0.5, teacher_logits[idx].flip(1)
    assert 0 < kd.loss(near, targets).item() < kd.loss(far, targets).item()


def test_consistent_teachers_label_the_batch_the_student_sees():
    """--teacher-mode consistent: the targets are the teachers' mean softened predictions on the batch itself,
    so they change with the augmentation, unlike fixed per-image rows."""
    from fer_video.training.distill import Distillation

    torch.manual_seed(0)
    teachers = [build_model(7).eval(), build_model(7).eval()]
    kd = Distillation(weight=0.5, temperature=2.0, teachers=teachers)
    x = torch.randn(4, 1, 48, 48)
    idx = torch.arange(4)
    with torch.no_grad():
        expected = sum(torch.softmax(t(x) / 2.0, 1) for t in teachers) / 2
    targets = kd.soft_targets(x, idx)
    torch.testing.assert_close(targets, expected)
    assert not torch.allclose(kd.soft_targets(torch.flip(x, dims=[3]), idx), targets)  # another view, other targets
    # the student that is the teachers' mean pays nothing; gradients flow to the student only
    student = torch.log(expected).requires_grad_() * 2.0  # logits whose softmax at T=2 is the mean
    loss = kd.loss(student, targets)
    assert loss.item() == pytest.approx(0.0, abs=1e-5)
    loss.backward()
    assert all(p.grad is None for t in teachers for p in t.parameters())


def test_logit_adjusted_loss_charges_rare_classes_as_if_balanced(tiny_fer, tmp_path):
    """--logit-adjust TAU: cross-entropy of logits + TAU * log(prior); equal counts change nothing; with a rare
    class a network that is unsure pays more for missing the rare class than for missing a common one."""
    from fer_video.training.loop import LogitAdjustedLoss

    logits, labels = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    plain = nn.CrossEntropyLoss()(logits, labels)
    assert LogitAdjustedLoss(np.array([5, 5, 5]), 1.0)(logits, labels).item() == pytest.approx(plain.item())
    counts = np.array([90, 9, 1])
    expected = nn.CrossEntropyLoss()(logits + torch.log(torch.tensor([0.9, 0.09, 0.01])), labels)
    assert LogitAdjustedLoss(counts, 1.0)(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)
    unsure = torch.zeros(1, 3)
    loss = LogitAdjustedLoss(counts, 1.0)
    assert loss(unsure, torch.tensor([2])) > loss(unsure, torch.tensor([0]))
    out = tmp_path / "la"
    args = ["--logit-adjust", "1", "--class-weight-power", "0", "--epochs", "1", "--out", str(out)]
    assert main(["train", *_common(tiny_fer), *args]) == 0
    assert load_model(out / "model.pt")[1].training["recipe"]["logit_adjust"] == 1.0
    with pytest.raises(SettingsError, match="--logit-adjust"):
        main(["--debug", "train", *_common(tiny_fer), "--logit-adjust", "-1", "--out", str(tmp_path / "bad")])


def test_mixup_blends_the_batch_and_its_labels_and_teachers_see_their_own_view():
    """--mixup: the student sees lam * image + (1 - lam) * its partner (the same draws otherwise), the loss takes
    both labels by those shares, fixed teacher rows are mixed alike; with --crop a teacher of whole faces sees the
    whole (mixed) face and a teacher of crops the student's crop."""
    from fer_video.training.augment import Augmentation, student_teacher_inputs
    from fer_video.training.distill import Distillation

    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (8, 1, 48, 48), dtype=np.uint8))
    cpu = torch.device("cpu")
    plain = student_teacher_inputs(images, torch.Generator().manual_seed(3), Augmentation(crop=40), cpu)
    mixed = student_teacher_inputs(images, torch.Generator().manual_seed(3), Augmentation(crop=40, mixup=0.4), cpu)
    assert plain.perm is None and mixed.perm is not None and 0 < mixed.lam < 1
    assert sorted(mixed.perm.tolist()) == list(range(8)) and mixed.perm.tolist() != list(range(8))
    lam, perm = mixed.lam, mixed.perm
    for side in (40, 48):  # the student's crop and the whole face, mixed with the same partners
        torch.testing.assert_close(mixed.views[side], lam * plain.views[side] + (1 - lam) * plain.views[side][perm])
    assert mixed.student is mixed.views[40] and mixed.views[48].shape[-1] == 48
    again = student_teacher_inputs(images, torch.Generator().manual_seed(3), Augmentation(crop=40, mixup=0.4), cpu)
    assert again.lam == lam and torch.equal(again.perm, perm)  # drawn from the generator: a resume draws the same

    criterion = nn.CrossEntropyLoss()
    logits, labels = torch.randn(8, 7), torch.arange(8) % 7
    expected = lam * criterion(logits, labels) + (1 - lam) * criterion(logits, labels[perm])
    assert mixed.loss(criterion, logits, labels).item() == pytest.approx(expected.item())
    assert plain.loss(criterion, logits, labels).item() == pytest.approx(criterion(logits, labels).item())

    rows = torch.softmax(torch.randn(8, 7), 1)
    fixed = Distillation(weight=0.5, temperature=2.0, targets=rows)
    idx = torch.arange(8)
    torch.testing.assert_close(fixed.soft_targets(mixed.views, idx, mixed), lam * rows + (1 - lam) * rows[perm])

    torch.manual_seed(0)
    whole_teacher, crop_teacher = build_model(7).eval(), build_model(7).eval()
    kd = Distillation(weight=0.5, temperature=2.0, teachers=[whole_teacher, crop_teacher], sizes=[48, 40])
    with torch.no_grad():
        expected = (
            torch.softmax(whole_teacher(mixed.views[48]) / 2.0, 1)
            + torch.softmax(crop_teacher(mixed.views[40]) / 2.0, 1)
        ) / 2
    torch.testing.assert_close(kd.soft_targets(mixed.views, idx, mixed), expected)
    # a teacher of 40 px centre squares in a run on whole faces sees the centre square, as at inference
    whole_only = {48: mixed.views[48]}
    alone = Distillation(weight=0.5, temperature=2.0, teachers=[crop_teacher], sizes=[40])
    with torch.no_grad():
        centre = torch.softmax(crop_teacher(mixed.views[48][..., 4:44, 4:44]) / 2.0, 1)
    torch.testing.assert_close(alone.soft_targets(whole_only, idx), centre)
    # an image mixed with one the teachers do not teach (a clip face) is not taught either
    kd.taught = torch.tensor([True] * 7 + [False])
    partner_of_untaught = int((perm == 7).nonzero())
    student = torch.randn(8, 7)
    per_image = torch.nn.functional.kl_div(torch.log_softmax(student / 2.0, 1), expected, reduction="none").sum(1)
    keep = torch.ones(8, dtype=torch.bool)
    keep[[7, partner_of_untaught]] = False
    assert kd.loss(student, expected, idx, perm).item() == pytest.approx((per_image[keep].mean() * 4).item(), rel=1e-5)


COMMON = ["--batch-size", "16", "--threads", "1", "--limit", "32"]


def _common(tiny_fer) -> list[str]:
    return ["--data", str(tiny_fer / "fer2013.csv"), *COMMON]


@pytest.fixture(scope="module")
def teachers(tiny_fer, tmp_path_factory):
    """Two one-epoch models to teach with (seeds 0 and 1), trained once for the distillation scenarios."""
    root = tmp_path_factory.mktemp("teachers")
    teacher, teacher2 = root / "teacher", root / "teacher2"
    assert main(["train", *_common(tiny_fer), "--epochs", "1", "--out", str(teacher), "--name", "teacher"]) == 0
    args = ["train", *_common(tiny_fer), "--epochs", "1", "--seed", "1", "--out", str(teacher2), "--name", "t2"]
    assert main(args) == 0
    return teacher / "model.pt", teacher2 / "model.pt"


def _train_batches(tiny_fer, classes):
    from fer_video.predict import Batches

    return Batches.from_dataset(load_dataset(tiny_fer / "fer2013.csv", "train", classes), 32)


def _computed(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("computing teacher targets")]


def test_teacher_targets_are_computed_once_and_reused_on_resume(tiny_fer, teachers, tmp_path, caplog):
    """--teacher: the card names the teacher; its soft targets are computed once and reused on --resume."""
    from fer_video.predict import predict_loaded

    teacher, _ = teachers
    _, teacher_card = load_model(teacher)
    student = tmp_path / "student"
    cached_file = student / f"teacher-{teacher_card.sha256[:16]}-T3.pt"
    args = ["train", *_common(tiny_fer), "--epochs", "2", "--out", str(student), "--teacher", str(teacher)]
    with caplog.at_level("INFO"):
        assert main(args + ["--epochs-this-run", "1", "--distill-temperature", "3"]) == 0
    assert _computed(caplog) == [
        f"computing teacher targets: {teacher} on 32 images, plain and mirrored (cached in {cached_file})"
    ]
    cached = torch.load(cached_file, weights_only=True)["targets"]
    assert cached.shape == (32, 7)
    torch.testing.assert_close(cached.sum(1), torch.ones(32))
    # the teacher's own flip-averaged predictions softened at T=3 (not the labels), in the order of the images
    train = _train_batches(tiny_fer, teacher_card.classes)
    teacher_model, _ = load_model(teacher)
    soft = predict_loaded(teacher_model, teacher_card, train, torch.device("cpu"), temperature=3.0)[1]
    torch.testing.assert_close(cached, torch.from_numpy(soft))

    caplog.clear()
    with caplog.at_level("INFO"):
        assert main(args + ["--resume", "--distill-temperature", "3"]) == 0
    assert any(f"teacher targets of {teacher} from {cached_file}" == r.getMessage() for r in caplog.records)
    assert not _computed(caplog)
    _, card = load_model(student / "model.pt")
    assert card.training["distilled_from"][0]["sha256"] == teacher_card.sha256
    assert card.training["recipe"]["distill_temperature"] == 3


def test_a_shared_teacher_cache_computes_only_new_teachers(tiny_fer, teachers, tmp_path, caplog):
    """Another run given the same --teacher-cache computes only the teacher it has not seen; the targets are
    the teachers' mean."""
    from fer_video.training.distill import teacher_targets

    teacher, teacher2 = teachers
    _, teacher_card = load_model(teacher)
    cache = tmp_path / "cache"
    cache.mkdir()
    train = _train_batches(tiny_fer, teacher_card.classes)
    teacher_targets([str(teacher)], train, teacher_card.classes, 3.0, torch.device("cpu"), cache)  # seen before
    both = [str(teacher), str(teacher2)]
    caplog.clear()
    with caplog.at_level("INFO"):
        two = ["train", *_common(tiny_fer), "--epochs", "1", "--out", str(tmp_path / "student2"), "--teacher"]
        assert main(two + [",".join(both), "--teacher-cache", str(cache), "--distill-temperature", "3"]) == 0
    computed = _computed(caplog)
    assert len(computed) == 1 and str(teacher2) in computed[0]
    assert not list((tmp_path / "student2").glob("teacher-*.pt"))  # the cache folder was given
    mean, names = teacher_targets(both, train, teacher_card.classes, 3.0, torch.device("cpu"), cache)
    shares = [torch.load(f, weights_only=True)["targets"] for f in sorted(cache.glob("teacher-*-T3.pt"))]
    assert len(shares) == 2 and [t["name"] for t in names] == ["teacher", "t2"]
    torch.testing.assert_close(mean, (shares[0] + shares[1]) / 2)


def test_consistent_teachers_run_on_the_batches_and_cache_nothing(tiny_fer, teachers, tmp_path):
    """--teacher-mode consistent: the teachers run on the student's batches; nothing is cached."""
    both = [str(t) for t in teachers]
    consistent = tmp_path / "consistent"
    one = ["train", *_common(tiny_fer), "--epochs", "1", "--out", str(consistent), "--teacher", ",".join(both)]
    assert main(one + ["--teacher-mode", "consistent", "--precision", "fp32"]) == 0
    _, card = load_model(consistent / "model.pt")
    taught_by = [t["sha256"] for t in card.training["distilled_from"]]
    assert taught_by == [load_model(both[0])[1].sha256, load_model(both[1])[1].sha256]
    assert card.training["recipe"]["teacher_mode"] == "consistent" and card.training["precision"] == "fp32"
    assert not list(consistent.glob("teacher-*.pt"))
    # the recipe of the best from-scratch results: random 40 px crops and mixup, whole-face teachers beside them
    recipe = tmp_path / "recipe"
    args = ["--crop", "40", "--mixup", "0.2", "--teacher-mode", "consistent", "--precision", "fp32"]
    assert main(["train", *_common(tiny_fer), "--epochs", "1", "--out", str(recipe), "--teacher", both[0], *args]) == 0
    _, card = load_model(recipe / "model.pt")
    assert card.training["recipe"]["mixup"] == 0.2 and (card.input_size, card.resize_size) == (40, 48)
    with pytest.raises(SettingsError, match="--mixup"):
        main(["--debug", "train", *_common(tiny_fer), "--mixup", "-1", "--out", str(tmp_path / "bad")])


def test_unusable_teachers_and_distillation_settings_are_one_clear_error(tiny_fer, teachers, tmp_path):
    """A teacher for other classes, a weight outside (0, 1], or a consistent teacher with another normalisation:
    one clear error each, nothing trained."""
    teacher, _ = teachers
    other = ["--debug", "train", *_common(tiny_fer), "--epochs", "1", "--out", str(tmp_path / "other")]
    with pytest.raises(WeightsError, match="--teacher model has classes"):
        main([*other, "--classes", "angry,happy,sad,neutral", "--teacher", str(teacher)])
    with pytest.raises(SettingsError, match="--distill-weight"):
        main([*other, "--teacher", str(teacher), "--distill-weight", "0"])
    # a consistent teacher must expect this run's normalisation: it sees the student's normalised batches
    renormed = tmp_path / "renormed"
    renormed.mkdir()
    shutil.copy(teacher, renormed / "model.pt")
    card_json = json.loads(teacher.with_suffix(".json").read_text())
    (renormed / "model.json").write_text(json.dumps({**card_json, "mean": [0.4]}))
    with pytest.raises(WeightsError, match="expects mean 0.4"):
        main([*other, "--teacher", str(renormed / "model.pt"), "--teacher-mode", "consistent"])


def test_swa_averages_the_last_epochs_at_a_constant_lr_and_resumes(tiny_fer, tmp_path):
    """--swa 2 of 3 epochs: one one-cycle epoch, then two at --swa-lr whose end-of-epoch weights are averaged,
    the average surviving a --resume between them."""
    common = ["--data", str(tiny_fer / "fer2013.csv"), "--batch-size", "16", "--threads", "1", "--limit", "32"]
    out = tmp_path / "swa"
    args = ["train", *common, "--epochs", "3", "--swa", "2", "--swa-lr", "0.02", "--out", str(out)]
    assert main(args + ["--epochs-this-run", "2"]) == 0
    first = torch.load(out / "checkpoint.pt", weights_only=False)
    assert int(first["swa"]["n_averaged"]) == 1
    assert main(args + ["--resume"]) == 0
    last = torch.load(out / "checkpoint.pt", weights_only=False)
    assert int(last["swa"]["n_averaged"]) == 2
    for key in ("conv1.weight", "layer3.0.conv2.weight", "fc.bias"):
        torch.testing.assert_close(last["swa"]["module." + key], (first["model"][key] + last["model"][key]) / 2)
    # BatchNorm statistics of the average are recomputed on training batches, not the last model's
    assert not torch.equal(last["swa"]["module.bn1.running_mean"], last["model"]["bn1.running_mean"])
    history = json.loads((out / "history.json").read_text())
    assert [h["lr"] for h in history] == [history[0]["lr"], 0.02, 0.02] and history[0]["lr"] != 0.02
    assert "swa_acc_tta" not in history[0] and [h["swa_epochs"] for h in history[1:]] == [1, 2]
    assert all(0 <= h["swa_acc_tta"] <= 1 for h in history[1:])

    with pytest.raises(SettingsError, match="--swa must be between 0 and --epochs"):
        main(["--debug", "train", *common, "--epochs", "2", "--swa", "3", "--out", str(tmp_path / "bad")])
    assert not (tmp_path / "bad").exists()  # refused before the run folder is made


@pytest.fixture(scope="module")
def labelled_clips(tmp_path_factory):
    """Two one-face clips of two subjects with a labels table, as `fer-video evaluate --videos` reads them."""
    from fer_video.demo import make_demo_video

    folder = tmp_path_factory.mktemp("labelled")
    for name in ("a.mp4", "b.mp4"):
        make_demo_video(folder / name, width=160, height=120, fps=10.0, seconds=1.0, faces=1, audio=False)
    (folder / "labels.csv").write_text("file,label,subject\na.mp4,happy,s1\nb.mp4,Sad,s2\n")
    return folder


def test_clip_faces_are_the_crops_annotate_gives_the_classifier(labelled_clips, tmp_path, monkeypatch):
    from fer_video.pipeline import annotate_video, load_models
    from fer_video.training import clips
    from fer_video.types import Settings
    from fer_video.video import VideoReader

    faces = clips.load_clip_faces(labelled_clips, labelled_clips / "labels.csv", FER2013_CLASSES, tmp_path / "c")
    assert set(faces.subjects) == {"s1", "s2"} and faces.images.shape[1:] == (48, 48)
    settings = Settings(write_video=False, write_plot=False)
    models = load_models(settings)
    result = annotate_video(labelled_clips / "a.mp4", tmp_path / "ann", settings, models=models)
    rows = pd.read_csv(result.outputs["csv"]).dropna(subset=["face_id"])
    first = rows.iloc[0]
    frame = next(f for f in VideoReader(labelled_clips / "a.mp4") if f.index == first["frame"])
    expected = models.classifier.crops(frame.image, np.array([[first.x1, first.y1, first.x2, first.y2]]))
    mine = faces.images[faces.files == "a.mp4"]
    assert len(mine) == len(rows) > 0 and np.array_equal(mine[0], expected[0, :, :, 0])
    assert (faces.labels[faces.files == "b.mp4"] == FER2013_CLASSES.index("sad")).all()
    # cached: a second load crops nothing; a left-out subject's clips are not read
    monkeypatch.setattr(clips, "largest_face_crops", lambda *a: pytest.fail("cropped again"))
    kept = clips.load_clip_faces(
        labelled_clips, labelled_clips / "labels.csv", FER2013_CLASSES, tmp_path / "c", ("s1",)
    )
    assert set(kept.files) == {"b.mp4"} and np.array_equal(kept.images, faces.images[faces.files == "b.mp4"])
    with pytest.raises(DataError, match="no clips of the excluded subject"):
        clips.load_clip_faces(labelled_clips, labelled_clips / "labels.csv", FER2013_CLASSES, tmp_path / "c", ("x",))
    with pytest.raises(DataError, match="not among the classes"):
        clips.load_clip_faces(labelled_clips, labelled_clips / "labels.csv", ("angry", "neutral"), tmp_path / "c")


def test_clip_face_cache_is_kept_unless_a_setting_that_moves_the_boxes_changes(labelled_clips):
    from fer_video.stages import default_weights
    from fer_video.training.clips import CROP_SETTINGS, cache_key
    from fer_video.types import Settings

    clip, weights, base = labelled_clips / "a.mp4", default_weights(), Settings(write_video=False, write_plot=False)
    key = cache_key(clip, base, weights)
    others = {"smoothing": 0.9, "tta": True, "classify_every": 3, "precision": "fp32", "crf": 30, "elan": True}
    for name, value in others.items():  # what the classifier or the writers do with the faces: same crops
        assert name not in CROP_SETTINGS and cache_key(clip, dataclasses.replace(base, **{name: value}), weights) == key
    for name, value in {"min_face": 20, "detect_every": 1, "det_threshold": 0.95, "iou_match": 0.3}.items():
        assert cache_key(clip, dataclasses.replace(base, **{name: value}), weights) != key, name
    assert cache_key(labelled_clips / "b.mp4", base, weights) != key


def test_training_with_clips_adds_their_faces_and_records_them(tiny_fer, labelled_clips, teachers, tmp_path, caplog):
    caplog.set_level("INFO")
    out = tmp_path / "run"
    args = ["train", *_common(tiny_fer), "--epochs", "1", "--out", str(out), "--teacher", str(teachers[0])]
    args += ["--clips", str(labelled_clips), "--clip-repeat", "2", "--clip-exclude", "s2"]
    assert main(args) == 0
    messages = [r.getMessage() for r in caplog.records]
    line = next(m for m in messages if m.startswith("clip faces:") and "excluded" in m)
    assert "of 1 clips (1 subjects, excluded: s2), each 2 times" in line
    crops = int(line.split()[2])
    assert crops > 0 and next(m for m in messages if m.startswith("data:")).startswith(f"data: {32 + 2 * crops} train")
    _, card = load_model(out / "model.pt")
    assert card.training["data"].endswith("+ labelled clips (" + labelled_clips.name + ")")
    assert card.training["recipe"]["clip_exclude"] == "s2"
    with pytest.raises(SettingsError, match="need --clips"):
        main(["--debug", "train", *_common(tiny_fer), "--clip-exclude", "s2", "--out", str(tmp_path / "x")])


def test_teachers_teach_only_the_images_they_are_told_to():
    from fer_video.training.distill import Distillation

    targets = torch.softmax(torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]]), 1)
    kd = Distillation(weight=0.5, temperature=1.0, targets=targets, taught=torch.tensor([True, False, True]))
    idx = torch.tensor([0, 1, 2])
    logits = torch.tensor([[2.0, 0.0], [5.0, -5.0], [1.0, 0.0]])  # right on 0 and 2, far off on 1
    assert kd.loss(logits, targets[idx], idx).item() == pytest.approx(0.0, abs=1e-6)  # 1 is not taught
    kd.taught = None
    assert kd.loss(logits, targets[idx], idx).item() > 0.5
