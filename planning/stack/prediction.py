"""Prediction: every object rolled forward at constant velocity, its footprint covered by
discs that spread along its motion as time goes on (uncertainty in its speed).

Given the map (as on CARLA's map track), a moving vehicle is rolled along its lane
instead of in a straight line: its speed along the lane and across it are kept, so it
follows the lane's bends and a lane change under way goes on. Past its lane's end it goes
on into the one successor there is, or straight on where there are several (which one it
takes is not known until it is in the junction). A vehicle already in a junction, where
the connectors overlap, is rolled along every connector it may be on: those whose heading
is as near its own as the best aligned one's."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pilot.envs.driving.roads import RoadNetwork, wrap_angle
from pilot.envs.driving.world import CLASS_NAMES

#: Discs covering each footprint, spaced along the object's long axis (or its motion).
DISCS = 3
#: An object faster than this (m/s) is moving; one slower stands (its footprint kept).
MOVING = 0.2
VEHICLE = CLASS_NAMES.index("vehicle")
#: A vehicle follows a lane whose centre line it is within half the lane's width of, plus
#: this (m), moving within :data:`LANE_HEADING` (rad) of the lane's heading there.
LANE_REACH = 0.5
LANE_HEADING = 0.6
#: In a junction, a vehicle may be on every connector within this (rad) of the heading
#: error of the one it is best aligned with (where they part, it has chosen).
WAY_HEADING = 0.25
#: Successor lanes followed at most, beyond the one a vehicle is on.
HOPS = 6


@dataclasses.dataclass(frozen=True)
class Occupancy:
    """Predicted occupancy: at ``times[k]`` object ``i`` covers the discs centred at
    ``centres[k, i]`` (``DISCS`` × 2 for each way it may go) with radius ``radius[k, i]``."""

    times: np.ndarray  # (T,)
    centres: np.ndarray  # (T, n, H * DISCS, 2)
    radius: np.ndarray  # (T, n)
    classes: np.ndarray  # (n,)

    def __len__(self) -> int:
        return self.centres.shape[1]

    def subset(self, keep: np.ndarray) -> Occupancy:
        """The occupancy of the objects ``keep`` (a mask over them) picks."""
        return Occupancy(
            self.times, self.centres[:, keep], self.radius[:, keep], self.classes[keep]
        )


def predict(
    boxes: np.ndarray,
    classes: np.ndarray,
    times: np.ndarray,
    growth: float,
    net: RoadNetwork | None = None,
    around: tuple[float, float, float] = (0.0, 0.0, math.inf),
) -> Occupancy:
    """Occupancy of world-frame ``boxes`` (rows ``x, y, yaw, length, width, vx, vy``) at
    ``times``: at constant velocity, or along their lanes (:func:`lane_paths`) for moving
    vehicles when ``net`` is given, those that may come within ``around``'s radius of
    its point over the times (farther ones cannot meet what is planned there, and keep the
    cheaper straight line). A moving object's discs spread along its motion by
    ``growth × t`` each way; a standing one keeps its footprint."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    n, t = len(b), np.asarray(times, dtype=np.float64)
    classes = np.asarray(classes)
    speed = np.hypot(b[:, 5], b[:, 6])
    moving = speed > MOVING
    # the long axis: the heading for boxes longer than wide, across it otherwise
    axis = np.where(b[:, 3] >= b[:, 4], b[:, 2], b[:, 2] + 0.5 * math.pi)
    axis = np.where(moving, np.arctan2(b[:, 6], b[:, 5]), axis)
    along = np.where(moving | (b[:, 3] >= b[:, 4]), b[:, 3], b[:, 4])
    across = np.where(moving | (b[:, 3] >= b[:, 4]), b[:, 4], b[:, 3])
    spread = growth * t[:, None] * moving[None, :]  # (T, n)
    long = along[None, :] + 2.0 * spread
    radius = np.hypot(0.5 * across[None, :] + 0.1 * spread, long / (2 * DISCS))
    # each object's ways: (H, T, 3) centre poses x, y and the axis its discs lie along
    ax, ay, radius_around = around
    reach = np.hypot(b[:, 0] - ax, b[:, 1] - ay) - speed * (t[-1] if len(t) else 0.0)
    ways = []
    for i in range(n):
        lanes = None
        if net is not None and moving[i] and classes[i] == VEHICLE and reach[i] <= radius_around:
            lanes = lane_paths(net, b[i], t)
        if lanes is None:
            cx, cy = b[i, 0] + b[i, 5] * t, b[i, 1] + b[i, 6] * t
            lanes = np.stack([cx, cy, np.full(len(t), axis[i])], axis=-1)[None]
        ways.append(lanes)
    h = max((len(w) for w in ways), default=1)
    poses = np.zeros((len(t), n, h, 3))
    for i, w in enumerate(ways):  # fewer ways than the most: the first repeated
        poses[:, i] = np.concatenate([w, np.repeat(w[:1], h - len(w), axis=0)]).transpose(1, 0, 2)
    frac = (np.arange(DISCS) - (DISCS - 1) / 2) / DISCS
    offsets = long[:, :, None, None] * frac  # (T, n, 1, DISCS)
    ux, uy = np.cos(poses[..., 2])[..., None], np.sin(poses[..., 2])[..., None]
    centres = np.stack(
        [poses[..., 0, None] + offsets * ux, poses[..., 1, None] + offsets * uy], axis=-1
    )  # (T, n, H, DISCS, 2)
    return Occupancy(t, centres.reshape(len(t), n, h * DISCS, 2), radius, classes)


