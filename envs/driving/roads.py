"""Road networks as data: lanes with centre lines, boundaries, widths, speed limits and
successor links, traffic lights with deterministic phases, crosswalks, and routes.

Everything here is plain numpy, with no simulator attached, so planners, perception
labels and the scoring all read the same geometry the env drives on. The small scenarios'
networks are drawn in :mod:`.layouts`, the town's in :mod:`.town`.

Frame: metres, ``x`` east, ``y`` north, headings in radians from +x towards +y. Lateral
offsets are positive to the left of a lane's direction of travel.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from .boxcast import _jit, numba

GREEN, YELLOW, RED = 0, 1, 2
LIGHT_NAMES = ("green", "yellow", "red")


def wrap_angle(a: float) -> float:
    """``a`` wrapped to ``[-π, π)``."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def segment_intersection(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray
) -> tuple[float, float] | None:
    """Parameters ``(u, t)`` where segments ``a + u(b - a)`` and ``c + t(d - c)`` meet.

    Plain floats: the checks of every step call this for every light, and numpy's
    overhead on two-element arrays was most of its cost (same float64 arithmetic)."""
    ax, ay = _xy(a)
    bx, by = _xy(b)
    cx, cy = _xy(c)
    dx, dy = _xy(d)
    rx, ry, sx, sy = bx - ax, by - ay, dx - cx, dy - cy
    den = rx * sy - ry * sx
    if abs(den) < 1e-12:
        return None
    qx, qy = cx - ax, cy - ay
    u = (qx * sy - qy * sx) / den
    t = (qx * ry - qy * rx) / den
    if 0.0 <= u <= 1.0 and 0.0 <= t <= 1.0:
        return float(u), float(t)
    return None


def _xy(p) -> list[float]:
    return p.tolist() if isinstance(p, np.ndarray) else [float(p[0]), float(p[1])]


def polyline_crossings(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[tuple[int, float]]:
    """``(i, u)`` of every segment ``points[i] → points[i + 1]`` that meets segment
    ``a → b``, at ``u`` along it: :func:`segment_intersection` over a whole polyline at
    once (the same arithmetic), except that a polyline vertex lying on ``a → b`` counts
    once, on the earlier segment, even when rounding puts it a hair to either side (a
    route's vertex often is a lane's end, on the stop line)."""
    tol = 1e-9
    p = np.asarray(points, dtype=np.float64)
    r = p[1:] - p[:-1]
    sx, sy = float(b[0] - a[0]), float(b[1] - a[1])
    den = r[:, 0] * sy - r[:, 1] * sx
    qx, qy = a[0] - p[:-1, 0], a[1] - p[:-1, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (qx * sy - qy * sx) / den
        t = (qx * r[:, 1] - qy * r[:, 0]) / den
    hit = (np.abs(den) >= 1e-12) & (u >= -tol) & (u <= 1.0 + tol) & (t >= 0.0) & (t <= 1.0)
    out: list[tuple[int, float]] = []
    for i in np.flatnonzero(hit).tolist():
        if out and out[-1][0] == i - 1 and out[-1][1] >= 1.0 - tol and u[i] <= tol:
            continue  # the same crossing, at the vertex between two segments
        out.append((i, min(max(float(u[i]), 0.0), 1.0)))
    return out


def arc_length(points: np.ndarray) -> np.ndarray:
    """Distance along a polyline at each of its vertices (0 at the first)."""
    d = points[1:] - points[:-1]
    out = np.zeros(len(points))
    np.cumsum(np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]), out=out[1:])
    return out


def left_normals(points: np.ndarray, closed: bool) -> np.ndarray:
    """Unit normals pointing left of the direction of travel, one per vertex (averaged over
    the two segments that meet there, so offset curves stay parallel through bends)."""
    if len(points) == 2 and not closed:  # one segment (most lanes): its normal, at both ends
        dx, dy = float(points[1, 0] - points[0, 0]), float(points[1, 1] - points[0, 1])
        norm = math.hypot(dx, dy)
        return np.array([[-dy / norm, dx / norm], [-dy / norm, dx / norm]])
    d = points[1:] - points[:-1]
    return _vertex_normals(d / np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])[:, None], closed)


