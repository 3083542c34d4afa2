"""Pedestrians: they walk to and fro across crosswalks at their own speed, pausing at the
kerb for a random while, and do not look. Their state is a few arrays (``u`` metres along
the crosswalk from its first end) and every random draw comes from the env's generator.
:class:`Crossings` is where each crosswalk cuts each lane, for the traffic that stops for
them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

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
    c = np.where(peds.active, peds.crosswalk, 0)
    start, d = net.crosswalk_starts[c], net.crosswalk_vectors[c]
    u = peds.u / net.crosswalk_lengths[c]
    x = np.where(peds.active, start[:, 0] + d[:, 0] * u, 0.0)
    y = np.where(peds.active, start[:, 1] + d[:, 1] * u, 0.0)
    h = np.where(peds.active, np.arctan2(d[:, 1] * peds.direction, d[:, 0] * peds.direction), 0.0)
    return x, y, h


def step_pedestrians(
    net: RoadNetwork, peds: PedestrianState, dt: float, rng: np.random.Generator
) -> None:
    """Walk, turn round at the far kerb, wait a random while, walk back."""
    if not len(peds.u):  # no pool: nothing to draw (an empty draw leaves the stream as is)
        return
    pause = rng.uniform(2.0, 12.0, len(peds.u))
    waiting = peds.active & (peds.wait > 0)
    peds.wait[waiting] = np.maximum(peds.wait[waiting] - dt, 0.0)
    walk = np.flatnonzero(peds.active & ~waiting)
    if not len(walk):
        return
    length = net.crosswalk_lengths[peds.crosswalk[walk]]
    u = peds.u[walk] + peds.direction[walk] * peds.speed[walk] * dt
    turn = (u >= length) | (u <= 0.0)  # at a kerb: turn round and wait there
    peds.u[walk] = np.minimum(np.maximum(u, 0.0), length)
    peds.direction[walk] = np.where(turn, -peds.direction[walk], peds.direction[walk])
    peds.wait[walk] = np.where(turn, pause[walk], peds.wait[walk])


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
