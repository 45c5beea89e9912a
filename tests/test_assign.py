"""The tracker's assignment against SciPy's ``linear_sum_assignment``."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

from fer_video.assign import linear_sum_assignment
from fer_video.track import iou_matrix


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0), (1, 1), (1, 5), (5, 1), (4, 4), (3, 7), (7, 3), (12, 12)])
def test_same_assignment_as_scipy_on_random_costs(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(30):
        cost = rng.normal(size=shape)
        rows, cols = linear_sum_assignment(cost)
        want_rows, want_cols = scipy_lsa(cost)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(cols, want_cols)


def test_same_total_as_scipy_on_iou_matrices_with_many_ties():
    """Boxes that mostly do not overlap: IoU 0 almost everywhere, so several assignments are optimal."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.uniform(0, 600, (int(rng.integers(1, 9)), 2))
        b = a[rng.permutation(len(a))][: int(rng.integers(1, len(a) + 1))] + rng.normal(0, 15, (1, 2))
        a = np.hstack([a, a + 60])
        b = np.hstack([b, b + 60])
        cost = -iou_matrix(a.astype(np.float32), b.astype(np.float32))
        rows, cols = linear_sum_assignment(cost)
        want_rows, want_cols = scipy_lsa(cost)
        assert len(rows) == len(want_rows) == min(cost.shape)
        assert cost[rows, cols].sum() == pytest.approx(cost[want_rows, want_cols].sum(), abs=1e-9)
        assert len(set(cols)) == len(cols) and len(set(rows)) == len(rows)