def _vertex_normals(d: np.ndarray, closed: bool) -> np.ndarray:
    """:func:`left_normals` from the polyline's unit segment directions ``d``."""
    if closed:  # the last point repeats the first
        prev = np.concatenate([d[-1:], d])
        nxt = np.concatenate([d, d[:1]])
    else:
        prev = np.concatenate([d[:1], d])
        nxt = np.concatenate([d, d[-1:]])
    t = prev + nxt
    t /= np.sqrt(t[:, 0] * t[:, 0] + t[:, 1] * t[:, 1])[:, None]
    # scale so that the offset of both adjacent segments is exactly the requested one
    cos_half = np.clip(t[:, 0] * nxt[:, 0] + t[:, 1] * nxt[:, 1], 0.5, 1.0)
    return np.stack([-t[:, 1], t[:, 0]], axis=1) / cos_half[:, None]


def offset_polyline(points: np.ndarray, offset: float, closed: bool = False) -> np.ndarray:
    """``points`` moved ``offset`` metres to the left (negative: right)."""
    return points + offset * left_normals(points, closed)


class Lane:
    """One lane: a centre-line polyline driven from its first point to its last.

    Closed lanes (on a loop) repeat their first point at the end and are their own
    successor. ``light`` is the traffic light that guards the lane's end (its stop line);
    ``left`` / ``right`` are neighbouring lanes in the same direction (for lane changes).
    """

    def __init__(
        self,
        lane_id: int,
        centre: np.ndarray,
        width: float,
        speed_limit: float,
        successors: Sequence[int] = (),
        left: int | None = None,
        right: int | None = None,
        closed: bool = False,
        light: int | None = None,
        kind: str = "road",
        stop: int | None = None,
    ) -> None:
        self.id = int(lane_id)
        self.centre = np.asarray(centre, dtype=np.float64)
        self.width = float(width)
        self.speed_limit = float(speed_limit)
        self.successors = tuple(map(int, successors))
        self.left, self.right = left, right
        self.closed = bool(closed)
        self.light = light
        self.stop = stop
        self.kind = kind
        d = self.centre[1:] - self.centre[:-1]  # segments: arc length, headings, normals
        seg = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
        self.s = np.zeros(len(self.centre))
        np.cumsum(seg, out=self.s[1:])  # as arc_length()
        self.length = float(self.s[-1])
        self.headings = np.arctan2(d[:, 1], d[:, 0])
        if len(d) == 1 and not self.closed:
            normals = left_normals(self.centre, False)
        else:
            normals = _vertex_normals(d / seg[:, None], self.closed)
        self.left_boundary = self.centre + 0.5 * self.width * normals
        self.right_boundary = self.centre - 0.5 * self.width * normals

    def pose_at(self, s: float) -> tuple[float, float, float]:
        """``(x, y, heading)`` at arc length ``s`` (wrapped on closed lanes, else clipped)."""
        s = s % self.length if self.closed else min(max(s, 0.0), self.length)
        i = int(np.clip(np.searchsorted(self.s, s, side="right") - 1, 0, len(self.s) - 2))
        u = (s - self.s[i]) / max(self.s[i + 1] - self.s[i], 1e-9)
        p = self.centre[i] + u * (self.centre[i + 1] - self.centre[i])
        return float(p[0]), float(p[1]), float(self.headings[i])

    def project(self, x: float, y: float) -> tuple[float, float]:
        """``(s, lateral)`` of the point's projection onto this lane's centre line."""
        a, b = self.centre[:-1], self.centre[1:]
        ab = b - a
        ll = np.maximum(np.sum(ab * ab, axis=1), 1e-12)
        px, py = x - a[:, 0], y - a[:, 1]
        t = np.clip((px * ab[:, 0] + py * ab[:, 1]) / ll, 0.0, 1.0)
        dx, dy = px - t * ab[:, 0], py - t * ab[:, 1]
        i = int(np.argmin(dx * dx + dy * dy))
        seg = math.sqrt(ll[i])
        lateral = (ab[i, 0] * py[i] - ab[i, 1] * px[i]) / seg
        return float(self.s[i] + t[i] * seg), float(lateral)


@dataclasses.dataclass(frozen=True)
class TrafficLight:
    """A light with a fixed cycle: green for ``green`` s starting at ``start`` within the
    ``cycle``, then yellow for ``yellow`` s, red for the rest. ``stop_line`` is the segment
    (two points) a vehicle must not cross on red, in the direction ``heading``."""

    id: int
    stop_line: tuple[tuple[float, float], tuple[float, float]]
    heading: float
    start: float
    green: float
    yellow: float
    cycle: float

    def state(self, t: float) -> int:
        """GREEN, YELLOW or RED at time ``t`` (seconds)."""
        u = (t - self.start) % self.cycle
        if u < self.green:
            return GREEN
        return YELLOW if u < self.green + self.yellow else RED


