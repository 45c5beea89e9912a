"""Files a run writes as it goes: atomic saves (checkpoints, teacher targets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary beside ``path``, then renamed: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
