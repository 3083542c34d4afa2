"""The small scenarios' road networks, drawn from a seeded generator: :func:`loop` (a
curvy closed road with several lanes in one direction), :func:`highway` (a long multi-lane
stretch) and :func:`intersection` (a 4-way junction with one lane per direction and a
traffic light, or a stop sign, per approach); and :func:`connector`, the curve a junction
lane takes from one road to another (the town's junctions use it too).

Frame and conventions as in :mod:`.roads`.
"""

from __future__ import annotations

import math

import numpy as np

from .roads import (
    SIGN_ZONE,
    Lane,
    RoadNetwork,
    StopSign,
    TrafficLight,
    arc_length,
    left_normals,
    offset_polyline,
)

#: The single junction's crosswalks lie this far (m, centre) before its stop lines, and
#: their stripes reach this far to either side of that centre.
CROSSWALK_OUT, CROSSWALK_HALF_WIDTH = 2.5, 1.5


def _smooth_closed_curve(rng: np.random.Generator, radius: float, spacing: float) -> np.ndarray:
    """A star-shaped closed curve ``r(θ) = R (1 + Σ a_k cos(kθ + φ_k))``, counter-clockwise,
    sampled about every ``spacing`` metres, last point = first point."""
    ks = np.arange(2, 5)
    amps = rng.uniform(0.0, 1.0, len(ks))
    amps *= rng.uniform(0.12, 0.22) / amps.sum()
    phases = rng.uniform(0.0, 2 * np.pi, len(ks))
    n = max(int(2 * np.pi * radius / spacing), 32)
    th = np.linspace(0.0, 2 * np.pi, n + 1)
    r = radius * (1.0 + np.sum(amps[:, None] * np.cos(ks[:, None] * th + phases[:, None]), 0))
    pts = np.stack([r * np.cos(th), r * np.sin(th)], axis=1)
    pts[-1] = pts[0]
    return pts


def min_turn_radius(points: np.ndarray) -> float:
    """Smallest radius of curvature along a polyline (heading change per metre)."""
    d = points[1:] - points[:-1]
    h = np.arctan2(d[:, 1], d[:, 0])
    turn = np.abs((h[1:] - h[:-1] + np.pi) % (2.0 * np.pi) - np.pi)  # wrapped to [0, π]
    step = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    k = turn / (0.5 * (step[1:] + step[:-1]))
    return float(1.0 / max(k.max(), 1e-9))


def loop(
    rng: np.random.Generator,
    n_lanes: int = 2,
    lane_width: float = 3.5,
    radius: float = 70.0,
    speed_limit: float = 15.0,
    n_crosswalks: int = 0,
) -> RoadNetwork:
    """A curvy closed road, driven counter-clockwise, with ``n_lanes`` parallel lanes
    (lane 0 innermost, i.e. leftmost) and optional mid-block crosswalks."""
    for _ in range(50):  # keep bends wide enough for every lane and a sensible speed
        ref = _smooth_closed_curve(rng, radius, spacing=2.0)
        if min_turn_radius(ref) >= max(20.0, 2.0 * n_lanes * lane_width):
            break
    lanes = []
    for i in range(n_lanes):
        centre = offset_polyline(ref, -(i + 0.5) * lane_width, closed=True)
        lanes.append(
            Lane(
                i,
                centre,
                lane_width,
                speed_limit,
                successors=(i,),
                left=i - 1 if i > 0 else None,
                right=i + 1 if i < n_lanes - 1 else None,
                closed=True,
            )
        )
    crosswalks = []
    if n_crosswalks:
        s_ref = arc_length(ref)
        for u in rng.uniform(0.0, s_ref[-1], n_crosswalks):
            i = int(np.searchsorted(s_ref, u)) % (len(ref) - 1)
            normal = left_normals(ref, True)[i]
            a = ref[i] + 1.5 * normal
            b = ref[i] - (n_lanes * lane_width + 1.5) * normal
            crosswalks.append((tuple(a), tuple(b)))
    return RoadNetwork("loop", lanes, crosswalks=crosswalks)


def highway(
    rng: np.random.Generator,
    n_lanes: int = 3,
    lane_width: float = 3.75,
    length: float = 1500.0,
    speed_limit: float = 30.0,
) -> RoadNetwork:
    """A long road heading east with gentle curves and ``n_lanes`` lanes (lane 0 leftmost)."""
    x = np.arange(0.0, length + 1e-9, 5.0)
    amp = rng.uniform(5.0, 25.0)
    period = rng.uniform(400.0, 800.0)
    phase = rng.uniform(0.0, 2 * np.pi)
    ref = np.stack([x, amp * np.sin(2 * np.pi * x / period + phase)], axis=1)
    lanes = [
        Lane(
            i,
            offset_polyline(ref, -(i + 0.5) * lane_width),
            lane_width,
            speed_limit,
            left=i - 1 if i > 0 else None,
            right=i + 1 if i < n_lanes - 1 else None,
        )
        for i in range(n_lanes)
    ]
    return RoadNetwork("highway", lanes)


