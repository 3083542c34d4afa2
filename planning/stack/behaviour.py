"""Behaviour: which lateral targets are open, and what each must keep behind.

Everything is expressed as *leads* for the IDM speed profile of a candidate, ``(gap from
the ego's front bumper, speed along the route, jam distance)``: a vehicle in the target
lane, a static obstacle in it, a stop line whose light is red (or yellow when the car can
still stop comfortably) or whose stop sign the car has not stopped at yet, a pedestrian
on, or about to be on, the target lane. A lane
change to pass is just a lateral target whose lane has nothing standing in it."""

from __future__ import annotations

import math

import numpy as np

from pilot.envs.driving.roads import RED, STOP_SPEED, YELLOW, RoadNetwork
from pilot.envs.driving.scenarios import stop_lines_on
from pilot.envs.driving.world import CLASS_NAMES

from .config import ModularConfig
from .frenet import EGO_HALF_LENGTH, EGO_HALF_WIDTH, RouteFrame, idm_gap
from .perception import Percept
from .prediction import MOVING, VEHICLE

PEDESTRIAN = CLASS_NAMES.index("pedestrian")
STATIC = CLASS_NAMES.index("static")

#: Half the width of a crosswalk's walking strip as far as stopping is concerned (m).
CROSSWALK_HALF = 1.0
#: A lead slower than this along the route (m/s) counts as standing.
STANDING = 0.5
#: A brisk walk (m/s): how fast a pedestrian standing at the kerb may step into the path.
WALK = 1.6
#: How far behind (m) the vehicle a lane change would put the car in front of is looked
#: for (:func:`cuts_in`).
FOLLOWER_REACH = 80.0

Lead = tuple[float, float, float]


def open_offsets(
    net: RoadNetwork, frame: RouteFrame, s0: float, lane_width: float, cfg: ModularConfig
) -> list[float]:
    """Lateral targets (metres) whose lane exists, faces our way and stays a lane over
    the next 40 m; the route's own lane always counts."""
    out = []
    for k in cfg.lateral_offsets:
        d = k * lane_width
        if abs(d) < 1e-9:
            out.append(0.0)
            continue
        s = np.clip(s0 + np.array([5.0, 15.0, 25.0, 40.0]), 0.0, frame.route.length)
        pts, heads = frame.xy(s, np.full(len(s), d)), frame.heading_at(s)
        if all(
            net.locate(float(p[0]), float(p[1]), float(h)).in_lane
            for p, h in zip(pts, heads, strict=True)
        ):
            out.append(d)
    return out


def cuts_in(
    d1: float, p: Percept, frame: RouteFrame, s0: float, lane_width: float, cfg: ModularConfig
) -> bool:
    """MOBIL's safety criterion (Kesting, Treiber and Helbing 2007): whether taking the
    lane at offset ``d1`` now would make a vehicle behind in it brake harder than
    ``cfg.safe_braking`` to keep behind the car, by IDM with the stack's own parameters
    (its desired speed the faster of its own and the car's target)."""
    x, y, _ = p.pose
    worst = -math.inf
    for cls, (bx, by, _, length, _, vx, vy) in zip(p.classes, p.boxes, strict=True):
        if cls != VEHICLE:
            continue
        s, d, h = frame.route.project(bx, by, s0, behind=FOLLOWER_REACH, ahead=0.0)
        if abs(d - d1) > 0.5 * lane_width:
            continue
        # behind the route's start it projects onto the start: its distance along instead
        behind = s0 - s if s > 1e-3 else (x - bx) * math.cos(h) + (y - by) * math.sin(h)
        if not 0.0 < behind <= FOLLOWER_REACH:
            continue
        v = max(vx * math.cos(h) + vy * math.sin(h), 0.0)
        gap = max(behind - EGO_HALF_LENGTH - 0.5 * length, 0.1)
        wanted = idm_gap(v, p.speed, cfg.min_gap, cfg)  # the car is its new lead
        free = 1.0 - (v / max(v, cfg.target_speed, 1e-3)) ** 4
        worst = max(worst, -cfg.accel * (free - (wanted / gap) ** 2))
    return worst > cfg.safe_braking


