"""Start-up: ``fer-video --help`` imports no torch, and annotating imports only what the job needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# run the command in-process with runpy, then report which top-level packages it imported
PROBE = """
import json, runpy, sys
sys.argv = ["fer-video", *sys.argv[1:]]
try:
    runpy.run_module("fer_video", run_name="__main__")
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.__stderr__)
"""


def _imported(*args: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300, check=True
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["annotate", "--help"], ["demo", "--help"]])
def test_help_imports_no_torch(args):
    heavy = _imported(*args) & {"torch", "torchvision", "gradio", "matplotlib", "pandas", "scipy", "cv2", "av"}
    assert not heavy, f"fer-video {' '.join(args)} imported {sorted(heavy)}"


def test_train_help_still_lists_its_options():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "fer_video", "train", "--help"], capture_output=True, text=True, env=env, check=True
    )
    assert "--epochs" in done.stdout and "--teacher" in done.stdout


@pytest.mark.slow
def test_annotating_imports_neither_torchvision_nor_plotting_nor_scipy(tmp_path, make_video):
    """(pandas is imported: the episodes, written by every run, are computed with it)"""
    clip = make_video("one frame.mp4", seconds=0.1, fps=10.0)
    imported = _imported("annotate", str(clip), "--out", str(tmp_path), "--quiet")
    assert (tmp_path / "one frame.timeline.png").is_file()
    unneeded = imported & {"torchvision", "facenet_pytorch", "matplotlib", "scipy", "gradio", "skimage", "pympi"}
    assert not unneeded, f"annotate imported {sorted(unneeded)}"
