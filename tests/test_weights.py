"""Missing, corrupt or mismatched weights: a clear error naming the file."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from media import (
    cli,
    error_lines,
)

from fer_video.cli import main
from fer_video.errors import WeightsError
from fer_video.model import file_sha256

# ------------------------------------------------------------- 14: missing, corrupt, mismatched weights


def _copy_weights(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, folder / "m.pt")
    shutil.copy(src.with_suffix(".json"), folder / "m.json")
    return folder / "m.pt"


def _edit_card(pt: Path, **changes) -> None:
    card = json.loads(pt.with_suffix(".json").read_text())
    card.update(changes)
    pt.with_suffix(".json").write_text(json.dumps(card))


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _evil(pt: Path) -> None:
    torch.save({"conv1.weight": _Payload(pt.parent / "PWNED")}, pt)
    _edit_card(pt, sha256=file_sha256(pt))


def _truncated(pt: Path) -> None:
    pt.write_bytes(pt.read_bytes()[:4000])
    _edit_card(pt, sha256=file_sha256(pt))


def _other_classes(pt: Path) -> None:
    state = torch.load(pt, weights_only=True)
    state["fc.weight"], state["fc.bias"] = state["fc.weight"][:5], state["fc.bias"][:5]
    torch.save(state, pt)
    _edit_card(pt, sha256=file_sha256(pt))


WEIGHT_FAULTS = {
    "missing .pt": (lambda pt: pt.unlink(), "m.pt", "weights file not found"),
    "missing .json": (lambda pt: pt.with_suffix(".json").unlink(), "m.json", "model metadata not found"),
    "corrupt .pt (sha256)": (lambda pt: pt.write_bytes(b"\0" * 100), "m.pt", "sha256 does not match m.json"),
    "truncated .pt": (_truncated, "m.pt", "cannot read weights, corrupt or not a PyTorch file"),
    "pickle with code": (_evil, "m.pt", "refused, it holds objects other than tensors"),
    "other class count": (
        _other_classes,
        "m.pt",
        "weights do not match the model in m.json (fc.weight has shape (5, 512), the metadata's model needs (7, 512))",
    ),
    "other stem": (lambda pt: _edit_card(pt, stem="imagenet"), "m.pt", "weights do not match the model in m.json"),
    "json not JSON": (
        lambda pt: pt.with_suffix(".json").write_text("{oops"),
        "m.json",
        "model metadata is not valid JSON",
    ),
    "json a list": (
        lambda pt: pt.with_suffix(".json").write_text("[]"),
        "m.json",
        "model metadata is not a JSON object",
    ),
    "json no classes": (lambda pt: _edit_card(pt, classes=[]), "m.json", "model metadata is inconsistent"),
    "json bad mean": (lambda pt: _edit_card(pt, mean=None), "m.json", "model metadata is inconsistent"),
    "json bad input size": (lambda pt: _edit_card(pt, input_size=0), "m.json", "model metadata is inconsistent"),
    "json other arch": (lambda pt: _edit_card(pt, arch="vgg16"), "m.pt", "architecture 'vgg16' is not supported"),
}


@pytest.mark.parametrize("case", list(WEIGHT_FAULTS))
def test_bad_weights_clear_error_naming_the_file(case, tmp_path, tiny_weights, good_clip, capsys):
    damage, filename, reason = WEIGHT_FAULTS[case]
    pt = _copy_weights(tiny_weights, tmp_path / "weights")
    damage(pt)
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, pt, str(good_clip), "--out", str(out))
    assert code == 1
    lines = error_lines(err)
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"fer-video: error: {pt.parent / filename}: {reason}"), lines[0]
    assert not (pt.parent / "PWNED").exists()  # weights_only: nothing in the file ran
    assert not out.exists() or sorted(out.iterdir()) == []
    # --debug shows the traceback instead
    if case == "missing .pt":
        with pytest.raises(WeightsError):
            main(["--debug", "annotate", str(good_clip), "--out", str(out), "--weights", str(pt), "--device", "cpu"])