def objects_on_route(frame: RouteFrame, p: Percept, s0: float) -> np.ndarray:
    """Rows ``(s, d, speed along the route, half length, half width, lateral speed)`` of
    each percept object on the route's frame (``nan`` rows for those beyond reach, and for
    those past the route's end: they project onto its last point, and would stand there
    as leads in the car's lane however far beyond it they are)."""
    rows = np.full((len(p.boxes), 6), np.nan)
    end = frame.route.length - 0.01
    for i, (x, y, yaw, length, width, vx, vy) in enumerate(p.boxes):
        s, d, h = frame.route.project(x, y, s0, behind=10.0, ahead=80.0)
        if s >= end:
            continue
        c, sn = math.cos(h), math.sin(h)
        rel = yaw - h
        half_len = 0.5 * (abs(length * math.cos(rel)) + abs(width * math.sin(rel)))
        half_w = 0.5 * (abs(length * math.sin(rel)) + abs(width * math.cos(rel)))
        if abs(d) < 15.0:
            rows[i] = (s, d, vx * c + vy * sn, half_len, half_w, -vx * sn + vy * c)
    return rows


def leads_for(
    d1: float,
    p: Percept,
    objs: np.ndarray,
    frame: RouteFrame,
    s0: float,
    lane_width: float,
    cfg: ModularConfig,
    sign_s: float = math.inf,
    kerb: bool = False,
    d0: float | None = None,
) -> list[Lead]:
    """What a candidate with lateral target ``d1`` keeps behind: things in or entering
    that lane ahead of the car (pedestrians: entering any offset between the car's own
    now, ``d0``, and ``d1``), and the stop line of a light it must stop for or of a
    stop sign not yet stopped at (``sign_s`` on the route), or the crosswalk just before
    that line (:func:`stop_point`)."""
    leads: list[Lead] = []
    front = s0 + EGO_HALF_LENGTH
    half_lane = 0.5 * lane_width
    now = d1 if d0 is None else d0
    sweep = (min(d1, now), max(d1, now))
    for cls, (s, d, v_along, half_len, half_w, v_lat) in zip(p.classes, objs, strict=True):
        if not math.isfinite(s) or s + half_len < front - 0.5:
            continue
        gap = s - half_len - front
        if cls == PEDESTRIAN:
            if _yield_to_pedestrian(
                d, sweep, v_lat, half_w, gap, half_len, half_lane, p, cfg, kerb
            ):
                leads.append((gap, 0.0, cfg.stop_margin))
        elif abs(d - d1) < half_lane + half_w - 0.2:
            jam = 6.0 if cls == STATIC else cfg.min_gap
            leads.append((gap, max(v_along, 0.0), jam))
            if v_along < STANDING:  # a queue or an obstacle: wait off the crosswalk before it
                walk = crosswalk_before(frame, front, front + gap - jam)
                if walk is not None:
                    leads.append((walk - front, 0.0, cfg.stop_margin))
    stop = p.light == RED or (p.light == YELLOW and not goes_on_yellow(frame, p, s0, cfg))
    if stop and math.isfinite(p.light_distance):
        leads.append((light_gap(frame, p, s0), 0.0, cfg.stop_margin))
    if math.isfinite(sign_s):  # a stop sign not yet stopped at: as a red light
        leads.append((stop_point(frame, sign_s) - s0 - EGO_HALF_LENGTH, 0.0, cfg.stop_margin))
    return leads


def light_gap(frame: RouteFrame, p: Percept, s0: float) -> float:
    """Metres from the car's front to where it stops for the light ahead
    (:func:`stop_point`; inf without one)."""
    if not math.isfinite(p.light_distance):
        return math.inf
    return stop_point(frame, s0 + p.light_distance) - s0 - EGO_HALF_LENGTH


