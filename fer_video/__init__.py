"""fer-video: facial-expression recognition for videos (MTCNN faces, tracked, classified by a FER2013 ResNet18)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["annotate_video", "__version__"]

if TYPE_CHECKING:
    from fer_video.pipeline import annotate_video


def __getattr__(name: str) -> Any:  # lazy: `import fer_video` stays cheap (no torch) for the CLI's --help
    if name == "annotate_video":
        from fer_video.pipeline import annotate_video

        return annotate_video
    raise AttributeError(name)
