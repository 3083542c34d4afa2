"""Routes: a driving task as a polyline through a sequence of lanes, from a start point to
a goal, with the ego's progress along it (:class:`Route`), and routes drawn through a
network (:func:`sample_route`, :func:`build_route`)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

import numpy as np

from .boxcast import _jit, numba
from .roads import Lane, RoadNetwork, _closest, arc_length


class Route:
    """A driving task: a polyline through a sequence of lanes, from a start point to a goal.

    Progress is the arc length of the ego's projection onto the route, searched only in a
    window around the last progress so that a loop's start and end never get confused.
    """

    def __init__(self, lanes: Sequence[int], points: np.ndarray) -> None:
        self.lanes = tuple(int(i) for i in lanes)
        nexts: dict[int, set[int]] = {}
        for a, b in zip(self.lanes, self.lanes[1:], strict=False):
            nexts.setdefault(a, set()).add(b)
        self._next = {a: b.pop() for a, b in nexts.items() if len(b) == 1}
        pts = np.asarray(points, dtype=np.float64)
        keep = np.concatenate([[True], np.hypot(*np.diff(pts, axis=0).T) > 1e-6])
        self.points = pts[keep]
        self.s = arc_length(self.points)
        self.length = float(self.s[-1])
        d = np.diff(self.points, axis=0)
        self.headings = np.arctan2(d[:, 1], d[:, 0])
        self._len2 = np.maximum(np.sum(d * d, axis=1), 1e-12)
        self._x = np.ascontiguousarray(self.points[:, 0])
        self._y = np.ascontiguousarray(self.points[:, 1])
        # contiguous columns and a list of ``s`` for bisect: project() runs every step
        self._abx = np.ascontiguousarray(d[:, 0])
        self._aby = np.ascontiguousarray(d[:, 1])
        self._s_list = self.s.tolist()

    def next_lane(self, lane: int) -> int:
        """The lane the route takes after ``lane``: -1 when it does not pass ``lane``, ends
        in it, or leaves it two ways (a route through one junction twice)."""
        return self._next.get(lane, -1)

    def project(
        self, x: float, y: float, s_hint: float, behind: float = 10.0, ahead: float = 40.0
    ) -> tuple[float, float, float]:
        """``(s, lateral, route heading)`` of the nearest route point with ``s`` in
        ``[s_hint - behind, s_hint + ahead]``."""
        s_list = self._s_list
        lo = max(bisect.bisect_left(s_list, s_hint - behind) - 1, 0)
        hi = min(bisect.bisect_left(s_list, s_hint + ahead) + 1, len(s_list) - 1)
        hi = max(hi, lo + 1)
        i, t = _nearest(float(x), float(y), self._x, self._y, self._abx, self._aby, self._len2,
                        lo, hi)  # fmt: skip
        seg = math.sqrt(self._len2[i])
        px, py = x - self._x[i], y - self._y[i]
        lateral = (self._abx[i] * py - self._aby[i] * px) / seg
        return float(s_list[i] + t * seg), float(lateral), float(self.headings[i])

    def point_at(self, s: float | np.ndarray) -> np.ndarray:
        """Points at arc lengths ``s`` (clipped to the route), shape ``(..., 2)``."""
        s = np.asarray(s, dtype=np.float64)
        out = np.empty(s.shape + (2,))
        out[..., 0] = np.interp(s, self.s, self._x)  # interp clamps to the ends
        out[..., 1] = np.interp(s, self.s, self._y)
        return out

    def xy_at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` arrays at arc lengths ``s``: :meth:`point_at` without the stacking."""
        return np.interp(s, self.s, self._x), np.interp(s, self.s, self._y)

    def ahead_in_frame(
        self, s: np.ndarray, x: float, y: float, c: float, sn: float, scale: float, out: np.ndarray
    ) -> None:
        """The route's points at arc lengths ``s`` (clipped to the route, as
        :meth:`xy_at`) in the frame of a car at ``(x, y)`` whose heading has cosine ``c``
        and sine ``sn`` (x forward, y left), over ``scale``, into ``out[0::2]`` (x) and
        ``out[1::2]`` (y): every step's waypoints, in one compiled call."""
        _in_frame(self.s, self._x, self._y, s, x, y, c, sn, scale, out)

    def heading_at(self, s: float) -> float:
        i = int(np.searchsorted(self.s, s, side="right")) - 1
        return float(self.headings[min(max(i, 0), len(self.headings) - 1)])


