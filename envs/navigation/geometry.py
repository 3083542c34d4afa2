"""Grid geometry the navigation envs need every step: legal moves, shortest-path distances,
ray casting and disc collisions.

Conventions follow the Moving AI benchmark and :mod:`pilot.envs.navigation.maps`: cells
are ``(row, col)`` of a boolean ``blocked`` array, a cell moves to its 8 neighbours,
straight moves cost 1 and diagonal ones √2, and a diagonal move is legal only when both
cells it squeezes between are free (no corner cutting). The continuous frame is metres
with one cell = 1 m: ``x`` along the columns and ``y`` along the rows, so cell
``(row, col)`` covers ``x ∈ [col, col + 1)``, ``y ∈ [row, row + 1)``; headings are
measured from +x towards +y. Outside the map counts as blocked everywhere.

The distance field lives here rather than being imported from ``pilot.planning`` because
environments import nothing from the planners (the planners are what gets compared
against the environments, so they must not share code that could hide a bug in both).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

#: A boolean occupancy grid: a numpy array, or nested lists from its ``tolist()``.
Grid = np.ndarray | Sequence[Sequence[bool]]

SQRT2 = math.sqrt(2.0)

#: The 8 grid actions as ``(drow, dcol)``, clockwise from north (row - 1).
MOVES: tuple[tuple[int, int], ...] = (
    (-1, 0),  # 0 N
    (-1, 1),  # 1 NE
    (0, 1),  # 2 E
    (1, 1),  # 3 SE
    (1, 0),  # 4 S
    (1, -1),  # 5 SW
    (0, -1),  # 6 W
    (-1, -1),  # 7 NW
)
MOVE_NAMES: tuple[str, ...] = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


def is_free(blocked: Grid, row: int, col: int) -> bool:
    """Whether ``(row, col)`` lies on the map and is passable."""
    return 0 <= row < len(blocked) and 0 <= col < len(blocked[0]) and not blocked[row][col]


def can_move(blocked: Grid, row: int, col: int, drow: int, dcol: int) -> bool:
    """Whether the move ``(drow, dcol)`` from ``(row, col)`` is legal: the target is free
    and, for a diagonal, both orthogonal neighbours it passes between are free too.
    ``blocked`` may be a boolean array or its ``tolist()`` (faster in per-step loops)."""
    if not is_free(blocked, row + drow, col + dcol):
        return False
    if drow and dcol:
        return is_free(blocked, row + drow, col) and is_free(blocked, row, col + dcol)
    return True


def distance_field(blocked: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Octile shortest-path distance from every cell to ``goal`` (``inf`` if unreachable).

    Dijkstra from the goal. Legality of a move is symmetric (a diagonal needs the same two
    orthogonal cells both ways), so distances *from* the goal equal distances *to* it.
    A blocked goal gives an all-``inf`` field.
    """
    blocked = np.asarray(blocked, dtype=bool)
    h, w = blocked.shape
    dist = np.full((h, w), np.inf)
    gr, gc = int(goal[0]), int(goal[1])
    if not is_free(blocked, gr, gc):
        return dist
    # Pad by one blocked cell so the loop never tests a border.
    free = np.zeros((h + 2, w + 2), dtype=bool)
    free[1:-1, 1:-1] = ~blocked
    free_flat = free.ravel().tolist()
    stride = w + 2
    straight = [(-stride, 1.0), (1, 1.0), (stride, 1.0), (-1, 1.0)]
    diagonal = [
        (-stride + 1, -stride, 1),
        (stride + 1, stride, 1),
        (stride - 1, stride, -1),
        (-stride - 1, -stride, -1),
    ]
    best = [math.inf] * ((h + 2) * (w + 2))
    start = (gr + 1) * stride + gc + 1
    best[start] = 0.0
    heap = [(0.0, start)]
    while heap:
        d, i = heapq.heappop(heap)
        if d > best[i]:
            continue
        for off, cost in straight:
            j = i + off
            if free_flat[j] and d + cost < best[j]:
                best[j] = d + cost
                heapq.heappush(heap, (d + cost, j))
        for off, a, b in diagonal:
            j = i + off
            nd = d + SQRT2
            if free_flat[j] and free_flat[i + a] and free_flat[i + b] and nd < best[j]:
                best[j] = nd
                heapq.heappush(heap, (nd, j))
    padded = np.array(best).reshape(h + 2, w + 2)
    dist[:] = padded[1:-1, 1:-1]
    return dist


def cast_ray(blocked: Grid, x: float, y: float, angle: float, max_range: float) -> float:
    """Distance from ``(x, y)`` along heading ``angle`` to the first blocked cell or the
    map's edge, capped at ``max_range``.

    Exact grid traversal (Amanatides & Woo 1987, "A fast voxel traversal algorithm"): the
    ray visits every cell it crosses, so the distance is exact up to floating point, with
    no sampling step to tune. A ray that starts inside a blocked cell returns 0.
    ``blocked`` may be a boolean array or, faster in this cell-by-cell loop, its
    ``tolist()``.
    """
    h, w = len(blocked), len(blocked[0])
    col, row = math.floor(x), math.floor(y)
    if not (0 <= row < h and 0 <= col < w) or blocked[row][col]:
        return 0.0
    dx, dy = math.cos(angle), math.sin(angle)
    if abs(dx) < 1e-12:
        step_c, t_next_c, t_delta_c = 0, math.inf, math.inf
    else:
        step_c = 1 if dx > 0 else -1
        t_next_c = ((col + (dx > 0)) - x) / dx
        t_delta_c = 1.0 / abs(dx)
    if abs(dy) < 1e-12:
        step_r, t_next_r, t_delta_r = 0, math.inf, math.inf
    else:
        step_r = 1 if dy > 0 else -1
        t_next_r = ((row + (dy > 0)) - y) / dy
        t_delta_r = 1.0 / abs(dy)
    while True:
        if t_next_c < t_next_r:
            t = t_next_c
            t_next_c += t_delta_c
            col += step_c
        else:
            t = t_next_r
            t_next_r += t_delta_r
            row += step_r
        if t >= max_range:
            return float(max_range)
        if not (0 <= row < h and 0 <= col < w) or blocked[row][col]:
            return float(t)


def disc_collides(blocked: Grid, x: float, y: float, radius: float) -> bool:
    """Whether a disc of ``radius`` centred at ``(x, y)`` overlaps a blocked cell or
    reaches outside the map (touching exactly is not a collision). ``blocked`` as in
    :func:`cast_ray`."""
    h, w = len(blocked), len(blocked[0])
    r2 = radius * radius
    for row in range(math.floor(y - radius), math.floor(y + radius) + 1):
        for col in range(math.floor(x - radius), math.floor(x + radius) + 1):
            if 0 <= row < h and 0 <= col < w and not blocked[row][col]:
                continue
            nx = min(max(x, col), col + 1)  # nearest point of the cell's square
            ny = min(max(y, row), row + 1)
            if (nx - x) ** 2 + (ny - y) ** 2 < r2:
                return True
    return False


def wrap_angle(angle: float) -> float:
    """``angle`` in ``[-π, π)``."""
    return (angle + math.pi) % (2.0 * math.pi) - math.pi