#: A crosswalk keeps to the light whose stop line's middle lies within this many metres of
#: its own middle: the light of the approach it crosses, just before or after the line.
CROSSWALK_LIGHT = 6.0

#: A stop sign's zone (m) before its line, or before a crosswalk in front of the line: the
#: zone then covers the crosswalk too (CARLA's stop trigger volumes cover the approach), so
#: a car that stops short of the crosswalk, as it must, has stopped in the zone.
SIGN_ZONE = 5.0


@dataclasses.dataclass(frozen=True)
class StopSign:
    """A stop sign at an unsignalised junction: a vehicle must come to a stop (speed under
    :data:`STOP_SPEED`) in the stop zone, the ``zone`` metres before ``stop_line`` (two
    points), before it crosses the line in the direction ``heading``."""

    id: int
    stop_line: tuple[tuple[float, float], tuple[float, float]]
    heading: float
    zone: float = SIGN_ZONE


#: A car slower than this (m/s) has stopped, for stop signs (CARLA's criterion is 0.1 m/s).
STOP_SPEED = 0.1


@dataclasses.dataclass(frozen=True)
class LanePoint:
    """Where a point lies relative to the nearest lane."""

    lane: int  # lane id, -1 when the network is empty
    s: float  # arc length of the projection along that lane
    lateral: float  # signed offset from the centre line (left positive)
    heading_error: float  # point heading minus lane heading, wrapped (0 when not given)
    in_lane: bool  # within the lane's half width (and, with a heading, facing its way)
    on_road: bool  # within the half width of some lane, whatever its direction
    #: The highest speed limit among the lanes that contain the point (and face the
    #: heading): where a junction's connectors overlap, the most permissive one's (the
    #: nearest lane's limit when none contains it).
    speed_limit: float = math.inf


def _closest(px: float, py: float, ax: float, ay: float, len2: float) -> tuple[float, float]:
    """``(t, d²)``: the fraction along a segment (vector ``ax, ay``, squared length
    ``len2``) of its point closest to a point ``(px, py)`` from the segment's start, and
    the squared distance to it. The arithmetic of every segment query here and in
    :mod:`.routes`, compiled into their loops where numba is installed."""
    t = min(max((px * ax + py * ay) / len2, 0.0), 1.0)
    dx, dy = px - t * ax, py - t * ay
    return t, dx * dx + dy * dy


if numba is not None:
    _closest = numba.extending.register_jitable(_closest)


def _locate_loop(seg: np.ndarray, x: float, y: float, ch: float, sh: float, facing: bool):
    """:meth:`RoadNetwork.locate` on the packed rows ``seg``, by :func:`_closest`: the row
    it picks (the nearest containing the point and, when ``facing``, pointing along
    ``(ch, sh)``; the first on a tie), the fraction along it and the lateral offset,
    whether any row contains the point, whether the picked one contains it and faces that
    way, and the highest speed limit of those that do. Compiled by numba where it is
    installed."""
    best, k, t_k, within, any_inside, top = np.inf, 0, 0.0, False, False, -np.inf
    for j in range(seg.shape[0]):
        t, d2 = _closest(x - seg[j, 0], y - seg[j, 1], seg[j, 2], seg[j, 3], seg[j, 4])
        inside = d2 <= seg[j, 6]
        any_inside = any_inside or inside
        if facing:  # prefer a lane that contains the point and faces the heading
            aligned = (seg[j, 2] * ch + seg[j, 3] * sh) > 0.0
            cost = (d2 if aligned else d2 + 1e3) + (0.0 if inside and aligned else 1e6)
        else:
            aligned = inside
            cost = d2 if inside else d2 + 1e6
        if inside and aligned:
            top = max(top, seg[j, 10])
        if cost < best:
            best, k, t_k, within = cost, j, t, inside and aligned
    px, py = x - seg[k, 0], y - seg[k, 1]
    lateral = (seg[k, 2] * py - seg[k, 3] * px) / seg[k, 5]
    return k, t_k, lateral, any_inside, within, top