def lane_paths(net: RoadNetwork, box: np.ndarray, times: np.ndarray) -> np.ndarray | None:
    """``(H, T, 3)`` poses (x, y, heading) of a moving vehicle's centre at ``times``
    along each lane it may be following (None: it follows none). On a road lane its speed
    along the lane and across it are kept (the offset across held within one lane's
    width); on a junction's connector, its speed along it and its offset."""
    x, y, _, _, _, vx, vy = map(float, box)
    speed, motion = math.hypot(vx, vy), math.atan2(vy, vx)
    reach = net.max_half_width + LANE_REACH
    ids, s_near = net.lanes_near(np.array([[x, y]]), reach)
    found = []  # (|offset|, lane, s, offset, heading error)
    for lane_id, s in zip(ids.tolist(), s_near.tolist(), strict=True):
        lane = net.lanes[lane_id]
        lx, ly, lh = lane.pose_at(s)
        d = -(x - lx) * math.sin(lh) + (y - ly) * math.cos(lh)
        off_end = math.hypot(x - lx, y - ly) > abs(d) + 0.1  # beyond the lane's ends
        err = wrap_angle(motion - lh)
        if off_end or abs(d) > 0.5 * lane.width + LANE_REACH or abs(err) > LANE_HEADING:
            continue
        found.append((abs(d), lane_id, s, d, err))
    if not found:
        return None
    found.sort()
    chosen = found[:1]
    if net.lanes[found[0][1]].kind == "junction":  # every connector it is as much on
        junction = [f for f in found if net.lanes[f[1]].kind == "junction"]
        best = min(abs(f[4]) for f in junction)
        chosen = [f for f in junction if abs(f[4]) <= best + WAY_HEADING]
    paths = []
    for _, lane_id, s, d, err in chosen:
        lane = net.lanes[lane_id]
        if lane.kind == "junction":  # no lane changes in a junction: along at its speed
            ds, dd = s + speed * times, np.full(len(times), d)
        else:
            ds = s + speed * math.cos(err) * times
            dd = np.clip(d + speed * math.sin(err) * times, -lane.width, lane.width)
        px, py, ph = _along(net, lane_id, ds)
        paths.append(np.stack([px - dd * np.sin(ph), py + dd * np.cos(ph), ph], axis=-1))
    return np.stack(paths)


def _along(net: RoadNetwork, lane_id: int, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre-line poses at arc lengths ``s`` from the start of lane ``lane_id``, on into
    its successor while it has exactly one, straight on past an end with none or several."""
    s = np.array(s, dtype=np.float64)
    x, y, h = np.zeros(len(s)), np.zeros(len(s)), np.zeros(len(s))
    todo = np.ones(len(s), dtype=bool)
    for _ in range(HOPS + 1):
        lane = net.lanes[lane_id]
        here = todo & ((s <= lane.length) | lane.closed)
        if here.any():
            x[here], y[here], h[here] = net.poses(np.full(int(here.sum()), lane_id), s[here])
        todo &= ~here
        if not todo.any():
            break
        s[todo] -= lane.length
        end = lane.pose_at(lane.length)
        if len(lane.successors) != 1:
            break
        lane_id = lane.successors[0]
    if todo.any():  # straight on from the last end reached
        ex, ey, eh = end
        x[todo], y[todo], h[todo] = ex + s[todo] * math.cos(eh), ey + s[todo] * math.sin(eh), eh
    return x, y, h
