"""fer-video: facial-expression recognition for videos (MTCNN faces, tracked, classified by a FER2013 ResNet18)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

# PyTorch's OpenMP threads otherwise spin for a while after each parallel region, burning the core that our
# decode and encode threads need: measured -20 % CPU per frame and +8 % frames/s (docs/performance.md).
# Read once when torch loads, so it only takes effect when fer_video is imported before torch; a value the
# user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["annotate_video", "__version__"]

if TYPE_CHECKING:
    from fer_video.pipeline import annotate_video


def __getattr__(name: str) -> Any:  # lazy: `import fer_video` stays cheap (no torch) for the CLI's --help
    if name == "annotate_video":
        from fer_video.pipeline import annotate_video

        return annotate_video
    raise AttributeError(name)
