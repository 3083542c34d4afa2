"""Rear watch of a learned stack whose network reads the lidar: cars behind the car, from
the raw returns.

The perception grid reaches only a few metres behind the car (``GridConfig.behind``), so
a network sees nothing that closes from behind, and a lane change plans into a faster
car it cannot see. The lidar sweeps all round: its returns above the ground are grouped
into objects, and each object wholly behind the car's rear bumper and on the road (the
known map) becomes a vehicle box whose front is its nearest return. The stack tracks
them like the network's boxes (velocity from frame to frame) and drops any that a
network box already holds (:func:`.learned.apart`), so a car the grid sees stays the
network's.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from pilot.envs.driving.traffic import VEHICLE_LENGTH, VEHICLE_WIDTH
from pilot.envs.driving.world import CLASS_NAMES
from pilot.perception.labels import BOX_FIELDS
from pilot.perception.sensors import lidar_points

VEHICLE = CLASS_NAMES.index("vehicle")
#: Returns lower than this (m above the ground) are the ground's.
GROUND = 0.3
#: Returns within this many metres along the car's axis and across it of another group's
#: are the same object's: a car's side, sampled at grazing angles, gives returns a metre
#: or two apart along it, and its roof returns sit behind its front face; cars in
#: neighbouring lanes are 3.5 m apart across.
LINK = (2.5, 1.0)


def groups(points: np.ndarray, link: tuple[float, float] = LINK) -> np.ndarray:
    """Connected groups of ego-frame ``(n, 2)`` points: a label per point (0, 1, ...),
    points within ``link`` (along, across; an ellipse) of each other, directly or
    through others, sharing one (single linkage)."""
    n = len(points)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    pairs = cKDTree(np.asarray(points) / np.asarray(link)).query_pairs(1.0, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def rear_boxes(
    ranges: np.ndarray,
    lidar,
    pose: tuple[float, float, float],
    net,
    reach: float,
    rear: float = 0.5 * VEHICLE_LENGTH + 0.15,
) -> np.ndarray:
    """Ego-frame vehicle boxes (rows :data:`BOX_FIELDS`, velocities 0) of what the lidar
    (``lidar``, its sweep ``ranges``) sees behind the car at ``pose``: returns beside or
    behind it, within ``reach`` metres of its centre, above the ground, grouped
    (:func:`groups`). A group that lies wholly more than ``rear`` metres behind the
    car's centre (one that reaches alongside is on the grid, the network's) and whose
    centre is on the road (``net.locate``) gives a car-sized box aligned with the ego:
    its front at the group's nearest point (so not a front pinned where a cut would put
    it, which would move with the car); across, its near side at the group's return
    nearest the ego's axis (a car to one side shows that side), or centred on the group
    where it straddles the axis (one right behind shows its front)."""
    r = np.asarray(ranges, dtype=np.float64)
    pts = lidar_points(lidar, r)
    keep = (r < lidar.spec.max_range - 1e-3) & (pts[:, 2] > GROUND)
    keep &= pts[:, 0] < 0.5 * VEHICLE_LENGTH
    keep &= np.hypot(pts[:, 0], pts[:, 1]) <= reach
    xy = pts[keep, :2]
    out = []
    x0, y0, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    label = groups(xy)
    for g in range(label.max() + 1 if len(label) else 0):
        part = xy[label == g]
        front = float(part[:, 0].max())
        if front > -rear:
            continue
        cx, cy = float(part[:, 0].mean()), float(part[:, 1].mean())
        if not net.locate(x0 + c * cx - s * cy, y0 + s * cx + c * cy).on_road:
            continue
        low, high = float(part[:, 1].min()), float(part[:, 1].max())
        if low > 0.0:  # all to the left: its right side is the one seen
            y = low + 0.5 * VEHICLE_WIDTH
        elif high < 0.0:
            y = high - 0.5 * VEHICLE_WIDTH
        else:
            y = 0.5 * (low + high)
        out.append((front - 0.5 * VEHICLE_LENGTH, y, 0.0, VEHICLE_LENGTH, VEHICLE_WIDTH, 0, 0))
    return np.array(out, dtype=np.float64).reshape(-1, len(BOX_FIELDS))