def _lanes_near_loop(
    seg: np.ndarray, points: np.ndarray, r2: float
) -> tuple[np.ndarray, np.ndarray]:
    """:meth:`RoadNetwork.lanes_near` on the packed rows ``seg``: per segment the point
    nearest to it (the first on a tie) by :func:`_closest`; per lane within ``r2``
    (squared) its nearest segment (the first on a tie), lanes in id order. A loop over the
    few dozen segments of a cell, compiled by numba where it is installed."""
    m = seg.shape[0]
    lane_of = np.empty(m, np.int64)
    d2_of, s_of = np.empty(m), np.empty(m)
    count = 0
    for j in range(m):
        best, t_best = np.inf, 0.0
        for p in range(points.shape[0]):
            px, py = points[p, 0] - seg[j, 0], points[p, 1] - seg[j, 1]
            t, d2 = _closest(px, py, seg[j, 2], seg[j, 3], seg[j, 4])
            if d2 < best:
                best, t_best = d2, t
        if not best < r2:
            continue
        lane, q = int(seg[j, 9]), 0
        while q < count and lane_of[q] != lane:
            q += 1
        if q == count or best < d2_of[q]:
            lane_of[q], d2_of[q], s_of[q] = lane, best, seg[j, 8] + t_best * seg[j, 5]
            count = max(count, q + 1)
    order = np.argsort(lane_of[:count])
    return lane_of[:count][order], s_of[:count][order]


_lanes_near = _lanes_near_loop if numba is None else _jit(_lanes_near_loop)
_locate = _locate_loop if numba is None else _jit(_locate_loop)