def goes_on_yellow(frame: RouteFrame, p: Percept, s0: float, cfg: ModularConfig) -> bool:
    """Whether the light ahead is yellow and braking at ``cfg.yellow_decel`` would not
    stop the car short of it: it goes on, as drivers do, and so keeps its speed to the line
    (slowing there for a turn beyond it would leave it on the line when the red comes)."""
    if p.light != YELLOW or not math.isfinite(p.light_distance):
        return False
    gap = light_gap(frame, p, s0)
    return not (gap > 0.0 and p.speed**2 <= 2.0 * cfg.yellow_decel * gap)


def _yield_to_pedestrian(
    d: float,
    sweep: tuple[float, float],
    v_lat: float,
    half_w: float,
    gap: float,
    half_len: float,
    half_lane: float,
    p: Percept,
    cfg: ModularConfig,
    kerb: bool = False,
) -> bool:
    """Whether to stand before a pedestrian ``d`` metres left of the route (walking
    ``v_lat`` across it) whose own path lies ``gap`` metres ahead of the car's front, for
    a candidate whose centre line sweeps the offsets ``sweep`` (low, high: from where the
    car is to the candidate's target). The pedestrian has the right of way. From its walk
    comes the time it is in the car's path (``[t_in, t_out]``; out: a metre off the lane
    when the car can stop comfortably); from the car's speed, at ``cfg.accel``, the
    earliest its front reaches that path and when its rear is past.

    * A car that can stop comfortably waits unless it is past, rear and all,
      ``cfg.pedestrian_gap`` seconds before the pedestrian comes, or cannot be there
      sooner than that long after the pedestrian is out: it drives on towards one who
      will be gone when it gets there.
    * One that cannot stop comfortably stops only if the pedestrian could be in its path
      before the car is past with that margin (so a car too late to stop does not stop on
      the crosswalk, in the way of one who does not look); once even its hardest
      braking (``cfg.max_decel``) cannot stand it ``cfg.stop_margin`` short of the
      pedestrian's near side (past it, too), without it: stopping there leaves it in the
      way whatever, so it stops only for one who would be in its path before it is past.
      Once that braking would stand its front past the near side, in the walker's strip,
      without the corridor too: it stops only for one who would be at its side before
      its rear is past (and goes on past the others: :func:`passing`).
    * With ``kerb`` (for a car pulling away), one standing at the kerb while the car's
      front is short of its line is waited for too, if at a brisk walk (:data:`WALK`) it
      could be in the path before the car is past with that margin."""
    in_path = EGO_HALF_WIDTH + half_w + cfg.pedestrian_corridor
    can_stop = p.speed**2 <= 2.0 * cfg.decel * max(gap - cfg.stop_margin, 0.01)
    margin = cfg.pedestrian_gap

    def reach(dist: float) -> float:  # seconds until the car's front covers dist
        v, a = max(p.speed, 0.0), cfg.accel
        return (math.sqrt(v * v + 2.0 * a * max(dist, 0.0)) - v) / a

    t_clear = reach(gap + 2.0 * (half_len + EGO_HALF_LENGTH))  # the rear past its path
    lo, hi = sweep[0] - in_path, sweep[1] + in_path  # its centre in these: in the path
    if kerb and abs(v_lat) < MOVING and gap > 0.0:
        # it may step off without looking
        return max(lo - d, d - hi, 0.0) / WALK < t_clear + margin
    if abs(v_lat) < 1e-6:
        if not lo < d < hi:
            return False
        t_in, t_out = 0.0, math.inf
    else:
        beyond = max(half_lane + half_w + 1.0 - in_path, 0.0) if can_stop else 0.0
        lo, hi = (lo, hi + beyond) if v_lat > 0.0 else (lo - beyond, hi)
        t1, t2 = sorted(((lo - d) / v_lat, (hi - d) / v_lat))
        t_in, t_out = max(t1, 0.0), t2
        if t_out <= 0.0 or t_in > cfg.horizon:
            return False  # gone, or not in its path within the horizon
    if not can_stop:
        stands_at = hardest_stop(gap, p.speed, cfg)
        if stands_at < 0.0 and abs(v_lat) >= 1e-6:  # in the walker's way whatever it does
            body = EGO_HALF_WIDTH + half_w  # no corridor: when it would touch the car's side
            edge = sweep[0] - body if v_lat > 0.0 else sweep[1] + body
            return max((edge - d) / v_lat, 0.0) < t_clear
        return t_in < t_clear + (margin if stands_at >= cfg.stop_margin else 0.0)
    return not (t_clear + margin < t_in or reach(gap) > t_out + margin)


