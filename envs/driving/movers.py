"""The world's pooled vehicles, pedestrians and obstacles as upright boxes: what rays and
the car's contacts meet, and the bodies that pictures show.

The traffic, the pedestrians and the obstacles are where the Python models say; each is
an upright box (a row as :mod:`.boxcast` takes it: centre, heading, half sizes, heights)
that answers rays and contacts with its pybullet body's id, as the roadside clutter's
boxes do with theirs. pybullet is only asked for pictures: :meth:`MovingBoxes.show` stands
the bodies near the car where their boxes are, just before a camera image (or on every
step with the GUI), so a rollout without a camera never poses one. Asking pybullet for
rays and contacts instead cost a pose per body near the car per step and about as much
again in its ray test.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .boxcast import _jit, numba, touching_boxes

#: Where an inactive box stands (x and y, metres): beyond every sensor's reach.
FAR = 1e7


def quat(yaw: float) -> tuple[float, float, float, float]:
    """pybullet's quaternion of a rotation by ``yaw`` about the vertical."""
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


class MovingBoxes:
    """Boxes for the pybullet ``bodies`` (pooled, in pools of consecutive rows), each with
    its half extents (``half``, ``n × 3``); none is active until :meth:`place` says so."""

    def __init__(
        self, client, bodies: Sequence[int], half: np.ndarray, park_z: float, reach: float
    ) -> None:
        self.client, self.park_z, self.reach = client, park_z, reach
        self.ids = np.asarray(bodies, dtype=np.int64)
        self.half = np.asarray(half, dtype=np.float64).reshape(-1, 3)
        n = len(self.ids)
        #: x, y, cos, sin, hx, hy, z0, z1, radius per body; an inactive one stands far
        #: away (FAR), where rays and contacts pass it by at the cost of a distance test
        self.box = np.zeros((n, 9))
        self.box[:, 0] = self.box[:, 1] = FAR
        self.box[:, 4:6] = self.half[:, :2]
        self.box[:, 8] = np.hypot(self.half[:, 0], self.half[:, 1])
        self.yaw = np.zeros(n)
        self.active = np.zeros(n, dtype=bool)
        self._row = {int(b): i for i, b in enumerate(self.ids)}
        self._parked = np.ones(n, dtype=bool)  # bodies start far below the ground

    def place(self, bodies: Sequence[int], x, y, yaw, active, z: float) -> None:
        """Boxes of the pool ``bodies`` at ``x, y, yaw`` (arrays over the pool), centred
        ``z`` above the ground, where ``active``; the others are in no ray's way."""
        if not len(bodies):
            return
        i = self._row[int(bodies[0])]
        j = i + len(bodies)
        _fill(self.box[i:j], self.yaw[i:j], self.active[i:j], np.asarray(x, np.float64),
              np.asarray(y, np.float64), np.asarray(yaw, np.float64),
              np.asarray(active, np.bool_), float(z), self.half[i:j, 2])  # fmt: skip

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every box as rows for :func:`.boxcast.cast_boxes` (the inactive ones far away),
        and their body ids."""
        return self.box, self.ids

    def touching(self, x, y, yaw, half, z, margin: float) -> list[int]:
        """Body ids of the active boxes an upright box touches or comes within ``margin``
        of (:func:`.boxcast.touching_boxes`)."""
        rows, ids = self.table()
        return ids[touching_boxes(rows, x, y, yaw, half, z, margin)].tolist()

    def pose(self, body: int) -> tuple[float, float, float] | None:
        """``(x, y, yaw)`` of a body's box, or None when it is not active."""
        i = self._row[int(body)]
        if not self.active[i]:
            return None
        return float(self.box[i, 0]), float(self.box[i, 1]), float(self.yaw[i])

    def show(self, x: float, y: float, everything: bool = False) -> None:
        """Stand the bodies of the active boxes within ``reach`` of ``(x, y)`` (every one,
        with ``everything``) where their boxes are, for a picture, and park the others far
        below the ground, each once and at its own spot."""
        box = self.box
        near = self.active.copy()
        if not everything:
            near &= (np.abs(box[:, 0] - x) < self.reach) & (np.abs(box[:, 1] - y) < self.reach)
        reset = self.client.resetBasePositionAndOrientation
        for i in np.flatnonzero(near).tolist():
            z = 0.5 * (box[i, 6] + box[i, 7])
            reset(int(self.ids[i]), (box[i, 0], box[i, 1], z), quat(float(self.yaw[i])))
        for i in np.flatnonzero(~near & ~self._parked).tolist():
            reset(int(self.ids[i]), (0.0, 0.0, self.park_z - 10.0 * i), quat(0.0))
        self._parked = ~near


def _fill_loop(box, yaws, actives, x, y, yaw, active, z, half_z) -> None:
    """Rows of :attr:`MovingBoxes.box` (and their yaws and active flags) for a pool, in
    one pass (compiled by numba where it is installed): the many small array operations
    it replaces cost more than the traffic's whole step."""
    for k in range(len(box)):
        box[k, 0] = x[k] if active[k] else FAR
        box[k, 1] = y[k] if active[k] else FAR
        box[k, 2], box[k, 3] = math.cos(yaw[k]), math.sin(yaw[k])
        box[k, 6], box[k, 7] = z - half_z[k], z + half_z[k]
        yaws[k], actives[k] = yaw[k], active[k]


_fill = _fill_loop if numba is None else _jit(_fill_loop)
