#!/usr/bin/env bash
# One-shot set-up on a fresh machine: a .venv with everything (CPU torch 2.14.1 from the local cache,
# the ffmpeg libraries inside PyAV's wheel, the UI, Ray and the test tools), pinned by constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[ui,dev,ray]"
.venv/bin/python -c "import torch, torchvision, facenet_pytorch, av, gradio, pympi, ray; print('fer-video set-up ok: torch', torch.__version__)"
