"""Sensors of the navigation envs: small classes with ``space()`` and ``observe(state)``.

An env holds a name → sensor table; its observation is either the ``spaces.Dict`` of the
sensors or their concatenation into one flat ``Box`` (the default, because an MLP that
sees all inputs together in its first layer learns the interaction "where is the goal"
× "where are the walls" that navigation is about, whereas ``pilot.agents``' multi-input
torso encodes each key apart and meets them only in its last, linear layer).

All outputs are float32 and normalised to ``[-1, 1]`` or ``[0, 1]``, with fixed sizes that
do not depend on the map, so one policy runs on maps of any size.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from gymnasium import spaces

from .geometry import cast_ray
from .maps import GridMap


@dataclasses.dataclass
class GridState:
    """What grid sensors read: the map, the robot's cell and the goal cell as ``(row, col)``,
    and how many steps the robot has spent in each cell this episode."""

    grid: GridMap
    cell: tuple[int, int]
    goal: tuple[int, int]
    visits: np.ndarray | None = None


@dataclasses.dataclass
class PoseState:
    """What continuous sensors read: the map, the pose ``(x, y, yaw)`` and the goal ``(x, y)``
    in metres (``x`` along the columns, ``y`` along the rows, yaw from +x towards +y), and
    the last step's clipped action and whether it ended in a collision (1.0) or not."""

    grid: GridMap
    pose: tuple[float, float, float]
    goal: tuple[float, float]
    last: tuple[float, float, float] = (0.0, 0.0, 0.0)  # last command (scaled), collided


class _Window:
    """A square ``(2r+1) × (2r+1)`` float window around the robot's cell."""

    def __init__(self, radius: int) -> None:
        if radius < 1:
            raise ValueError("the window radius must be at least 1")
        self.radius = int(radius)

    @property
    def size(self) -> int:
        return 2 * self.radius + 1

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.size, self.size), np.float32)


class OccupancyWindow(_Window):
    """An egocentric ``(2r+1) × (2r+1)`` patch of the occupancy grid centred on the robot.

    1 = blocked or outside the map, 0 = free. The window is aligned with the map (north
    up), like the 8 grid actions, so an action always moves the robot one cell in the same
    direction within the window. Local views are what lets a policy generalise to maps it
    has never seen: the same few obstacle patterns recur on every map.
    """

    def __init__(self, radius: int) -> None:
        super().__init__(radius)
        self._padded: np.ndarray | None = None
        self._for: GridMap | None = None

    def observe(self, state: GridState) -> np.ndarray:
        if self._for is not state.grid:  # pad once per map, then every step is one slice
            r = self.radius
            h, w = state.grid.blocked.shape
            padded = np.ones((h + 2 * r, w + 2 * r), dtype=np.float32)
            padded[r : r + h, r : r + w] = state.grid.blocked
            self._padded, self._for = padded, state.grid
        row, col = state.cell
        return self._padded[row : row + self.size, col : col + self.size].copy()


class VisitWindow(_Window):
    """The same egocentric window as :class:`OccupancyWindow`, holding how often the robot
    has been in each cell this episode: ``min(steps spent there / saturation, 1)``.

    Why: on a fixed map every observation of a memoryless sensor is a function of the
    robot's cell, so a deterministic policy that once steps back to a cell (or bumps into
    a wall, which leaves it in place) repeats itself until the time limit. The visit
    counts change on every step, including a bump, which gives the policy the one piece
    of memory it needs to leave such a loop. Off-map cells read 0.
    """

    def __init__(self, radius: int, saturation: int = 4) -> None:
        super().__init__(radius)
        if saturation < 1:
            raise ValueError("the saturation must be at least 1")
        self.saturation = float(saturation)

    def observe(self, state: GridState) -> np.ndarray:
        if state.visits is None:
            return np.zeros((self.size, self.size), dtype=np.float32)
        h, w = state.visits.shape
        r, (row, col) = self.radius, state.cell
        r0, r1 = max(row - r, 0), min(row + r + 1, h)
        c0, c1 = max(col - r, 0), min(col + r + 1, w)
        patch = state.visits[r0:r1, c0:c1]
        if patch.shape != (self.size, self.size):  # near the edge: off-map cells read 0
            out = np.zeros((self.size, self.size), dtype=np.float32)
            out[r0 - row + r : r1 - row + r, c0 - col + r : c1 - col + r] = patch
            patch = out
        return np.minimum(patch * np.float32(1.0 / self.saturation), np.float32(1.0))


