"""Per-face temporal smoothing of class probabilities: an exponential moving average in seconds,
so it behaves the same at any (or a variable) frame rate."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class ProbabilitySmoother:
    """EMA with time constant ``tau_s`` seconds per face id; ``tau_s <= 0`` passes probabilities through.

    A face seen again after more than ``reset_after_s`` restarts from its raw probabilities.
    """

    def __init__(self, tau_s: float = 0.3, reset_after_s: float = 1.0) -> None:
        self.tau_s = tau_s
        self.reset_after_s = reset_after_s
        self._state: dict[int, tuple[float, np.ndarray]] = {}

    def reset(self) -> None:
        self._state.clear()

    def state(self) -> dict[str, Any]:
        """Each face's last time and smoothed probabilities, for a checkpoint."""
        return {"faces": [[fid, t, value] for fid, (t, value) in self._state.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        self._state = {int(fid): (float(t), value) for fid, t, value in state["faces"]}

    def update(self, face_ids: np.ndarray, probs: np.ndarray, time_s: float) -> np.ndarray:
        if self.tau_s <= 0:
            return probs.copy()
        out = np.empty_like(probs)
        for i, fid in enumerate(face_ids.tolist()):
            prev = self._state.get(fid)
            if prev is None or time_s - prev[0] > self.reset_after_s:
                value = probs[i].copy()
            else:
                alpha = 1.0 - math.exp(-max(time_s - prev[0], 0.0) / self.tau_s)
                value = prev[1] + alpha * (probs[i] - prev[1])
            self._state[fid] = (time_s, value)
            out[i] = value
        return out
