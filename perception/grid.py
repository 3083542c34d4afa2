"""The BEV grid shared by labels, the lidar histogram and the metrics.

Ego frame (DESIGN.md): x forward, y left, z up, metres, origin at the ego's centre on the
ground. The grid covers ``x in [-behind, ahead]`` and ``y in [-side, side]``; row 0 is the
far edge ahead, column 0 the left edge, so an image of the grid shows the road the way the
driver sees it from above, heading up. Cell ``(r, c)`` has its centre at
``x = ahead - (r + 0.5) * resolution`` and ``y = side - (c + 0.5) * resolution``.

The default, 28 m ahead, 4 m behind and 16 m to each side at 0.25 m (128 × 128 cells),
follows TransFuser's 32 m × 32 m grid but keeps the ego's own footprint (4.5 m long) inside
it; 28 m is about 3 s ahead at the urban 10 m/s and past the 30 m at which the expert
brakes for a light, and 0.25 m still gives a pedestrian (0.5 m × 0.6 m) two cells a side.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pilot.config import field


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Extent and resolution of the BEV grid (metres)."""

    resolution: float = field(0.25, "metres per cell side")
    ahead: float = field(28.0, "metres of grid ahead of the ego's centre")
    behind: float = field(4.0, "metres of grid behind the ego's centre")
    side: float = field(16.0, "metres of grid to the left and to the right of the ego")

    def __post_init__(self) -> None:
        if self.resolution <= 0 or self.side <= 0 or self.ahead + self.behind <= 0:
            raise ValueError("need resolution > 0, side > 0 and ahead + behind > 0")
        for name, span in (
            ("ahead + behind", self.ahead + self.behind),
            ("2 × side", 2 * self.side),
        ):
            cells = span / self.resolution
            if abs(cells - round(cells)) > 1e-6:
                raise ValueError(f"{name} ({span:g} m) must be a whole number of cells")

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        r = self.resolution
        return round((self.ahead + self.behind) / r), round(2 * self.side / r)

    def cell(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column (int, possibly outside the grid) of ego-frame points."""
        r = self.resolution
        row = np.floor((self.ahead - np.asarray(x)) / r).astype(np.int64)
        col = np.floor((self.side - np.asarray(y)) / r).astype(np.int64)
        return row, col

    def inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether ego-frame points lie on the grid."""
        row, col = self.cell(x, y)
        rows, cols = self.shape
        return (row >= 0) & (row < rows) & (col >= 0) & (col < cols)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Ego-frame ``x`` of every row's centres and ``y`` of every column's."""
        rows, cols = self.shape
        r = self.resolution
        return self.ahead - (np.arange(rows) + 0.5) * r, self.side - (np.arange(cols) + 0.5) * r

    def radius(self) -> float:
        """Distance from the ego's centre to the farthest grid corner."""
        return math.hypot(max(self.ahead, self.behind), self.side)


def ego_xy(points, pose: tuple[float, float, float]) -> np.ndarray:
    """World points ``(..., 2)`` seen from ``pose`` ``(x, y, yaw)``: ``(..., 2)`` float64
    ``(forward, left)`` in the ego frame."""
    x0, y0, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    p = np.asarray(points, dtype=np.float64)
    dx, dy = p[..., 0] - x0, p[..., 1] - y0
    return np.stack([c * dx + s * dy, -s * dx + c * dy], axis=-1)


def in_footprint(points, box) -> np.ndarray:
    """Whether points ``(..., 2)`` lie in the footprint of ``box`` (``x, y, yaw, length,
    width`` in the points' frame), edges included."""
    local = np.abs(ego_xy(points, box[:3]))  # along and across the box
    return (local[..., 0] <= 0.5 * box[3]) & (local[..., 1] <= 0.5 * box[4])


def fill_boxes(mask: np.ndarray, grid: GridConfig, boxes: np.ndarray, value: int = 1) -> np.ndarray:
    """Set the cells whose centres lie inside any of ``boxes`` (rows ``x, y, yaw, length,
    width``, ego frame) and the cell of every box's centre, so an object smaller than a
    cell never vanishes. Exact in numpy rather than cv2's polygon fill, which also paints
    the cells its edges touch: a label a test can compute by hand."""
    xs, ys = grid.centres()
    rows, cols = grid.shape
    for box in np.asarray(boxes, dtype=np.float64)[:, :5]:
        x, y, _, length, width = box
        reach = 0.5 * math.hypot(length, width)
        r0, c0 = grid.cell(x + reach, y + reach)
        r1, c1 = grid.cell(x - reach, y - reach)
        r0, c0 = max(int(r0), 0), max(int(c0), 0)
        r1, c1 = min(int(r1), rows - 1), min(int(c1), cols - 1)
        if r0 <= r1 and c0 <= c1:
            centres = np.stack(
                np.broadcast_arrays(xs[r0 : r1 + 1, None], ys[None, c0 : c1 + 1]), -1
            )
            mask[r0 : r1 + 1, c0 : c1 + 1][in_footprint(centres, box)] = value
        if grid.inside(x, y):
            r, c_ = grid.cell(x, y)
            mask[int(r), int(c_)] = value
    return mask


def lidar_histogram(points: np.ndarray, grid: GridConfig, split_height: float) -> np.ndarray:
    """TransFuser's lidar BEV: returns per cell in two height bands, ``[0]`` below
    ``split_height`` (mostly the ground) and ``[1]`` at or above it (anything standing on
    it), uint8 ``(2, rows, cols)`` counts clipped at 255. ``points`` are ego-frame
    ``(n, 3)`` returns, ``z`` above the ground."""
    rows, cols = grid.shape
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    row, col = grid.cell(pts[:, 0], pts[:, 1])
    ok = (row >= 0) & (row < rows) & (col >= 0) & (col < cols)
    band = (pts[:, 2] >= split_height).astype(np.int64)
    index = (band * rows + row) * cols + col
    counts = np.bincount(index[ok], minlength=2 * rows * cols)
    return np.minimum(counts, 255).astype(np.uint8).reshape(2, rows, cols)