def hardest_stop(gap: float, speed: float, cfg: ModularConfig) -> float:
    """Where the car's front stands, braking its hardest (``cfg.max_decel``), as a gap to
    the thing ``gap`` metres ahead of it now (negative: past its near side)."""
    return gap - speed**2 / (2.0 * cfg.max_decel)


def passing(
    p: Percept, objs: np.ndarray, s0: float, d0: float, lane_width: float, cfg: ModularConfig
) -> np.ndarray:
    """Which pedestrians the car goes on past (a mask over the percept's objects): even
    its hardest braking would stand its front past their near side, in their way, and
    they would not be at its side before its rear is past (:func:`_yield_to_pedestrian`).
    Braking for them only leaves the car standing where they walk, so the plans are not
    checked against them."""
    out = np.zeros(len(p.classes), dtype=bool)
    front, rear = s0 + EGO_HALF_LENGTH, s0 - EGO_HALF_LENGTH
    half_lane = 0.5 * lane_width
    for i, (cls, (s, d, _, half_len, half_w, v_lat)) in enumerate(
        zip(p.classes, objs, strict=True)
    ):
        if cls != PEDESTRIAN or not math.isfinite(s) or s + half_len < rear:
            continue  # not one, out of reach, or behind the car
        gap = s - half_len - front
        if hardest_stop(gap, p.speed, cfg) >= 0.0:
            continue
        out[i] = not _yield_to_pedestrian(
            d, (d0, d0), v_lat, half_w, gap, half_len, half_lane, p, cfg
        )
    return out


def crosswalk_before(frame: RouteFrame, front: float, stand: float) -> float | None:
    """The near edge (route ``s``) of the first crosswalk still ahead of the car's
    ``front`` that its body would cover standing with its front at ``stand``, if any: a
    car that waits on a crosswalk is walked into."""
    for walk in frame.crosswalk_s:
        near, far = walk - CROSSWALK_HALF, walk + CROSSWALK_HALF
        if near > front and near < stand and far > stand - 2.0 * EGO_HALF_LENGTH:
            return float(near)
    return None


def stop_point(frame: RouteFrame, line: float) -> float:
    """Where on the route the car's front must stay behind for a stop line at ``line``:
    the line, or the crosswalk just before it (a car waiting on it is walked into)."""
    walks = frame.crosswalk_s[(frame.crosswalk_s > line - 6.0) & (frame.crosswalk_s < line)]
    return float(walks.min()) - CROSSWALK_HALF if len(walks) else line


class StopSigns:
    """The stop signs on a route (from the map, as ``(line s, zone)``) and which of them
    the car has stopped at: a sign counts as served once the car stood still (under
    :data:`~pilot.envs.driving.roads.STOP_SPEED`) with its centre in the sign's zone, as
    the leaderboard's criterion has it; a route may pass one sign twice, each a new stop."""

    def __init__(self, lines: list[tuple[float, float]]) -> None:
        self.lines = lines
        self.served: set[int] = set()

    @classmethod
    def on_route(cls, route, net: RoadNetwork) -> StopSigns:
        """The signs ``route`` crosses on ``net``, none served yet."""
        lines = [ln for ln in stop_lines_on(route, net) if ln.kind == "stop_sign"]
        return cls([(ln.s, net.stop_signs[ln.id].zone) for ln in lines])

    def ahead(self, s0: float, speed: float) -> float:
        """The route ``s`` of the next sign's line still to stop at (inf: none)."""
        for k, (line, zone) in enumerate(self.lines):
            if k in self.served or line < s0:
                continue
            if line - zone <= s0 and speed < STOP_SPEED:
                self.served.add(k)
                continue
            return line
        return math.inf
