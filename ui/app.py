"""Entry for ``gradio ui/app.py`` and ``python ui/app.py`` from a checkout (with fer-video installed, e.g. by
``make setup``): the app itself is the ``fer_video.ui`` package."""

from __future__ import annotations

import logging
from typing import Any

from fer_video.ui import server


def __getattr__(name: str) -> Any:  # ``demo``: what ``gradio ui/app.py`` reloads, built on first use
    return getattr(server, name)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    raise SystemExit(server.main())
