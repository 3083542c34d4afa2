"""Collision checks of a disc-shaped robot in continuous space against an occupancy grid.

World frame: metres, ``x`` along the columns and ``y`` along the rows, so cell
``(row, col)`` covers ``x ∈ [col·res, (col+1)·res)`` and ``y ∈ [row·res, (row+1)·res)``;
headings are measured from +x towards +y. Outside the map counts as blocked.

The check is conservative and exact about it: a cell is *unsafe* when some point of it
lies closer than ``clearance + margin`` to a blocked square. A point is free when its
cell is safe, so a free point has at least ``clearance + margin`` to every obstacle.
Curves are checked at samples at most ``sample_step`` apart, and ``margin`` is half of
that, so every point *between* two free samples still keeps ``clearance``.
"""

from __future__ import annotations

import math

import numpy as np

from pilot.errors import UserError


def inflate(blocked: np.ndarray, radius_cells: float) -> np.ndarray:
    """Cells some point of which lies within ``radius_cells`` of a blocked square (or the
    map's outside); blocked cells themselves are always included."""
    blocked = np.asarray(blocked, dtype=bool)
    h, w = blocked.shape
    k = int(math.ceil(radius_cells)) + 1
    padded = np.ones((h + 2 * k, w + 2 * k), dtype=bool)
    padded[k : k + h, k : k + w] = blocked
    out = blocked.copy()
    for di in range(-k, k + 1):
        for dj in range(-k, k + 1):
            # distance between the closed unit squares of two cells (di, dj) apart
            gap = math.hypot(max(abs(di) - 1, 0), max(abs(dj) - 1, 0))
            if (di or dj) and gap < radius_cells:
                out |= padded[k + di : k + di + h, k + dj : k + dj + w]
    return out


class OccupancyChecker:
    """Point, segment and arc checks for a robot disc of radius ``clearance`` (metres)."""

    def __init__(
        self,
        blocked: np.ndarray,
        resolution: float = 1.0,
        clearance: float = 0.0,
        sample_step: float | None = None,
    ) -> None:
        blocked = np.asarray(blocked, dtype=bool)
        if blocked.ndim != 2 or 0 in blocked.shape:
            raise UserError(f"a grid must be a non-empty 2D array, got shape {blocked.shape}")
        if resolution <= 0 or clearance < 0:
            raise UserError("resolution must be positive and clearance not negative")
        self.blocked = blocked
        self.resolution = float(resolution)
        self.clearance = float(clearance)
        self.sample_step = float(sample_step) if sample_step else self.resolution / 4.0
        self.height, self.width = blocked.shape
        self.unsafe = inflate(blocked, (self.clearance + self.sample_step / 2) / self.resolution)

    @property
    def size(self) -> tuple[float, float]:
        """The map's extent in metres as ``(width_x, height_y)``."""
        return self.width * self.resolution, self.height * self.resolution

    def cells(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, inside)`` of world points ``xy`` (N, 2)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        cols = np.floor(xy[:, 0] / self.resolution).astype(np.int64)
        rows = np.floor(xy[:, 1] / self.resolution).astype(np.int64)
        inside = (rows >= 0) & (rows < self.height) & (cols >= 0) & (cols < self.width)
        return rows, cols, inside

    def points_free(self, xy: np.ndarray) -> np.ndarray:
        """Boolean per point: at least ``clearance + margin`` from every obstacle."""
        rows, cols, inside = self.cells(xy)
        ok = inside.copy()
        ok[inside] = ~self.unsafe[rows[inside], cols[inside]]
        return ok

    def all_free(self, xy: np.ndarray) -> bool:
        """Whether every point of ``xy`` is free (the samples of one motion)."""
        rows, cols, inside = self.cells(xy)
        return bool(inside.all()) and not self.unsafe[rows, cols].any()

    def segment_free(self, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the straight segment ``a → b`` keeps ``clearance`` everywhere."""
        a, b = np.asarray(a, dtype=float)[:2], np.asarray(b, dtype=float)[:2]
        n = int(math.ceil(float(np.hypot(*(b - a))) / self.sample_step)) + 1
        t = np.linspace(0.0, 1.0, max(n, 2))[:, None]
        return self.all_free(a + t * (b - a))

    def segments_free(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Boolean per segment ``a[i] → b[i]`` (both (M, 2)), checked in one batch."""
        a = np.asarray(a, dtype=float).reshape(-1, 2)
        b = np.asarray(b, dtype=float).reshape(-1, 2)
        if len(a) == 0:
            return np.zeros(0, dtype=bool)
        longest = float(np.max(np.hypot(*(b - a).T)))
        n = max(2, int(math.ceil(longest / self.sample_step)) + 1)
        t = np.linspace(0.0, 1.0, n)[None, :, None]
        pts = a[:, None, :] + t * (b - a)[:, None, :]
        return self.points_free(pts.reshape(-1, 2)).reshape(len(a), n).all(axis=1)
