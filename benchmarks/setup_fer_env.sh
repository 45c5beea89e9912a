#!/usr/bin/env bash
# Build a separate virtual environment holding the peer tool `fer` 25.10.3 (FER(mtcnn=True) + Video.analyze)
# for `benchmarks/speed.py --compare-fer`. fer is NEVER a dependency of fer-video: it lives only here.
#
#   bash benchmarks/setup_fer_env.sh            # -> benchmarks/.fer-venv (git-ignored)
#   FER_ENV=/work/fer-env bash benchmarks/setup_fer_env.sh
#
# What fer 25.10.3 declares (from its wheel metadata, `pip download --no-deps fer==25.10.3`):
#   matplotlib, opencv-contrib-python, tensorflow>=2.0.0, pandas, requests, facenet-pytorch (unpinned),
#   tqdm>=4.62.1, moviepy>=1.0.3,<2.0, ffmpeg-python>=0.2.0, Pillow; it imports pkg_resources (setuptools<81).
# We install fer with --no-deps and its dependencies explicitly, with two deliberate choices:
#   * tensorflow-cpu instead of tensorflow: the same TensorFlow code without the CUDA libraries (no GPU here);
#   * facenet-pytorch==2.5.3 (the version fer-video uses), because the unpinned latest (2.6.0) pins
#     torch<2.3 and numpy<2: both tools then run the very same MTCNN.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV="${FER_ENV:-$HERE/.fer-venv}"
PY="${PYTHON:-python3}"
"$PY" -m venv "$ENV"
"$ENV/bin/python" -m pip install -q --upgrade pip
"$ENV/bin/python" -m pip install -q --no-deps "fer==25.10.3"
"$ENV/bin/python" -m pip install -q "setuptools<81" "tensorflow-cpu>=2.16" "facenet-pytorch==2.5.3" torch torchvision \
    opencv-contrib-python matplotlib pandas requests "tqdm>=4.62.1" "moviepy>=1.0.3,<2.0" "ffmpeg-python>=0.2.0" \
    Pillow "imageio-ffmpeg>=0.4"
"$ENV/bin/python" - <<'PY'
import importlib.metadata as md
# fer 25.10.3's fer/__init__.py exports nothing: FER and Video are imported from their modules
from fer.classes import Video  # noqa: F401  (fails here if a dependency is missing)
from fer.fer import FER  # noqa: F401
print("fer", md.version("fer"), "tensorflow-cpu", md.version("tensorflow-cpu"), "torch", md.version("torch"),
      "facenet-pytorch", md.version("facenet-pytorch"), "moviepy", md.version("moviepy"))
PY
echo "fer environment ready: $ENV"
