"""The stack's reference line: the route, with each junction turn the car cannot drive
replaced by one it can.

The world joins lanes across a junction with a quadratic Bézier curve. With equal legs its
curvature is highest at the apex, √2 / leg: on the 4-way junction's right turns (6.25 m
legs) a radius of 4.4 m, tighter than the car's 4.9 m (2.7 m wheelbase, 0.5 rad of
steering). A plan on that line asks for more steering at the apex than the car has: the
car falls behind it and turns out of the apex with its nose further across the exit
road, towards the car waiting at that road's stop line. The circular arc tangent to the
same two lane lines at the same points (a fillet) bends at 1 / leg everywhere: a 6.25 m
radius, which the car can follow, 0.4 m outside the curve's apex. Traffic moves along the
lanes themselves, so only the stack's plans change."""

from __future__ import annotations

import math

import numpy as np

from pilot.envs.driving.layouts import min_turn_radius
from pilot.envs.driving.roads import RoadNetwork
from pilot.envs.driving.routes import Route

#: Arc-length spacing of the fillet's vertices (m).
SPACING = 0.5


def fillet(a: np.ndarray, da: np.ndarray, b: np.ndarray, db: np.ndarray) -> np.ndarray | None:
    """Points from ``a`` (heading along the unit vector ``da``) to ``b`` (arriving along
    ``db``): straight on along the longer leg, then the circular arc tangent to both lane
    lines at the shorter leg's length from where they meet. None when the lines are
    parallel or meet behind ``a`` or beyond ``b``."""
    cross = float(da[0] * db[1] - da[1] * db[0])
    if abs(cross) < 1e-9:
        return None
    r = b - a  # a + t da = b - u db
    t = float(r[0] * db[1] - r[1] * db[0]) / cross
    u = float(da[0] * r[1] - da[1] * r[0]) / cross
    if t <= 0.0 or u <= 0.0:
        return None
    corner = a + t * da
    leg = min(t, u)
    turn = math.atan2(cross, float(da @ db))  # signed, left positive
    radius = leg / math.tan(0.5 * abs(turn))
    start = corner - leg * da
    side = math.copysign(1.0, turn)
    centre = start + side * radius * np.array([-da[1], da[0]])
    n = max(int(math.ceil(radius * abs(turn) / SPACING)), 2)
    phi0 = math.atan2(start[1] - centre[1], start[0] - centre[0])
    phi = phi0 + np.linspace(0.0, turn, n + 1)
    arc = centre + radius * np.stack([np.cos(phi), np.sin(phi)], axis=-1)
    head = [a] if t - leg > 1e-6 else []
    tail = [b] if u - leg > 1e-6 else []
    return np.array([*head, *arc, *tail])


def drivable(route: Route, net: RoadNetwork, radius: float) -> Route:
    """``route`` with each junction connector it drives whose sharpest bend is tighter than
    ``radius`` replaced by its :func:`fillet`, where that is wider; ``route`` itself when
    none is."""
    points = route.points
    pieces, at = [], 0
    for lane_id in route.lanes:
        lane = net.lanes[lane_id]
        c = lane.centre
        if lane.kind != "junction" or len(c) < 3 or min_turn_radius(c) >= radius:
            continue
        i = _vertex(points, c[0], at)
        j = _vertex(points, c[-1], i if i is not None else at)
        if i is None or j is None or i == 0 or j + 1 == len(points):
            continue  # the route starts or ends inside this connector, or at its ends
        # the lane lines: the last segment before the connector and the first after it
        da, db = points[i] - points[i - 1], points[j + 1] - points[j]
        bend = fillet(c[0], da / np.hypot(*da), c[-1], db / np.hypot(*db))
        if bend is None or min_turn_radius(bend) <= min_turn_radius(c):
            continue
        pieces += [points[at:i], bend]
        at = j + 1
    if not pieces:
        return route
    return Route(route.lanes, np.concatenate([*pieces, points[at:]]))


def _vertex(points: np.ndarray, p: np.ndarray, start: int) -> int | None:
    """Index of the route vertex at ``p`` (within a millimetre), from ``start`` on."""
    near = np.flatnonzero(np.hypot(*(points[start:] - p).T) < 1e-3)
    return int(near[0]) + start if len(near) else None