def _bezier(p0: np.ndarray, p1: np.ndarray, p2: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    n = max(int(math.hypot(*(p2 - p0)) / spacing), 4)
    u = np.arange(n + 1) * (1.0 / n)  # np.linspace(0, 1, n + 1), value for value
    u[-1] = 1.0
    u = u[:, None]
    return (1 - u) ** 2 * p0 + 2 * (1 - u) * u * p1 + u**2 * p2


def connector(
    p0: np.ndarray, before: np.ndarray, p2: np.ndarray, after: np.ndarray, spacing: float = 1.0
) -> np.ndarray:
    """Centre line of a junction lane from ``p0`` (the end of a lane whose previous vertex
    is ``before``) to ``p2`` (the start of a lane whose next vertex is ``after``): straight
    on when the two lanes are parallel, else a quadratic Bézier curve whose control point
    is where the two lane lines meet; a vertex about every ``spacing`` metres."""
    d0 = p0 - before
    d2 = after - p2
    if abs(d0[0] * d2[1] - d0[1] * d2[0]) < 1e-9:  # straight on
        return np.linspace(p0, p2, max(int(np.linalg.norm(p2 - p0) / spacing), 4) + 1)
    d0 /= math.hypot(d0[0], d0[1])
    d2 /= math.hypot(d2[0], d2[1])
    # p0 + t d0 = p2 + r d2, for t (Cramer's rule)
    rx, ry = float(p2[0] - p0[0]), float(p2[1] - p0[1])
    t = (rx * -d2[1] + d2[0] * ry) / (d0[0] * -d2[1] + d2[0] * d0[1])
    return _bezier(p0, p0 + t * d0, p2, spacing)


def intersection(
    rng: np.random.Generator,
    lane_width: float = 3.5,
    arm_length: float = 60.0,
    speed_limit: float = 12.0,
    green: float = 6.0,
    yellow: float = 2.0,
    all_red: float = 1.0,
    control: str = "lights",
) -> RoadNetwork:
    """A 4-way junction, one lane each way per arm, one light per approach.

    Each approach has its own green phase in turn (protected phases), so vehicles that
    obey the lights never meet inside the junction. The lights start at a random point of
    their common cycle. A crosswalk spans each arm just outside the junction.
    ``control="stop"`` makes it an all-way stop instead: a :class:`StopSign` on every
    approach, at the stop line the light would have, and no lights (the lights' random
    draw is still taken, so a seed gives the same network and routes either way).
    """
    if control not in ("lights", "stop"):
        raise ValueError(f"control must be 'lights' or 'stop', got {control!r}")
    half = 2.0 * lane_width + 1.0  # junction half size
    dirs = [np.array([math.cos(k * math.pi / 2), math.sin(k * math.pi / 2)]) for k in range(4)]
    lanes: list[Lane] = []
    incoming, outgoing = {}, {}
    for k, d in enumerate(dirs):  # arm k points along d from the centre
        left = np.array([-d[1], d[0]])
        # incoming: drives towards the centre (direction -d); its right side is -left(-d)...
        a_in = d * (half + arm_length) + left * (lane_width / 2)
        b_in = d * half + left * (lane_width / 2)
        a_out = d * half - left * (lane_width / 2)
        b_out = d * (half + arm_length) - left * (lane_width / 2)
        n = int(arm_length / 2.0)
        incoming[k] = len(lanes)
        lanes.append(Lane(len(lanes), np.linspace(a_in, b_in, n + 1), lane_width, speed_limit))
        outgoing[k] = len(lanes)
        lanes.append(Lane(len(lanes), np.linspace(a_out, b_out, n + 1), lane_width, speed_limit))
    cycle = 4 * (green + yellow + all_red)
    offset = float(rng.uniform(0.0, cycle))
    lights, crosswalks = [], []
    signs: list[StopSign] = []
    finished: list[Lane] = []
    connectors: dict[int, list[int]] = {k: [] for k in range(4)}
    next_id = len(lanes)
    for k in range(4):
        lin = lanes[incoming[k]]
        for m in range(4):
            if m == k:
                continue
            lout = lanes[outgoing[m]]
            pts = connector(lin.centre[-1], lin.centre[-2], lout.centre[0], lout.centre[1])
            finished.append(
                Lane(next_id, pts, lane_width, speed_limit * 0.75, (outgoing[m],), kind="junction")
            )
            connectors[k].append(next_id)
            next_id += 1
        d = dirs[k]
        left = np.array([-d[1], d[0]])
        stop = (
            tuple(d * half + left * 0.0),
            tuple(d * half + left * lane_width),
        )
        heading = math.atan2(-d[1], -d[0])
        if control == "stop":  # the zone reaches 5 m before the crosswalk in front of the line
            zone = SIGN_ZONE + CROSSWALK_OUT + CROSSWALK_HALF_WIDTH
            signs.append(StopSign(id=k, stop_line=stop, heading=heading, zone=zone))
        else:
            lights.append(
                TrafficLight(
                    id=k,
                    stop_line=stop,
                    heading=heading,
                    start=(k * (green + yellow + all_red) - offset) % cycle,
                    green=green,
                    yellow=yellow,
                    cycle=cycle,
                )
            )
        cw = d * (half + CROSSWALK_OUT)
        crosswalks.append(
            (tuple(cw + left * (lane_width + 2.0)), tuple(cw - left * (lane_width + 2.0)))
        )
    out: list[Lane] = []
    for ln in lanes:
        k = next((k for k, i in incoming.items() if i == ln.id), None)
        if k is not None:
            light, stop = (None, k) if control == "stop" else (k, None)
            out.append(
                Lane(
                    ln.id,
                    ln.centre,
                    ln.width,
                    ln.speed_limit,
                    tuple(connectors[k]),
                    light=light,
                    stop=stop,
                )
            )
        else:
            out.append(ln)
    return RoadNetwork("intersection", out + finished, lights, crosswalks, signs)
