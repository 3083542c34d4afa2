"""Path post-processing: shortcutting, resampling and collision-aware smoothing.

Grid and sampling planners leave zig-zags and sharp corners that a tracker has to
follow; these functions shorten and round a path without leaving free space. They take
points ``(N, 2)`` in world units and an :class:`~pilot.planning.collision.OccupancyChecker`
(or ``None`` for an obstacle-free world).
"""

from __future__ import annotations

import numpy as np

from pilot.errors import UserError

from .collision import OccupancyChecker


def path_length(path: np.ndarray) -> float:
    """Sum of the straight segments' lengths."""
    p = np.asarray(path, dtype=float)
    return float(np.sum(np.hypot(*np.diff(p[:, :2], axis=0).T))) if len(p) > 1 else 0.0


def shortcut(path: np.ndarray, checker: OccupancyChecker | None = None) -> np.ndarray:
    """Greedy line-of-sight shortcutting: from each kept point jump to the farthest later
    point that a free straight segment reaches. Deterministic; the length never grows
    (triangle inequality) and the endpoints stay."""
    p = _points(path)
    if len(p) < 3:
        return p.copy()
    keep = [0]
    i = 0
    while i < len(p) - 1:
        j = len(p) - 1
        while j > i + 1 and not (checker is None or checker.segment_free(p[i], p[j])):
            j -= 1
        keep.append(j)
        i = j
    return p[keep]


def resample(path: np.ndarray, spacing: float) -> np.ndarray:
    """Points at equal arc-length ``spacing`` along the polyline (ends kept), so trackers
    and smoothers see evenly spaced references."""
    if spacing <= 0:
        raise UserError(f"spacing must be positive, got {spacing}")
    p = _points(path)
    if len(p) < 2:
        return p.copy()
    seg = np.hypot(*np.diff(p, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] == 0:
        return p[:1].copy()
    n = max(2, int(np.ceil(s[-1] / spacing)) + 1)
    t = np.linspace(0.0, s[-1], n)
    return np.column_stack([np.interp(t, s, p[:, 0]), np.interp(t, s, p[:, 1])])


def smooth(
    path: np.ndarray,
    checker: OccupancyChecker | None = None,
    weight_data: float = 0.1,
    weight_smooth: float = 0.3,
    iterations: int = 300,
) -> np.ndarray:
    """Gradient smoothing: each inner point moves towards the midpoint of its neighbours
    (``weight_smooth``) while staying tied to where it was (``weight_data``). Endpoints
    are fixed.

    Odd and even points move in alternate half-steps, so a point's neighbours hold still
    while it moves; a move is kept only if the point and both its segments stay free.
    Every segment of the result is therefore free whenever every segment of the input
    was.
    """
    p0 = _points(path)
    if len(p0) < 3:
        return p0.copy()
    if weight_data < 0 or weight_smooth < 0 or weight_data + 2 * weight_smooth > 1:
        raise UserError("smoothing weights must be ≥ 0 with weight_data + 2·weight_smooth ≤ 1")
    y = p0.copy()
    for _ in range(iterations):
        moved = 0.0
        for first in (1, 2):
            i = np.arange(first, len(y) - 1, 2)
            if len(i) == 0:
                continue
            step = weight_data * (p0[i] - y[i]) + weight_smooth * (y[i - 1] + y[i + 1] - 2 * y[i])
            cand = y[i] + step
            if checker is not None:
                ok = checker.points_free(cand)
                ok &= checker.segments_free(y[i - 1], cand)
                ok &= checker.segments_free(cand, y[i + 1])
                cand[~ok] = y[i][~ok]
            moved = max(moved, float(np.max(np.abs(cand - y[i]))))
            y[i] = cand
        if moved < 1e-9:
            break
    return y


def _points(path: np.ndarray) -> np.ndarray:
    p = np.asarray(path, dtype=float)
    if p.ndim != 2 or p.shape[1] < 2:
        raise UserError(f"a path must be an (N, 2) array of points, got shape {p.shape}")
    return p[:, :2].copy()
