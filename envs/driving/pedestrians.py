"""Pedestrians: they walk to and fro across crosswalks at their own speed, pausing at the
kerb for a random while, and do not look. At a crosswalk with a light (one across an
approach to a junction with lights) a walker leaves the kerb only while the approach has
red, and only if the red lasts until it is across, as CARLA's walkers check the light
before they cross; once on the crosswalk it walks on whatever the light does, and cars
turning across it yield to it. Their state is a few arrays (``u`` metres along
the crosswalk from its first end) and every random draw comes from the env's generator.
:class:`Crossings` is where each crosswalk cuts each lane, for the traffic that stops for
them.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import traffic_kernels as kernels
from .roads import RoadNetwork


@dataclasses.dataclass
class PedestrianState:
    """Pedestrians on crosswalks: ``u`` metres from the crosswalk's first end."""

    crosswalk: np.ndarray  # int
    u: np.ndarray
    direction: np.ndarray  # +1 or -1
    speed: np.ndarray
    wait: np.ndarray  # seconds left at the kerb before crossing
    active: np.ndarray  # bool

    @classmethod
    def empty(cls, n: int) -> PedestrianState:
        z = np.zeros(n)
        return cls(
            np.zeros(n, dtype=np.int64), z.copy(), np.ones(n), z.copy(), z.copy(), z.astype(bool)
        )


class Crossings:
    """Where each crosswalk cuts each lane, so vehicles can stop for pedestrians on it."""

    def __init__(self, net: RoadNetwork) -> None:
        rows = []  # (crosswalk, lane, s on lane, u on crosswalk)
        first = np.cumsum([0] + [len(ln.centre) - 1 for ln in net.lanes])  # lanes' 1st segment
        c0, cd = net.segment_starts, net.segment_vectors
        if net.crosswalks:  # segment_intersection(crosswalk, every lane segment), all at once
            a, r = net.crosswalk_starts[:, None, :], net.crosswalk_vectors[:, None, :]
            rx, ry = r[..., 0], r[..., 1]
            den = rx * cd[None, :, 1] - ry * cd[None, :, 0]
            qx, qy = c0[None, :, 0] - a[..., 0], c0[None, :, 1] - a[..., 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                u = (qx * cd[None, :, 1] - qy * cd[None, :, 0]) / den
                t = (qx * ry - qy * rx) / den
            hit = (np.abs(den) >= 1e-12) & (u >= 0.0) & (u <= 1.0) & (t >= 0.0) & (t <= 1.0)
            for c, k in zip(*np.nonzero(hit), strict=True):  # by crosswalk, then segment
                lane_id = int(net.segment_lanes[k])
                if rows and rows[-1][0] == c and rows[-1][1] == lane_id:
                    continue  # the lane's first segment that meets this crosswalk only
                lane, i = net.lanes[lane_id], int(k) - int(first[lane_id])
                s = lane.s[i] + float(t[c, k]) * (lane.s[i + 1] - lane.s[i])
                rows.append((int(c), lane_id, s, float(u[c, k]) * net.crosswalk_lengths[c]))
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        self.crosswalk = arr[:, 0].astype(np.int64)
        self.lane = arr[:, 1].astype(np.int64)
        self.s = arr[:, 2]
        self.u = arr[:, 3]
        self.half = np.array([net.lanes[i].width / 2 + 1.0 for i in self.lane])


def crosswalk_positions(
    net: RoadNetwork, peds: PedestrianState
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, heading)`` of every pedestrian (inactive ones at 0)."""
    if not net.crosswalks:
        return np.zeros(len(peds.u)), np.zeros(len(peds.u)), np.zeros(len(peds.u))
    return _poses(
        peds.active,
        peds.crosswalk,
        peds.u,
        peds.direction,
        net.crosswalk_starts,
        net.crosswalk_vectors,
        net.crosswalk_lengths,
    )


def step_pedestrians(
    net: RoadNetwork, peds: PedestrianState, dt: float, rng: np.random.Generator, t: float
) -> None:
    """Walk, turn round at the far kerb, wait a random while and for the light (at time
    ``t``), walk back."""
    if not len(peds.u):  # no pool: nothing to draw (an empty draw leaves the stream as is)
        return
    pause = rng.uniform(2.0, 12.0, len(peds.u))  # one per pedestrian, used or not
    _walk(
        peds.active,
        peds.crosswalk,
        peds.u,
        peds.direction,
        peds.speed,
        peds.wait,
        net.crosswalk_lengths,
        net.crosswalk_red_left(t),
        pause,
        dt,
    )


def spawn_pedestrians(
    net: RoadNetwork, n: int, rng: np.random.Generator, speed: tuple[float, float] = (1.0, 1.6)
) -> PedestrianState:
    peds = PedestrianState.empty(n)
    if not net.crosswalks:
        return peds
    for i in range(n):
        c = int(rng.integers(len(net.crosswalks)))
        length = float(net.crosswalk_lengths[c])
        peds.crosswalk[i] = c
        peds.direction[i] = 1.0 if rng.random() < 0.5 else -1.0
        peds.u[i] = 0.0 if peds.direction[i] > 0 else length
        peds.speed[i] = rng.uniform(*speed)
        peds.wait[i] = rng.uniform(0.0, 15.0)
        peds.active[i] = True
    return peds


@kernels.compiled
def _walk(active, crosswalk, u, direction, speed, wait, lengths, red_left, pause, dt):
    """Pedestrians wait out their pause, or walk; at a kerb they turn round and wait there
    for ``pause``, then on for as long as their crosswalk's red (``red_left`` seconds
    more) would not last until they are across. One placed with no wait walks at once."""
    for p in range(len(u)):
        if not active[p]:
            continue
        length = lengths[crosswalk[p]]
        if wait[p] > 0:
            wait[p] = max(wait[p] - dt, 0.0)
            if wait[p] == 0.0 and red_left[crosswalk[p]] * speed[p] < length:
                wait[p] = dt  # not yet: look again next step
            continue
        to = u[p] + direction[p] * speed[p] * dt
        u[p] = min(max(to, 0.0), length)
        if to >= length or to <= 0.0:
            direction[p], wait[p] = -direction[p], pause[p]


@kernels.compiled
def _poses(active, crosswalk, u, direction, starts, vectors, lengths):
    """``(x, y, heading)`` of pedestrians on crosswalks (inactive ones at 0)."""
    n = len(u)
    x, y, h = np.zeros(n), np.zeros(n), np.zeros(n)
    for p in range(n):
        if active[p]:
            c, f = crosswalk[p], u[p] / lengths[crosswalk[p]]
            x[p] = starts[c, 0] + vectors[c, 0] * f
            y[p] = starts[c, 1] + vectors[c, 1] * f
            h[p] = math.atan2(vectors[c, 1] * direction[p], vectors[c, 0] * direction[p])
    return x, y, h