def _nearest_loop(x, y, xs, ys, abx, aby, len2, lo, hi):
    """The segment ``i`` in ``[lo, hi)`` of a polyline (starts ``xs, ys``, vectors ``abx,
    aby``, squared lengths ``len2``) nearest to ``(x, y)`` (the first on a tie) and the
    fraction ``t`` along it of the nearest point. Compiled by numba where it is installed."""
    best, k, t_k = np.inf, lo, 0.0
    for i in range(lo, hi):
        t, d2 = _closest(x - xs[i], y - ys[i], abx[i], aby[i], len2[i])
        if d2 < best:
            best, k, t_k = d2, i, t
    return k, t_k


_nearest = _nearest_loop if numba is None else _jit(_nearest_loop)


def _interp(xp, fp, x):
    """``np.interp(x, xp, fp)`` for one ``x``, with numpy's arithmetic."""
    n = len(xp)
    if x < xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    lo, hi = 0, n
    while lo < hi:  # the last point at or before x (np.searchsorted, side="right", - 1)
        mid = (lo + hi) // 2
        if xp[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    j = lo - 1
    if x == xp[j]:
        return fp[j]
    return (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]) * (x - xp[j]) + fp[j]


def _in_frame_loop(rs, rx, ry, s, x, y, c, sn, scale, out):
    """:meth:`Route.ahead_in_frame` (compiled by numba where it is installed)."""
    for k in range(len(s)):
        dx, dy = _interp(rs, rx, s[k]) - x, _interp(rs, ry, s[k]) - y
        out[2 * k] = (c * dx + sn * dy) / scale
        out[2 * k + 1] = (-sn * dx + c * dy) / scale


if numba is None:
    _in_frame = _in_frame_loop
else:
    _interp = numba.extending.register_jitable(_interp)
    _in_frame = _jit(_in_frame_loop)


def _lane_slice(lane: Lane, s0: float, s1: float) -> np.ndarray:
    """The centre line between arc lengths ``s0 < s1`` of an open lane."""
    inner = lane.centre[(lane.s > s0) & (lane.s < s1)]
    a = np.array(lane.pose_at(s0)[:2])
    b = np.array(lane.pose_at(s1)[:2])
    return np.vstack([a, inner, b])


def sample_route(
    net: RoadNetwork, rng: np.random.Generator, length: float, start_margin: float = 15.0
) -> tuple[Route, float]:
    """A route of about ``length`` metres (shorter where the network ends) from a random
    start, following random successors; returns the route and the start lane's ``s``.

    On a loop the route runs around the chosen lane; on open networks it starts on a source
    lane (where traffic enters) ``start_margin`` metres in, so the ego begins on the road.
    """
    if net.sources:
        lane = net.lanes[net.sources[int(rng.integers(len(net.sources)))]]
        s_start = min(start_margin + float(rng.uniform(0.0, 10.0)), 0.5 * lane.length)
    else:
        lane = net.lanes[int(rng.integers(len(net.lanes)))]
        s_start = float(rng.uniform(0.0, lane.length))
    return build_route(net, rng, lane.id, s_start, length), s_start


def build_route(
    net: RoadNetwork,
    rng: np.random.Generator,
    lane_id: int,
    s_start: float,
    length: float,
    choose: Callable[[Lane], int] | None = None,
) -> Route:
    """A route from ``s_start`` on lane ``lane_id``, choosing random successors, or the
    lane ``choose(lane)`` names after each lane when given (then ``rng`` is not drawn)."""
    lane = net.lanes[lane_id]
    lanes, parts, left = [lane.id], [], length
    s = s_start
    while left > 1e-6:
        if lane.closed:
            take = min(left, lane.length - s % lane.length)
            s_mod = s % lane.length
            parts.append(_lane_slice(lane, s_mod, s_mod + take))
            left -= take
            s = 0.0
            continue
        take = min(left, lane.length - s)
        if take > 1e-6:
            parts.append(_lane_slice(lane, s, s + take))
            left -= take
        if left <= 1e-6 or not lane.successors:
            break
        if choose is not None:
            lane = net.lanes[choose(lane)]
        else:
            lane = net.lanes[lane.successors[int(rng.integers(len(lane.successors)))]]
        lanes.append(lane.id)
        s = 0.0
    return Route(lanes, np.vstack(parts))


# ------------------------------------------------------------------------------- generators
