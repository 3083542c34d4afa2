"""Roadside clutter: buildings, trees, poles, fences, signs and parked cars as static boxes.

A layout (:class:`Clutter`) is plain numpy data, made by a scenario's generator (see
:func:`.town.town_clutter`): one row per box, each of a kind from :data:`KINDS` (its size,
height above the ground and colour). :class:`ClutterBodies` puts a layout into a pybullet
world cheaply:

* rays and contacts do not go through pybullet: its ray test costs a few microseconds
  per box a ray passes, and a street lined with buildings puts dozens of boxes along
  every ray (it cost more than the rest of a step). The world intersects the rays with
  the boxes near the car instead (:meth:`ClutterBodies.table`; slab test, after culling
  the boxes by the bearing they cover: :mod:`.boxcast`) and
  :meth:`ClutterBodies.touching` finds the boxes that touch the car (separating axes).
  Each box answers with an id of its own, of the class STATIC;
* the pictures need bodies: visual ones, pooled per kind, stood on the boxes near the car
  when a picture is taken, so a town of two thousand boxes needs a couple of hundred
  bodies, made once per env, and the camera's TINY renderer, which pays for every
  triangle in the world on every frame, only pays for what is near. A rollout without a
  camera makes none.

A collision with a box is a static collision.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from .boxcast import touching_boxes


@dataclasses.dataclass(frozen=True)
class Kind:
    """A box shape: half extents (metres; x along the street it fronts), the height of
    its centre above the ground, and its colour."""

    name: str
    half: tuple[float, float, float]
    z: float
    rgba: tuple[float, float, float, float]


_BUILDINGS = [  # (half width along the street, half depth, half height), facade colour
    ((6.0, 6.0, 4.0), (0.82, 0.74, 0.6, 1)),
    ((9.0, 6.5, 5.0), (0.7, 0.7, 0.72, 1)),
    ((11.0, 8.0, 7.0), (0.62, 0.32, 0.25, 1)),
    ((7.0, 7.0, 10.0), (0.45, 0.52, 0.62, 1)),
    ((10.0, 9.0, 3.5), (0.86, 0.8, 0.62, 1)),
    ((5.0, 6.0, 6.0), (0.93, 0.93, 0.9, 1)),
    ((12.0, 7.0, 13.0), (0.3, 0.33, 0.38, 1)),
    ((8.0, 8.0, 5.5), (0.78, 0.48, 0.33, 1)),
]
#: Every kind of box. Buildings come first (``BUILDINGS`` indexes them).
KINDS: tuple[Kind, ...] = (
    *(Kind(f"building{i}", h, h[2], c) for i, (h, c) in enumerate(_BUILDINGS)),
    Kind("trunk", (0.2, 0.2, 1.5), 1.5, (0.4, 0.27, 0.15, 1)),
    Kind("crown", (1.6, 1.6, 1.5), 4.2, (0.2, 0.45, 0.18, 1)),
    Kind("lamp", (0.12, 0.12, 3.5), 3.5, (0.35, 0.35, 0.38, 1)),
    Kind("fence", (6.0, 0.05, 0.6), 0.6, (0.55, 0.45, 0.35, 1)),
    Kind("parked_blue", (2.25, 0.95, 0.75), 0.95, (0.2, 0.3, 0.6, 1)),
    Kind("parked_silver", (2.25, 0.95, 0.75), 0.95, (0.72, 0.72, 0.75, 1)),
    Kind("parked_red", (2.25, 0.95, 0.75), 0.95, (0.6, 0.12, 0.1, 1)),
    Kind("sign_pole", (0.05, 0.05, 1.1), 1.1, (0.6, 0.6, 0.6, 1)),
    Kind("stop_plate", (0.04, 0.35, 0.35), 2.5, (0.85, 0.08, 0.08, 1)),
    Kind("light_pole", (0.1, 0.1, 1.5), 1.5, (0.2, 0.2, 0.2, 1)),
)
KIND = {k.name: i for i, k in enumerate(KINDS)}
BUILDINGS = tuple(range(len(_BUILDINGS)))
PARKED = tuple(KIND[n] for n in ("parked_blue", "parked_silver", "parked_red"))
_HALF = np.array([k.half for k in KINDS])
_Z = np.array([k.z for k in KINDS])


@dataclasses.dataclass(frozen=True)
class Clutter:
    """Static boxes: kind (index into :data:`KINDS`), centre ``x``, ``y`` and ``yaw``."""

    kind: np.ndarray  # int
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray

    @classmethod
    def empty(cls) -> Clutter:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0))

    @classmethod
    def of(cls, rows: list[tuple[int, float, float, float]]) -> Clutter:
        a = np.array(rows, dtype=np.float64).reshape(-1, 4)
        return cls(a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3])

    def __len__(self) -> int:
        return len(self.kind)

    def half(self) -> np.ndarray:
        """Half extents ``(n, 3)``."""
        return _HALF[self.kind]

    def footprints(self) -> np.ndarray:
        """The four ground corners of every box, ``(n, 4, 2)``."""
        h = self.half()
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        sx = np.array([1.0, 1.0, -1.0, -1.0]) * h[:, :1]
        sy = np.array([1.0, -1.0, -1.0, 1.0]) * h[:, 1:2]
        return np.stack(
            [self.x[:, None] + c[:, None] * sx - s[:, None] * sy,
             self.y[:, None] + s[:, None] * sx + c[:, None] * sy],
            axis=2,
        )  # fmt: skip


class ClutterBodies:
    """A :class:`Clutter` layout in a pybullet world, around the car: the boxes whose
    centres lie within ``radius`` of the car are *placed* (:meth:`follow`); rays
    (:meth:`table`) and contacts (:meth:`touching`) meet the placed boxes, and each box
    answers with its own id, ``ids + index in the layout`` (the world gives those ids the
    class STATIC). Bodies, pooled per kind and made by ``make(kind)``, stand in the world
    only once a picture is taken (:meth:`show`): a rollout without a camera makes none.
    A pool only grows when more boxes of a kind are placed at once than ever before."""

    def __init__(
        self,
        client,
        make: Callable[[int], int],
        ids: int,
        radius: float,
        margin: float = 15.0,
        park_z: float = -200.0,
    ) -> None:
        self.client, self.make, self.ids = client, make, ids
        self.radius, self.margin, self.park_z = radius, margin, park_z
        self.layout = Clutter.empty()
        self._free: dict[int, list[int]] = {}  # kind -> parked bodies
        self._body = np.zeros(0, dtype=np.int64)  # per box: its body, -1 when none
        self._centre: tuple[float, float] | None = None
        self._placed = np.zeros(0, dtype=np.int64)  # indices of the placed boxes
        self._close = np.zeros(0, dtype=np.int64)  # the placed boxes near the car
        self._close_box = self._placed_box = np.zeros((0, 9))
        self._placed_ids = np.zeros(0, dtype=np.int64)
        self._box = np.zeros((0, 9))  # per box: x, y, cos, sin, hx, hy, z0, z1, radius

    def set_layout(self, layout: Clutter) -> None:
        """Park every body and take a new layout; :meth:`follow` places it."""
        self._release(np.flatnonzero(self._body >= 0))
        self.layout = layout
        self._body = np.full(len(layout), -1, dtype=np.int64)
        self._placed = self._close = np.zeros(0, dtype=np.int64)
        self._close_box = self._placed_box = np.zeros((0, 9))
        self._placed_ids = np.zeros(0, dtype=np.int64)
        self._centre = None
        h = layout.half()
        z = _Z[layout.kind]
        self._box = np.stack(
            [layout.x, layout.y, np.cos(layout.yaw), np.sin(layout.yaw), h[:, 0], h[:, 1],
             z - h[:, 2], z + h[:, 2], np.hypot(h[:, 0], h[:, 1])],
            axis=1,
        )  # fmt: skip

    def follow(self, x: float, y: float) -> None:
        """Place the boxes within ``radius + margin`` of ``(x, y)``, unless the car is
        still within ``margin`` of where this was last done; park the bodies of the boxes
        that are placed no more."""
        if not len(self.layout):
            return
        last = self._centre
        if last is not None and (x - last[0]) ** 2 + (y - last[1]) ** 2 < self.margin**2:
            return
        self._centre = (x, y)
        box = self._box
        near = (box[:, 0] - x) ** 2 + (box[:, 1] - y) ** 2 < (self.radius + self.margin) ** 2
        self._release(np.flatnonzero((self._body >= 0) & ~near))
        self._placed = np.flatnonzero(near)
        # the boxes a car within ``margin`` of here could touch (none is wider than 30 m)
        d2 = (box[self._placed, 0] - x) ** 2 + (box[self._placed, 1] - y) ** 2
        self._close = self._placed[d2 < (self.margin + 20.0) ** 2]
        self._placed_box = box[self._placed]
        self._placed_ids = self.ids + self._placed
        self._close_box = box[self._close]

    def show(self) -> None:
        """Stand a body on every placed box that has none yet, for a picture."""
        reset = self.client.resetBasePositionAndOrientation
        box, kind = self._box, self.layout.kind
        for i in self._placed[self._body[self._placed] < 0].tolist():
            free = self._free.setdefault(int(kind[i]), [])
            b = self._body[i] = free.pop() if free else self.make(int(kind[i]))
            yaw = float(self.layout.yaw[i])
            pose = (float(box[i, 0]), float(box[i, 1]), float(0.5 * (box[i, 6] + box[i, 7])))
            reset(int(b), pose, (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)))

    def _release(self, boxes: np.ndarray) -> None:
        """Take the bodies of ``boxes`` back to their pools, parked out of sight, each at
        its own spot (bodies parked at one point made every ray cast four times slower)."""
        for i in boxes.tolist():
            body = int(self._body[i])
            pose = (10.0 * body, 0.0, self.park_z)
            self.client.resetBasePositionAndOrientation(body, pose, (0.0, 0.0, 0.0, 1.0))
            self._free.setdefault(int(self.layout.kind[i]), []).append(body)
            self._body[i] = -1

    def footprints_near(self, x: float, y: float, distance: float) -> np.ndarray:
        """Ground corners ``(n, 4, 2)`` of the placed boxes within ``distance`` of
        ``(x, y)`` (by their centres), for drawings."""
        idx = self._placed
        box = self._box[idx]
        near = idx[(box[:, 0] - x) ** 2 + (box[:, 1] - y) ** 2 < (distance + box[:, 8]) ** 2]
        lay = self.layout
        return Clutter(lay.kind[near], lay.x[near], lay.y[near], lay.yaw[near]).footprints()

    def placed(self) -> np.ndarray:
        """Indices (in the layout) of the placed boxes."""
        return self._placed

    # --- contacts and rays ------------------------------------------------------------------
    def touching(
        self,
        x: float,
        y: float,
        yaw: float,
        half: tuple[float, float],
        z: tuple[float, float],
        margin: float,
    ) -> list[int]:
        """Ids of the placed boxes that an upright box (centre ``x, y``, ``yaw``, half
        sizes ``half``, from height ``z[0]`` to ``z[1]``) touches or comes within
        ``margin`` of (:func:`.boxcast.touching_boxes`)."""
        hit = touching_boxes(self._close_box, x, y, yaw, half, z, margin)
        return (self.ids + self._close[hit]).tolist()

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """The placed boxes as rows for :func:`.boxcast.cast_boxes`, and their ids."""
        return self._placed_box, self._placed_ids
