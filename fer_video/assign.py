"""Optimal one-to-one assignment (the linear sum assignment problem) for the tracker's small cost matrices.

The shortest-augmenting-path algorithm SciPy's ``linear_sum_assignment`` runs (Crouse, "On implementing 2D
rectangular assignment algorithms", 2016), in NumPy: for the few faces of a frame it is as fast, and it spares
every run the import of ``scipy.optimize`` (about 0.75 CPU-s, a third of ``import torch``).
"""

from __future__ import annotations

import numpy as np


def _augmenting_path(
    cost: np.ndarray, u: np.ndarray, v: np.ndarray, row4col: np.ndarray, start: int
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Dijkstra from row ``start`` over reduced costs to the nearest free column: that column (the sink), the
    predecessor row of each column, the shortest distance to each column, the rows and columns reached, and
    the path's length."""
    n_cols = cost.shape[1]
    shortest = np.full(n_cols, np.inf)
    path = np.full(n_cols, -1)
    seen_rows = np.zeros(cost.shape[0], bool)
    seen_cols = np.zeros(n_cols, bool)
    row, length = start, 0.0
    while True:
        seen_rows[row] = True
        reduced = length + cost[row] - u[row] - v
        better = ~seen_cols & (reduced < shortest)
        path[better], shortest[better] = row, reduced[better]
        open_cols = np.flatnonzero(~seen_cols)
        length = float(shortest[open_cols].min())
        if not np.isfinite(length):
            raise ValueError("cost matrix is infeasible")
        ties = open_cols[shortest[open_cols] == length]
        free = ties[row4col[ties] < 0]
        col = int(free[0] if len(free) else ties[0])  # a free column ends the search soonest
        seen_cols[col] = True
        if row4col[col] < 0:
            return col, path, shortest, seen_rows, seen_cols, length
        row = int(row4col[col])


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the assignment with the smallest total ``cost`` ((N, M), finite), one per row or
    column (whichever are fewer), rows ascending: what ``scipy.optimize.linear_sum_assignment`` returns."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n_rows, n_cols = cost.shape
    u, v = np.zeros(n_rows), np.zeros(n_cols)
    col4row, row4col = np.full(n_rows, -1), np.full(n_cols, -1)
    for start in range(n_rows):
        sink, path, shortest, seen_rows, seen_cols, length = _augmenting_path(cost, u, v, row4col, start)
        # dual variables, so that the reduced costs stay non-negative
        others = seen_rows.copy()
        others[start] = False
        u[start] += length
        u[others] += length - shortest[col4row[others]]
        v[seen_cols] -= length - shortest[seen_cols]
        col = sink
        while True:  # flip the path's assignments
            row = int(path[col])
            row4col[col] = row
            col4row[row], col = col, col4row[row]
            if row == start:
                break
    rows, cols = np.arange(n_rows), col4row
    if transposed:
        order = np.argsort(cols)
        return cols[order], rows[order]
    return rows, cols