class GoalVector:
    """Where the goal lies relative to the robot's cell, in five numbers.

    ``[drow / d, dcol / d, min(d / scale, 1), clip(drow / r), clip(dcol / r)]`` with ``d``
    the straight-line distance in cells: the unit direction says which way to head
    wherever the goal is, the clipped offsets pin it down exactly once it is within ``r``
    cells (the window's radius), and the scaled distance says how far it still is.
    """

    def __init__(self, radius: int, scale: float) -> None:
        self.radius = float(radius)
        self.scale = float(scale)

    def space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (5,), np.float32)

    def observe(self, state: GridState) -> np.ndarray:
        dr = float(state.goal[0] - state.cell[0])
        dc = float(state.goal[1] - state.cell[1])
        d = math.hypot(dr, dc)
        ur, uc = (dr / d, dc / d) if d > 0 else (0.0, 0.0)
        r = self.radius
        out = [ur, uc, min(d / self.scale, 1.0), dr / r, dc / r]
        # clipped in Python: np.clip costs more than the rest of the step on 5 numbers
        return np.array([min(max(v, -1.0), 1.0) for v in out], dtype=np.float32)


class RangeSensor:
    """A planar range finder: ``n_rays`` rays cast on the grid from the robot's centre.

    Rays span ``fov`` radians centred on the heading (a full circle puts ray 0 straight
    ahead and goes on towards +yaw). Each reading is the exact distance to the first
    blocked cell or the map's edge (see :func:`~pilot.envs.navigation.geometry.cast_ray`),
    capped at ``max_range`` and divided by it, so 1 means "nothing within range".
    """

    def __init__(self, n_rays: int, max_range: float, fov: float = 2.0 * math.pi) -> None:
        if n_rays < 1 or max_range <= 0 or not 0 < fov <= 2.0 * math.pi + 1e-9:
            raise ValueError("need n_rays >= 1, max_range > 0 and 0 < fov <= 2π")
        self.n_rays = int(n_rays)
        self.max_range = float(max_range)
        self.fov = float(fov)
        if fov >= 2.0 * math.pi - 1e-9:
            self.angles = 2.0 * math.pi * np.arange(n_rays) / n_rays
        elif n_rays == 1:
            self.angles = np.zeros(1)
        else:
            self.angles = np.linspace(-fov / 2.0, fov / 2.0, n_rays)
        self._angles = self.angles.tolist()
        self._rows: list[list[bool]] = []
        self._for: GridMap | None = None

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.n_rays,), np.float32)

    def ranges(self, state: PoseState) -> np.ndarray:
        """Distances in metres (float64), one per ray."""
        x, y, yaw = state.pose
        if self._for is not state.grid:  # nested lists index faster in the traversal loop
            self._rows, self._for = state.grid.blocked.tolist(), state.grid
        rows, reach = self._rows, self.max_range
        return np.array([cast_ray(rows, x, y, yaw + a, reach) for a in self._angles])

    def observe(self, state: PoseState) -> np.ndarray:
        return (self.ranges(state) / self.max_range).astype(np.float32)


class Odometry:
    """What the robot knows about its own last step: ``[speed / max_speed,
    turn rate / max_turn_rate, collided]``.

    Why: ranges and goal bearing are the same before and after a step that ran into a
    wall, so a deterministic policy that drives into a wall once would push against it
    until the time limit; the collision flag and the last command make that step's
    outcome visible. Reset reads all zeros.
    """

    def space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (3,), np.float32)

    def observe(self, state: PoseState) -> np.ndarray:
        return np.array(state.last, dtype=np.float32)


class RelativeGoal:
    """The goal in the robot's frame: ``[cos β, sin β, min(d / scale, 1)]`` for bearing β
    (0 = straight ahead, positive towards +yaw) and distance ``d`` in metres."""

    def __init__(self, scale: float) -> None:
        self.scale = float(scale)

    def space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (3,), np.float32)

    def observe(self, state: PoseState) -> np.ndarray:
        x, y, yaw = state.pose
        dx, dy = state.goal[0] - x, state.goal[1] - y
        d = math.hypot(dx, dy)
        bearing = math.atan2(dy, dx) - yaw if d > 1e-9 else 0.0
        out = [math.cos(bearing), math.sin(bearing), min(d / self.scale, 1.0)]
        return np.clip(np.array(out, dtype=np.float32), -1.0, 1.0)