class RoadNetwork:
    """Lanes, lights and crosswalks of one world, with vectorised point queries.

    All lane segments are stacked into flat arrays once, so :meth:`locate` projects a point
    onto every segment in a handful of numpy operations. ``surfaces`` are convex polygons
    (counter-clockwise) of paved ground outside the lanes, such as the gaps between a
    junction's connectors: painted as road, and on the road for :meth:`locate`.
    """

    def __init__(
        self,
        kind: str,
        lanes: Sequence[Lane],
        lights: Sequence[TrafficLight] = (),
        crosswalks: Sequence[tuple[tuple[float, float], tuple[float, float]]] = (),
        stop_signs: Sequence[StopSign] = (),
        surfaces: Sequence[np.ndarray] = (),
    ) -> None:
        self.kind = kind
        self.stop_signs = list(stop_signs)
        self.lights = list(lights)
        # the lights' cycles as arrays: every light's state every step in a few operations
        self._light_cycle = np.array(
            [(g.start, g.green, g.green + g.yellow, g.cycle) for g in self.lights], np.float64
        ).reshape(-1, 4)
        self._lights_kept = (np.inf, -np.inf, np.zeros(0, dtype=np.int64))

        def mids(guards) -> np.ndarray:
            lines = np.array([g.stop_line for g in guards], dtype=np.float64).reshape(-1, 2, 2)
            return lines.mean(axis=1)

        #: The middles of the lights' and the signs' stop lines (``n × 2``), and each
        #: sign's zone length, for the infraction checks' near-line test.
        self.light_mids, self.sign_mids = mids(self.lights), mids(self.stop_signs)
        self.sign_zone = np.array([g.zone for g in self.stop_signs], dtype=np.float64)
        self.surfaces = [np.asarray(poly, dtype=np.float64) for poly in surfaces]
        self._surface_box = np.array(
            [(*poly.min(axis=0), *poly.max(axis=0)) for poly in self.surfaces]
        ).reshape(-1, 4)
        self.lanes = list(lanes)
        for i, lane in enumerate(self.lanes):
            if lane.id != i:
                raise ValueError("lane ids must be 0..n-1 in order")
        self.crosswalks = [np.asarray(c, dtype=np.float64) for c in crosswalks]
        walks = np.array(self.crosswalks, dtype=np.float64).reshape(-1, 2, 2)
        #: Every crosswalk's first end, the vector to its other end and its length.
        self.crosswalk_starts = walks[:, 0]
        self.crosswalk_vectors = walks[:, 1] - walks[:, 0]
        self.crosswalk_lengths = np.sqrt(np.sum(self.crosswalk_vectors**2, axis=1))
        #: The light each crosswalk's walkers keep to (-1: none): the one whose stop line's
        #: middle is nearest the crosswalk's, within :data:`CROSSWALK_LIGHT` metres.
        self.crosswalk_light = np.full(len(walks), -1, dtype=np.int64)
        if len(self.lights) and len(walks):
            gap = np.linalg.norm(walks.mean(axis=1)[:, None] - self.light_mids[None], axis=2)
            near = gap.min(axis=1) <= CROSSWALK_LIGHT
            self.crosswalk_light[near] = gap.argmin(axis=1)[near]
        self._lit_walks = np.flatnonzero(self.crosswalk_light >= 0)  # for every step's lookup
        a = np.concatenate([ln.centre[:-1] for ln in self.lanes])
        b = np.concatenate([ln.centre[1:] for ln in self.lanes])
        self._a, self._ab = a, b - a
        self._len2 = np.maximum(np.sum(self._ab**2, axis=1), 1e-12)
        self._len = np.sqrt(self._len2)
        per = np.array([len(ln.centre) - 1 for ln in self.lanes], dtype=np.int64)  # segments
        self._lane = np.repeat(np.array([ln.id for ln in self.lanes], dtype=np.int64), per)
        #: Every lane segment, lane after lane: start point, vector to its end, lane id.
        self.segment_starts, self.segment_vectors, self.segment_lanes = a, self._ab, self._lane
        self._s0 = np.concatenate([ln.s[:-1] for ln in self.lanes])
        self._half = np.repeat(np.array([ln.width / 2 for ln in self.lanes]), per)
        #: Half the widest lane's width: a point farther from every centre line is in none.
        self.max_half_width = float(self._half.max())
        self._heading = np.concatenate([ln.headings for ln in self.lanes])
        pts = np.concatenate(
            [np.vstack([ln.left_boundary, ln.right_boundary]) for ln in self.lanes]
        )
        margin = 20.0
        self.bounds = (
            float(pts[:, 0].min() - margin),
            float(pts[:, 1].min() - margin),
            float(pts[:, 0].max() + margin),
            float(pts[:, 1].max() + margin),
        )
        # every lane laid end to end (with gaps) for vectorised poses of many vehicles
        offsets = np.cumsum([0.0] + [ln.length + 10.0 for ln in self.lanes[:-1]])
        self._offset = offsets
        self.lane_lengths = np.array([ln.length for ln in self.lanes])
        self.lane_closed = np.array([ln.closed for ln in self.lanes])
        self._cat_s = np.concatenate([ln.s + o for ln, o in zip(self.lanes, offsets, strict=True)])
        self._cat_x = np.concatenate([ln.centre[:, 0] for ln in self.lanes])
        self._cat_y = np.concatenate([ln.centre[:, 1] for ln in self.lanes])
        self._cat_h = np.concatenate([np.append(ln.headings, ln.headings[-1]) for ln in self.lanes])
        # spatial hash: the segments that may matter for a point in each cell, so a query
        # projects onto a few dozen segments instead of all of them
        self._cell = 10.0
        reach = self.max_half_width + 0.5 * self._cell * math.sqrt(2.0) + 1.0
        lo = np.minimum(a, b) - reach
        hi = np.maximum(a, b) + reach
        c0 = np.floor(lo / self._cell).astype(np.int64)
        span = np.floor(hi / self._cell).astype(np.int64) - c0 + 1  # cells across, per axis
        count = span[:, 0] * span[:, 1]
        seg = np.repeat(np.arange(len(a)), count)  # one row per (segment, cell it covers)
        k = np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
        cx = c0[seg, 0] + k // span[seg, 1]
        cy = c0[seg, 1] + k % span[seg, 1]
        order = np.lexsort((seg, cy, cx))  # by cell, segments in order within one
        seg, cx, cy = seg[order], cx[order], cy[order]
        start = np.flatnonzero(np.diff(cx, prepend=cx[:1] - 1) | np.diff(cy, prepend=cy[:1] - 1))
        end = np.append(start[1:], len(seg))
        # one packed row per segment, so a query slices columns (views) of one array
        packed = np.stack(
            [
                a[:, 0],
                a[:, 1],
                self._ab[:, 0],
                self._ab[:, 1],
                self._len2,
                self._len,
                self._half**2,
                self._heading,
                self._s0,
                self._lane.astype(np.float64),
                np.repeat(np.array([ln.speed_limit for ln in self.lanes]), per),
            ],
            axis=1,
        )
        rows = packed[seg]  # each cell's segments are a slice (a view) of these rows
        self._buckets = {
            (x, y): rows[i:j]
            for x, y, i, j in zip(
                cx[start].tolist(), cy[start].tolist(), start.tolist(), end.tolist(), strict=True
            )
        }
        self._all = packed
        preds = {ln.id: 0 for ln in self.lanes}
        for ln in self.lanes:
            for s in ln.successors:
                preds[s] += 1
        #: Lanes with no predecessor, where traffic enters the network.
        self.sources = [ln.id for ln in self.lanes if preds[ln.id] == 0 and not ln.closed]

    def locate(self, x: float, y: float, heading: float | None = None) -> LanePoint:
        """The nearest lane (preferring one that contains the point and faces ``heading``),
        the arc length and lateral offset on it, and whether the point is in a lane / on
        the road."""
        seg = self.segments_near(x, y)
        facing = heading is not None
        ch, sh = (math.cos(heading), math.sin(heading)) if facing else (0.0, 0.0)
        k, t, lateral, inside, within, limit = _locate(seg, float(x), float(y), ch, sh, facing)
        row = seg[k]
        return LanePoint(
            lane=int(row[9]),
            s=float(row[8] + t * row[5]),
            lateral=float(lateral),
            heading_error=wrap_angle(heading - float(row[7])) if facing else 0.0,
            in_lane=bool(within),
            on_road=bool(inside) or self._on_surface(x, y),
            speed_limit=float(limit) if within else float(row[10]),
        )

    def lanes_near(self, points: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """``(lane ids, s)``: every lane whose centre line passes within ``radius`` of one
        of ``points`` (``n × 2``, all within a few metres of each other), with the arc
        length of its closest approach; for the vehicles a car's body is in the way of."""
        seg = self.segments_near(float(points[0, 0]), float(points[0, 1]))
        return _lanes_near(seg, np.ascontiguousarray(points, dtype=np.float64), radius * radius)

    def segments_near(self, x: float, y: float) -> np.ndarray:
        """Packed rows of the segments that may matter at ``(x, y)``: those of its cell of
        the spatial hash, or all of them far from every lane."""
        seg = self._buckets.get((math.floor(x / self._cell), math.floor(y / self._cell)))
        return self._all if seg is None else seg

    def _on_surface(self, x: float, y: float) -> bool:
        """Whether ``(x, y)`` lies on one of the paved :attr:`surfaces`."""
        if not self.surfaces:
            return False
        b = self._surface_box
        for i in np.flatnonzero((b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])):
            p = self.surfaces[i]
            e = np.roll(p, -1, axis=0) - p
            if np.all(e[:, 0] * (y - p[:, 1]) - e[:, 1] * (x - p[:, 0]) >= 0.0):
                return True
        return False

    def poses(self, lanes: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, y, heading)`` arrays for arc lengths ``s`` on lanes ``lanes`` (vectorised
        :meth:`Lane.pose_at`)."""
        length = self.lane_lengths[lanes]
        s = np.where(self.lane_closed[lanes], np.mod(s, length), np.clip(s, 0.0, length - 1e-6))
        g = self._offset[lanes] + s
        i = np.searchsorted(self._cat_s, g, side="right") - 1
        return (
            np.interp(g, self._cat_s, self._cat_x),
            np.interp(g, self._cat_s, self._cat_y),
            self._cat_h[i],
        )

    def crosswalk_red_left(self, t: float) -> np.ndarray:
        """Seconds from ``t`` that each crosswalk's light stays red (0 while it is green or
        yellow; infinite for a crosswalk with no light)."""
        left = np.full(len(self.crosswalks), np.inf)
        if len(self._lit_walks):
            u, _, amber, cycle = self._phase(t)
            red = np.where(u >= amber, cycle - u, 0.0)
            left[self._lit_walks] = red[self.crosswalk_light[self._lit_walks]]
        return left

    def _phase(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every light's seconds into its cycle at ``t``, and its green's end, yellow's end
        and cycle length (seconds into the cycle)."""
        start, green, amber, cycle = self._light_cycle.T
        return np.mod(t - start, cycle), green, amber, cycle

    def light_states(self, t: float) -> np.ndarray:
        """Every light's state at time ``t`` (:meth:`TrafficLight.state`, to the bit: numpy's
        float ``%`` is Python's), as an int array (not to be written to): kept until the
        next light changes, a few times a cycle."""
        kept = self._lights_kept
        if kept[0] <= t < kept[1]:
            return kept[2]
        u, green, amber, cycle = self._phase(t)
        states = np.where(u < green, GREEN, np.where(u < amber, YELLOW, RED)).astype(np.int64)
        left = np.where(u < green, green - u, np.where(u < amber, amber - u, cycle - u))
        # a microsecond short of the change, clear of the rounding in t - start
        self._lights_kept = (t, t + float(left.min(initial=np.inf)) - 1e-6, states)
        return states
