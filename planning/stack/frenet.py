"""Motion planning in the route's Frenet frame: a lattice of lateral targets × desired
speeds, each a quintic lateral profile over arc length with an IDM speed profile, checked
against the predicted occupancy over time and costed for progress, comfort and clearance.

The route's centre line is the reference (``s`` along it, ``d`` to its left), so the
candidates follow the route's lanes and a lateral target of one lane width is the
neighbour lane."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from pilot.envs.driving.boxcast import touching_boxes
from pilot.envs.driving.roads import RoadNetwork, polyline_crossings
from pilot.envs.driving.routes import Route
from pilot.envs.driving.traffic import VEHICLE_WIDTH

from .config import ModularConfig
from .prediction import MOVING, Occupancy

EGO_HALF_LENGTH = 2.25
EGO_HALF_WIDTH = 0.5 * VEHICLE_WIDTH
#: Height (m) every box is taken to reach in the exact check: all are taller than a margin.
BOX_TOP = 1.0
#: Centres of the ego's covering discs along its heading (m from its centre).
EGO_DISCS = np.array([-1.5, 0.0, 1.5])


class RouteFrame:
    """Frenet coordinates on a route: points at ``(s, d)``, extrapolated straight past the
    route's ends so a plan near the goal stays well formed."""

    def __init__(self, route: Route, net: RoadNetwork | None = None) -> None:
        self.route = route
        #: Route arc lengths where a crosswalk crosses it, ascending.
        self.crosswalk_s = np.array(sorted(_crossings(route, net.crosswalks if net else ())))
        #: The speed limit on each route segment: its lane's, from the map (inf: none).
        mid = 0.5 * (route.points[1:] + route.points[:-1])
        self.limits = np.array(
            [
                net.locate(x, y, h).speed_limit
                for (x, y), h in zip(mid.tolist(), route.headings.tolist(), strict=True)
            ]
            if net is not None
            else np.full(len(mid), np.inf)
        )
        self.s = route.s
        heading = np.unwrap(np.append(route.headings, route.headings[-1]))
        # headings at vertices: the mean of the two segments meeting there
        self.heading = np.concatenate(
            [heading[:1], 0.5 * (heading[:-2] + heading[1:-1]), heading[-1:]]
        )
        self.curvature = np.abs(np.gradient(self.heading, self.s))

    def curve_speed(self, s0: float, reach: float, lateral_accel: float) -> float:
        """The highest speed that keeps the lateral acceleration under ``lateral_accel`` in
        the sharpest bend of ``[s0, s0 + reach]``."""
        kappa = self.curvature[(self.s >= s0 - 2.0) & (self.s <= s0 + reach)]
        top = float(kappa.max()) if len(kappa) else 0.0
        return math.sqrt(lateral_accel / top) if top > 1e-6 else math.inf

    def limit_ahead(self, s0: float, reach: float) -> float:
        """The lowest speed limit on the route over ``[s0, s0 + reach]``."""
        first = max(int(np.searchsorted(self.s, s0, side="right")) - 1, 0)
        last = int(np.searchsorted(self.s, s0 + reach, side="left"))
        return float(self.limits[first : max(last, first + 1)].min())

    def speed_cap(
        self, s0: float, speed: float, lateral_accel: float, decel: float | None = None
    ) -> float:
        """The highest speed allowed at ``s0`` by the limits and bends ahead: the lowest
        limit over ``10 + 2 · speed`` metres, so a lower limit is slowed for in time, and
        the bend speed at ``lateral_accel``. Without ``decel``, that of the sharpest bend
        over the same reach: the car slows for a bend as soon as it is within reach. With
        it, a braking curve: the lowest, over the points ahead, of each one's bend speed
        plus what braking at ``decel`` sheds on the way there, so the car slows as late
        as that braking allows."""
        reach = 10.0 + 2.0 * speed
        limit_cap = self.limit_ahead(s0, reach)
        if decel is None:
            return min(limit_cap, self.curve_speed(s0, reach, lateral_accel))
        braking = 10.0 + speed * speed / (2.0 * decel)  # beyond it no bend caps the speed
        lo = max(int(np.searchsorted(self.s, s0 - 2.0, side="left")), 0)
        hi = int(np.searchsorted(self.s, s0 + braking, side="right"))
        if hi <= lo:
            return limit_cap
        kappa = self.curvature[lo:hi]
        v2 = np.full(len(kappa), np.inf)  # the bend speed squared at each point
        np.divide(lateral_accel, kappa, out=v2, where=kappa > 1e-6)
        ahead = np.maximum(self.s[lo:hi] - s0, 0.0)
        return min(limit_cap, math.sqrt(float((v2 + 2.0 * decel * ahead).min())))

    def heading_at(self, s: np.ndarray) -> np.ndarray:
        return np.interp(s, self.s, self.heading)

    def xy(self, s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """World points ``(..., 2)`` at arc length ``s`` and left offset ``d``."""
        s = np.asarray(s, dtype=np.float64)
        clipped = np.clip(s, 0.0, self.route.length)
        x, y = self.route.xy_at(clipped)
        h = self.heading_at(clipped)
        extra = s - clipped  # beyond an end: straight on along the end's heading
        x = x + extra * np.cos(h) - d * np.sin(h)
        y = y + extra * np.sin(h) + d * np.cos(h)
        return np.stack([x, y], axis=-1)


def _crossings(route: Route, crosswalks) -> list[float]:
    """Route arc lengths where each crosswalk crosses the route."""
    out = []
    for a, b in crosswalks:
        for i, u in polyline_crossings(route.points, np.asarray(a), np.asarray(b)):
            out.append(float(route.s[i] + u * (route.s[i + 1] - route.s[i])))
    return out


def quintic(d0: float, slope0: float, d1: float, length: float):
    """Coefficients of ``d(u)``, ``u ∈ [0, length]``, from ``(d0, slope0, 0)`` to
    ``(d1, 0, 0)`` (offset, first and second derivative)."""
    L = length
    a0, a1, a2 = d0, slope0, 0.0
    m = np.array(
        [[L**3, L**4, L**5], [3 * L**2, 4 * L**3, 5 * L**4], [6 * L, 12 * L**2, 20 * L**3]]
    )
    rhs = np.array([d1 - a0 - a1 * L - a2 * L**2, -a1 - 2 * a2 * L, -2 * a2])
    a3, a4, a5 = np.linalg.solve(m, rhs)
    return np.array([a0, a1, a2, a3, a4, a5])


def lateral(coef: np.ndarray, length: float, u: np.ndarray) -> np.ndarray:
    """``d(u)`` of a :func:`quintic`, held at its end value past ``length``."""
    u = np.minimum(np.maximum(u, 0.0), length)
    return np.polyval(coef[::-1], u)


def idm_gap(v: float, v_lead: float, jam: float, cfg: ModularConfig) -> float:
    """IDM's desired gap (m) for a vehicle at ``v`` behind a lead at ``v_lead``: the jam
    distance plus the headway and approach terms, which never take it below the jam."""
    approach = v * (v - v_lead) / (2.0 * math.sqrt(cfg.accel * cfg.decel))
    return jam + max(v * cfg.headway + approach, 0.0)


def idm_profile(
    v0: float, v_des: float, leads: list[tuple[float, float, float]], cfg: ModularConfig, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(s, v, a)`` over ``n`` steps of ``plan_dt`` from ``s = 0`` with the Intelligent
    Driver Model towards ``v_des``, behind ``leads``: ``(gap now, speed along the route,
    jam distance)`` of each thing ahead (a vehicle, a stop line as a standing one)."""
    dt = cfg.plan_dt
    s, v = np.zeros(n + 1), np.zeros(n + 1)
    a = np.zeros(n)
    v[0] = v0
    for k in range(n):
        free = 1.0 - (v[k] / max(v_des, 0.1)) ** 4 if v_des > 0.1 else -1.0
        interaction = 0.0
        for gap0, v_lead, jam in leads:
            gap = gap0 + v_lead * k * dt - s[k]
            want = idm_gap(v[k], v_lead, jam, cfg)
            interaction = max(interaction, (want / max(gap, 0.1)) ** 2)
        a[k] = min(max(cfg.accel * (free - interaction), -cfg.max_decel), cfg.accel)
        v[k + 1] = max(v[k] + a[k] * dt, 0.0)
        s[k + 1] = s[k] + 0.5 * (v[k] + v[k + 1]) * dt
    return s, v, a


@dataclasses.dataclass
class Candidate:
    """One planned trajectory (T = steps + 1 samples at ``plan_dt``)."""

    d_target: float
    v_desired: float
    s: np.ndarray  # (T,) route arc length
    v: np.ndarray  # (T,)
    accel: np.ndarray  # (T - 1,)
    xy: np.ndarray  # (T, 2) ego centre
    yaw: np.ndarray  # (T,)
    path: np.ndarray  # (M, 2) the geometric path the tracker follows
    lateral_end: float = math.nan  # route s where its lateral move ends
    collides_at: float = math.inf  # first time of predicted contact
    clearance: float = math.inf  # smallest predicted distance between discs (m)
    cost: float = math.inf


def candidates(
    frame: RouteFrame,
    s0: float,
    d0: float,
    slope0: float,
    v0: float,
    targets: list[tuple[float, float, list[tuple[float, float, float]]]],
    cfg: ModularConfig,
    committed: tuple[float, float] | None = None,
) -> list[Candidate]:
    """A candidate per ``(lateral target, desired speed, leads on that target)``.

    ``committed`` is ``(lateral target, route s where the move ends)`` of a lateral move
    under way: a candidate towards that target ends where it was first planned to, not a
    full move's length ahead of where the car is now. Re-planned from the car's state
    every step, a move that always starts flat and ends ``lateral_time`` ahead would be
    put off step after step, and the car would hang between lanes."""
    n = int(round(cfg.horizon / cfg.plan_dt))
    out = []
    for d1, v_des, leads in targets:
        length = lateral_length(d0, d1, v0, s0, cfg, committed)
        coef = quintic(d0, slope0, d1, length)
        s, v, a = idm_profile(v0, v_des, leads, cfg, n)
        reach = max(length + 10.0, float(s[-1]) + 10.0, 20.0)
        u_path = np.linspace(0.0, reach, 60)
        path = frame.xy(s0 + u_path, lateral(coef, length, u_path))
        xy = frame.xy(s0 + s, lateral(coef, length, s))
        slope = lateral(coef, length, s + 0.5) - lateral(coef, length, s - 0.5)
        yaw = frame.heading_at(np.clip(s0 + s, 0.0, frame.route.length)) + np.arctan(slope)
        out.append(Candidate(d1, v_des, s0 + s, v, a, xy, yaw, path, s0 + length))
    return out


def lateral_length(
    d0: float,
    d1: float,
    v0: float,
    s0: float,
    cfg: ModularConfig,
    committed: tuple[float, float] | None = None,
) -> float:
    """Route metres over which a candidate moves from ``d0`` to ``d1``: 8 m to settle
    within 0.3 m of it; a new move takes ``lateral_time`` at the car's speed (at least
    12 m); a committed one (:func:`candidates`) what is left of it, at least 8 m."""
    if abs(d1 - d0) <= 0.3:
        return 8.0
    if committed is not None and abs(committed[0] - d1) < 1e-6:
        return max(committed[1] - s0, 8.0)
    return max(12.0, v0 * cfg.lateral_time)


def check(
    cand: Candidate,
    occ: Occupancy,
    ego_radius: float,
    standing: tuple[np.ndarray, np.ndarray] | None = None,
    margin: float = 0.3,
) -> None:
    """Fill ``collides_at`` and ``clearance`` of ``cand`` against ``occ`` (times k ≥ 1).

    The objects ``standing`` picks (:func:`standing_boxes`: a mask over ``occ``'s objects
    and their rows) are checked as exact rectangles, the car's own within ``margin`` of
    them (or within the clearance it has at the plan's start, if less), not as discs: the
    discs that cover a car are ~0.3 m wider than it on each side, and beside a car waiting
    at a stop line (a turn's corner sweeps within half a metre of it) every moving plan
    would "touch" it. Their discs still count for the clearance cost."""
    if not len(occ):
        return
    c, s = np.cos(cand.yaw[1:]), np.sin(cand.yaw[1:])
    ego = cand.xy[1:, None, :] + EGO_DISCS[None, :, None] * np.stack([c, s], -1)[:, None, :]
    diff = ego[:, None, :, None, :] - occ.centres[:, :, None, :, :]  # (T, n, 3, DISCS, 2)
    dist = np.sqrt(np.sum(diff * diff, axis=-1)).min(axis=(2, 3))  # (T, n)
    gap = dist - occ.radius - ego_radius
    cand.clearance = float(gap.min())
    hit = (gap < 0.0) if standing is None else (gap[:, ~standing[0]] < 0.0)
    touch = hit.any(axis=1)
    if standing is not None and standing[0].any():
        rows, half = standing[1], (EGO_HALF_LENGTH, EGO_HALF_WIDTH)
        z, (x, y) = (0.0, BOX_TOP), cand.xy[0]
        # a car already within the margin of one keeps the clearance it has: it may drive
        # away from a car that stopped close beside it, not only stand there
        for m in (margin, 2.0 * margin / 3.0, margin / 3.0, 0.0):
            if not len(touching_boxes(rows, x, y, cand.yaw[0], half, z, m)):
                break
        margin = m
        # only the steps whose bounding circles meet a standing box's are tested exactly
        reach = math.hypot(*half) + rows[:, 8] + margin
        near = cand.xy[1:, None, :] - rows[None, :, :2]
        close = (np.sum(near * near, axis=-1) < reach * reach).any(axis=1)
        for k in np.flatnonzero(close & ~touch):
            x, y = cand.xy[k + 1]
            touch[k] = len(touching_boxes(rows, x, y, cand.yaw[k + 1], half, z, margin)) > 0
    first = np.flatnonzero(touch)
    cand.collides_at = float(occ.times[first[0]]) if len(first) else math.inf


def standing_boxes(
    boxes: np.ndarray, classes: np.ndarray, exclude: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, rows)``: which percept objects stand still (under
    :data:`~.prediction.MOVING`, as :func:`~.prediction.predict` has it) and are not of
    class ``exclude`` (pedestrians, who step off without warning), and their rectangles as
    rows ``x, y, cos, sin, half length, half width, 0, BOX_TOP, radius`` for
    :func:`touching_boxes`."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    mask = (np.hypot(b[:, 5], b[:, 6]) < MOVING) & (np.asarray(classes) != exclude)
    s = b[mask]
    rows = np.stack(
        [s[:, 0], s[:, 1], np.cos(s[:, 2]), np.sin(s[:, 2]), 0.5 * s[:, 3], 0.5 * s[:, 4],
         np.zeros(len(s)), np.full(len(s), BOX_TOP), 0.5 * np.hypot(s[:, 3], s[:, 4])],
        axis=1,
    )  # fmt: skip
    return mask, rows


def cost(cand: Candidate, v_target: float, d0: float, cfg: ModularConfig) -> float:
    """Progress missing, lateral offset from the route, discomfort and closeness."""
    travelled = float(cand.s[-1] - cand.s[0])
    progress = max(v_target * cfg.horizon - travelled, 0.0)
    comfort = float(np.abs(np.diff(cand.accel)).sum()) + abs(cand.d_target - d0)
    close = math.exp(-max(cand.clearance, 0.0)) if math.isfinite(cand.clearance) else 0.0
    return (
        cfg.w_progress * progress
        + cfg.w_offset * abs(cand.d_target)
        + cfg.w_comfort * comfort
        + cfg.w_clearance * close
    )


def choose(cands: list[Candidate], v_target: float, d0: float, cfg: ModularConfig) -> Candidate:
    """The cheapest candidate without predicted contact; when every one collides, the one
    whose contact comes latest (the hardest braking among them on ties)."""
    for cand in cands:
        cand.cost = cost(cand, v_target, d0, cfg)
    free = [c for c in cands if not math.isfinite(c.collides_at)]
    if free:
        return min(free, key=lambda c: c.cost)
    return max(cands, key=lambda c: (c.collides_at, -float(c.s[-1])))
