"""The traffic's per-step arithmetic, compiled: the obstacles each vehicle may stop for,
car following, stop signs and right of way at junctions, and the vehicles' poses (the
footprint contacts and the pedestrians' walk use :func:`compiled` in their modules).

Each function loops over a few dozen vehicles, where array code spent its time in the
interpreter between small numpy operations. They are compiled by numba (cached on disk:
compiled once, then loaded) and, where numba is missing, run as the same Python, slower.
The arithmetic is numpy's, operation for operation (``v * v`` for ``v ** 2``, Python's
float ``%`` for ``np.mod``, :func:`_pose` for ``np.interp``), so an episode comes out to
the bit the same whichever way it runs.

The rules themselves are described where they are used: :class:`.traffic.TrafficModel`
(car following, lane changes), :mod:`.junctions` (stop signs, right of way) and
:mod:`.pedestrians`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .boxcast import _jit, numba
from .roads import GREEN, _lanes_near


def compiled(fn):
    """``fn`` compiled as :mod:`.boxcast` compiles (cached, no GIL), or as it is without numba."""
    return fn if numba is None else _jit(fn)


def _helper(fn):
    """A helper of the compiled functions: compiled into them (not callable compiled from
    Python, which keeps compiling cheap), or as it is without numba."""
    return fn if numba is None else numba.extending.register_jitable(fn)


class Lanes(NamedTuple):
    """A road network's lanes as flat arrays (per lane, indexed by lane id, unless said)."""

    length: np.ndarray
    closed: np.ndarray  # bool
    width: np.ndarray
    left: np.ndarray  # int, the neighbour on the left (-1: none)
    right: np.ndarray
    # every lane's points laid end to end, as RoadNetwork.poses interpolates in them
    offset: np.ndarray  # where each lane starts along them
    cat_s: np.ndarray  # per point
    cat_x: np.ndarray
    cat_y: np.ndarray
    cat_h: np.ndarray
    # every lane's centre line segments, lane after lane, as Lane.project sees them
    seg_first: np.ndarray  # int: lane i's segments are seg_first[i] up to seg_first[i + 1]
    seg_start: np.ndarray  # per segment, (n, 2)
    seg_vec: np.ndarray  # (n, 2)
    seg_s: np.ndarray  # the lane's arc length at the segment's start


def lane_tables(net) -> Lanes:
    """:class:`Lanes` of ``net`` (a :class:`.roads.RoadNetwork`). The end-to-end tables are
    the network's own, so that poses agree with ``net.poses`` to the bit."""
    lanes = net.lanes
    return Lanes(
        length=net.lane_lengths,
        closed=net.lane_closed,
        width=np.array([ln.width for ln in lanes], dtype=np.float64),
        left=np.array([-1 if ln.left is None else ln.left for ln in lanes], dtype=np.int64),
        right=np.array([-1 if ln.right is None else ln.right for ln in lanes], dtype=np.int64),
        offset=net._offset,
        cat_s=net._cat_s,
        cat_x=net._cat_x,
        cat_y=net._cat_y,
        cat_h=net._cat_h,
        seg_first=np.cumsum([0] + [len(ln.centre) - 1 for ln in lanes]).astype(np.int64),
        seg_start=np.ascontiguousarray(net.segment_starts),
        seg_vec=np.ascontiguousarray(net.segment_vectors),
        seg_s=np.concatenate([ln.s[:-1] for ln in lanes]),
    )


class Vehicles(NamedTuple):
    """The arrays of a :class:`.traffic.TrafficState` (the same names), for the compiled
    functions: ``Vehicles(**vars(state))``. They write into the state's arrays."""

    lane: np.ndarray
    s: np.ndarray
    v: np.ndarray
    v0: np.ndarray
    d: np.ndarray
    next_lane: np.ndarray
    active: np.ndarray
    cooldown: np.ndarray
    stop_wait: np.ndarray
    stop_ticket: np.ndarray
    go: np.ndarray
    entered: np.ndarray


def ego_slot(ego) -> tuple[int, float, float]:
    """The ego ``(lane, s, speed)`` or None as the compiled functions take it: lane -1 when
    it is in no lane."""
    return (-1, 0.0, 0.0) if ego is None else (int(ego[0]), float(ego[1]), float(ego[2]))


#: Columns of an obstacle table (float rows): the lane, the arc length on it, the speed (-1:
#: a light's stop line, which a vehicle too close to stop comfortably ignores), the half
#: length; at a junction's conflict points (CONFLICT 1) the entry rank and the owner
#: (vehicle index, -1 the ego) that decide who yields (:func:`_nearest`).
LANE, S, V, HALF, RANK, OWNER, CONFLICT = range(7)


@_helper
def _row(row, lane, s, v, half, rank, owner, conflict):
    """Fill a row of an obstacle table."""
    row[LANE], row[S], row[V], row[HALF] = lane, s, v, half
    row[RANK], row[OWNER], row[CONFLICT] = rank, owner, conflict


# ------------------------------------------------------------------------------ poses
@_helper
def _point_before(xs, g):
    """The last of the points ``xs`` (sorted) at or before ``g``: ``np.searchsorted(xs, g,
    side="right") - 1``."""
    lo, hi = 0, len(xs)
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] <= g:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@_helper
def _pose(lanes, rate, lane, s, d, v):
    """A vehicle's ``(x, y, heading)``: ``d`` left of the lane's centre line at ``s`` and,
    while it changes lane (at ``rate`` m/s across), turned towards the new lane's centre.
    The centre line's point is ``RoadNetwork.poses``' (``np.interp``'s arithmetic)."""
    length = lanes.length[lane]
    s = s % length if lanes.closed[lane] else min(max(s, 0.0), length - 1e-6)
    g = lanes.offset[lane] + s
    xs = lanes.cat_s
    j = _point_before(xs, g)
    x, y, h = lanes.cat_x[j], lanes.cat_y[j], lanes.cat_h[j]
    if j < len(xs) - 1 and xs[j] != g:
        run, w = xs[j + 1] - xs[j], g - xs[j]
        x = (lanes.cat_x[j + 1] - x) / run * w + x
        y = (lanes.cat_y[j + 1] - y) / run * w + y
    sign = 1.0 if d > 0.0 else (-1.0 if d < 0.0 else 0.0)
    turn = sign * math.atan2(rate, max(v, 1.0)) * (1.0 if abs(d) > 1e-6 else 0.0)
    return x - math.sin(h) * d, y + math.cos(h) * d, h - turn


@compiled
def poses(lanes, rate, lane, s, d, v):
    """``(x, y, heading)`` arrays of vehicles (:func:`_pose`)."""
    n = len(s)
    x, y, h = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        x[i], y[i], h[i] = _pose(lanes, rate, lane[i], s[i], d[i], v[i])
    return x, y, h


@compiled
def body_lanes(seg, x, y, yaw, v, r2, own_lane, length, closed, offset, cat_s, cat_h):
    """``(lanes, s, speed along each)`` of :meth:`.traffic.TrafficModel.ego_body`: the
    lanes of the packed segment rows ``seg`` (:meth:`.roads.RoadNetwork.lanes_near`) but
    ``own_lane`` within ``r2`` (squared) of three points along the ego's axis (at ``x, y``,
    heading ``yaw``: its middle and 1.5 m either way), and the ego's speed ``v`` along each
    lane's heading there (as ``RoadNetwork.poses`` gives it), or 0 against it."""
    c, s_ = math.cos(yaw), math.sin(yaw)
    axis = np.empty((3, 2))
    axis[0, 0], axis[0, 1] = x - 1.5 * c, y - 1.5 * s_
    axis[1, 0], axis[1, 1] = x, y
    axis[2, 0], axis[2, 1] = x + 1.5 * c, y + 1.5 * s_
    near, s_near = _lanes_near(seg, axis, r2)
    keep = near != own_lane
    lanes, s = near[keep], s_near[keep]
    speed = np.empty(len(lanes))
    for k in range(len(lanes)):
        lane, u = lanes[k], s[k]
        u = u % length[lane] if closed[lane] else min(max(u, 0.0), length[lane] - 1e-6)
        heading = cat_h[_point_before(cat_s, offset[lane] + u)]
        speed[k] = max(v * math.cos(yaw - heading), 0.0)
    return lanes, s, speed


@_helper
def _project(lanes, lane, x, y):
    """Arc length of the point's projection onto the lane's centre line (Lane.project)."""
    best, k, t_k = np.inf, 0, 0.0
    for j in range(lanes.seg_first[lane], lanes.seg_first[lane + 1]):
        ax, ay = lanes.seg_vec[j, 0], lanes.seg_vec[j, 1]
        px, py = x - lanes.seg_start[j, 0], y - lanes.seg_start[j, 1]
        t = min(max((px * ax + py * ay) / max(ax * ax + ay * ay, 1e-12), 0.0), 1.0)
        dx, dy = px - t * ax, py - t * ay
        if dx * dx + dy * dy < best:
            best, k, t_k = dx * dx + dy * dy, j, t
    ax, ay = lanes.seg_vec[k, 0], lanes.seg_vec[k, 1]
    return lanes.seg_s[k] + t_k * math.sqrt(max(ax * ax + ay * ay, 1e-12))


# ------------------------------------------------------------------------------ obstacles
@compiled
def obstacles(lanes, rate, tr, ego, static, crossings, peds, lights, body, length, width):
    """The obstacle table of what a vehicle may have to stop for, in this order: the
    vehicles (``tr``, active ones), the ego (``ego``: lane, s, speed; lane -1 when it is in
    none), the static obstacles (``static``: lanes, s), vehicles leaving a lane (below), a
    crosswalk's crossing of a lane with a pedestrian on it (``crossings``: crosswalk, u on
    it, half width, lane, s on it; ``peds``: active, crosswalk, u), the stop lines of
    lights that are not green (``lights``: lanes, their light, the lights' states) and the
    ego's body on the other lanes it reaches into (``body``: lanes, s, speed along them)."""
    cross_walk, cross_u, cross_half, cross_lane, cross_s = crossings
    n, half = len(tr.s), 0.5 * length
    rows = 2 * n + 1 + len(static[0]) + len(cross_lane) + len(lights[0]) + len(body[0])
    ob = np.empty((rows, 7))
    k = 0
    for i in range(n):
        if tr.active[i]:
            _row(ob[k], tr.lane[i], tr.s[i], tr.v[i], half, 0.0, 0.0, 0.0)
            k += 1
    if ego[0] >= 0:
        _row(ob[k], ego[0], ego[1], ego[2], half, 0.0, 0.0, 0.0)
        k += 1
    for j in range(len(static[0])):
        _row(ob[k], static[0][j], static[1][j], 0.0, 1.0, 0.0, 0.0, 0.0)
        k += 1
    # a vehicle changing lane whose footprint, turned towards the new lane, still reaches
    # into the lane it leaves, on that lane: without it a follower in the old lane drives
    # into a car that has only just begun to move over
    for i in range(n):
        d = tr.d[i]
        if not (tr.active[i] and abs(d) > 1e-6):
            continue
        tilt = math.atan2(rate, max(tr.v[i], 1.0))
        reach = abs(d) + 0.5 * (width * math.cos(tilt) + length * math.sin(tilt))
        old = lanes.left[tr.lane[i]] if d > 0.0 else lanes.right[tr.lane[i]]
        if old >= 0 and reach > lanes.width[old] - 0.5 * width:
            x, y, _ = _pose(lanes, rate, tr.lane[i], tr.s[i], d, tr.v[i])
            s_old = _project(lanes, old, x, y)
            _row(ob[k], old, s_old, tr.v[i], half, 0.0, 0.0, 0.0)
            k += 1
    for r in range(len(cross_lane)):
        for p in range(len(peds[0])):
            on = peds[0][p] and peds[1][p] == cross_walk[r]
            if on and abs(peds[2][p] - cross_u[r]) < cross_half[r]:
                _row(ob[k], cross_lane[r], cross_s[r] - 2.0, 0.0, 0.0, 0.0, 0.0, 0.0)
                k += 1
                break
    lit, light, states = lights
    for j in range(len(lit)):
        if states[light[j]] != GREEN:
            _row(ob[k], lit[j], lanes.length[lit[j]], -1.0, 0.0, 0.0, 0.0, 0.0)
            k += 1
    for j in range(len(body[0])):
        _row(ob[k], body[0][j], body[1][j], body[2][j], half, 0.0, 0.0, 0.0)
        k += 1
    return ob[:k]


# ------------------------------------------------------------------------------ junctions
@compiled
def junction_obstacles(tr, length, connector, sibs, cons, half, inside, ego, ego_rank):
    """The obstacle table of what vehicles in a junction (on a connector, or with the front
    over the line into the next one, at a negative ``s`` on it; and the ego, ranked
    ``ego_rank``: -inf, first, while it has the way, +inf, last, once it has lapsed)
    put on other connectors: a leader's copy on the connectors beside theirs (``sibs``:
    from, onto, length shared), and a standing obstacle at the start of every conflict area
    they have not left (``cons``: lane, other lane, in on the lane, in and out on the
    other), ranked by entry time, or first when they are inside the area."""
    n = len(tr.s)
    movers = np.empty((n + 1, 5))  # connector, s on it, speed, rank, owner
    here = np.zeros(len(connector), np.bool_)
    m = 0
    for i in range(n + 1):
        if i == n:  # the ego last
            if ego[0] < 0 or not connector[ego[0]]:
                break
            c, p, v, r, o = ego[0], ego[1], ego[2], ego_rank, -1
        else:
            if not tr.active[i]:
                continue
            lane, nxt = tr.lane[i], tr.next_lane[i]
            if connector[lane]:
                c, p = lane, tr.s[i]
            elif nxt >= 0 and connector[nxt] and tr.s[i] + half > length[lane]:
                c, p = nxt, tr.s[i] - length[lane]
            else:
                continue
            v, r, o = tr.v[i], tr.entered[i], i
        movers[m, 0], movers[m, 1], movers[m, 2], movers[m, 3], movers[m, 4] = c, p, v, r, o
        here[c] = True
        m += 1
    sib_from, sib_onto, sib_len = sibs
    con_lane, con_other, con_in, con_other_in, con_other_out = cons
    rows = 0
    for q in range(len(sib_from)):
        rows += here[sib_from[q]]
    for q in range(len(con_other)):
        rows += here[con_other[q]]
    ob, k = np.empty((rows * m, 7)), 0
    for q in range(len(sib_from)):  # row by row, and each row's movers in order
        for j in range(m if here[sib_from[q]] else 0):
            c, p, v, r, o = movers[j]
            if c == sib_from[q] and p - half < sib_len[q]:
                _row(ob[k], sib_onto[q], p, v, half, -np.inf, o, 0.0)
                k += 1
    for q in range(len(con_other)):
        for j in range(m if here[con_other[q]] else 0):
            c, p, v, r, o = movers[j]
            if c == con_other[q] and p - half < con_other_out[q]:
                r = -np.inf if p + half > con_other_in[q] + inside else r
                _row(ob[k], con_lane[q], con_in[q], 0.0, 0.0, r, o, 1.0)
                k += 1
    return ob[:k]


@_helper
def _busy(taken, conflict, want):
    """Whether a connector in use (``taken``) conflicts with the connector ``want``."""
    for c in range(len(taken)):  # noqa: SIM110 - a loop numba compiles (no generator)
        if taken[c] and conflict[want, c]:
            return True
    return False


@compiled
def stop_signs(idx, tr, length, zone, connector, conflict, claimed, ego_queue, dt, t,
               yielding, still, stop):  # fmt: skip
    """Stop-sign queues of the vehicles ``idx``: time stood (speed under ``stop``) in the
    lane's stop ``zone``, the ticket after ``still`` seconds, and "go" for ticket holders,
    first come first served, while no connector in use (occupied, let into, or
    ``claimed`` by the ego) or wanted by one earlier in the queue conflicts with theirs.

    ``ego_queue``: the ego's ticket (inf: none), the connector it wants (-1: none) and a
    one-element array set to whether its turn has come. The ego takes its place in the
    queue by its ticket, ahead of an equal one, and what it wants counts as in use for all
    after it."""
    queue, m = np.empty(len(idx), np.int64), 0  # by ticket, then index
    for i in idx:
        lane = tr.lane[i]
        if length[lane] - tr.s[i] <= zone[lane] and tr.v[i] < stop:  # never where zone is nan
            tr.stop_wait[i] += dt
        if tr.stop_wait[i] >= still - 1e-9 and not math.isfinite(tr.stop_ticket[i]):
            tr.stop_ticket[i] = t
        if math.isfinite(tr.stop_ticket[i]) and not tr.go[i]:
            j = m
            while j > 0 and tr.stop_ticket[queue[j - 1]] > tr.stop_ticket[i]:
                queue[j] = queue[j - 1]
                j -= 1
            queue[j], m = i, m + 1
    taken = np.zeros(len(connector), np.bool_)
    for i in idx:
        if connector[tr.lane[i]]:
            taken[tr.lane[i]] = True
        elif tr.go[i] and tr.next_lane[i] >= 0:
            taken[tr.next_lane[i]] = True
    for c in claimed:
        taken[c] = True
    ego_ticket, ego_want, ego_turn = ego_queue
    ego_turn[0] = False
    ego_waits = math.isfinite(ego_ticket) and ego_want >= 0
    for k in range(m + 1):
        if ego_waits and (k == m or tr.stop_ticket[queue[k]] >= ego_ticket):
            ego_waits = False
            ego_turn[0] = not (yielding and _busy(taken, conflict, ego_want))
            taken[ego_want] = True
        if k == m:
            break
        i = queue[k]
        want, busy = tr.next_lane[i], False
        if yielding and want >= 0:
            busy = _busy(taken, conflict, want)
            taken[want] = True  # let in, or wanted by one earlier: later ones yield to it
        tr.go[i] = not busy


# ------------------------------------------------------------------------------ following
@_helper
def _nearest(ob, i, rank, lane, nxt, s, length, closed, stop_dist, half, inside, g, vl):
    """The smallest gap (front to back) from vehicle ``i`` to an obstacle of the table
    ``ob`` ahead in its lane or on its next one, and that obstacle's speed, when under
    ``g`` (else ``g, vl``). A conflict point holds only a vehicle that owes its owner the
    way: one that entered the junction later (``rank``; ties: the higher index yields)
    and is not yet inside the area itself."""
    for j in range(len(ob)):
        ahead, dist = False, np.inf
        if ob[j, LANE] == lane:
            ds = ob[j, S] - s
            if closed:
                ds = ds % length
            ahead = ds > 1e-6
            if ahead:
                dist = ds
        if not ahead and ob[j, LANE] == nxt and not closed:
            dist = (length - s) + ob[j, S]
        if ob[j, V] < -0.5 and dist < stop_dist:  # a yellow light too close to stop for
            dist = np.inf
        gap = dist - half - ob[j, HALF]
        if ob[j, CONFLICT] == 1.0:
            owes = ob[j, RANK] < rank or (ob[j, RANK] == rank and ob[j, OWNER] < i)
            if not (owes and gap > -inside):
                gap = np.inf
        if gap < g:
            g, vl = gap, max(ob[j, V], 0.0)
    return g, vl


@compiled
def follow(idx, tr, per_lane, plain, junction, t, idm, dt, shift, change_rate, draws, sizes):
    """One IDM step of the vehicles ``idx`` towards the nearest obstacle of the tables
    ``plain`` and ``junction`` or, before a stop sign until "go", of a standing one a
    margin past its line; lane changes in progress move ``shift`` towards the centre line;
    one on a junction connector without an entry time entered it at ``t``. ``per_lane``:
    each lane's length, whether it is closed, its stop zone (nan: no stop sign), whether
    it is a junction connector; ``idm``: accel, decel, headway, min gap, delta, max brake;
    ``sizes``: vehicle length, how far into a conflict area is inside it, the line margin.

    Returns the vehicles the caller must still look at, in index order (those past their
    lane's end, or that try a lane change: ``draws[i, 0]`` under their rate, which is high
    for one held up by something much slower ahead), and which try a change."""
    lengths, closeds, zone, connector = per_lane
    accel, decel, headway, min_gap, delta, max_brake = idm
    half, inside, margin = 0.5 * sizes[0], sizes[1], sizes[2]
    root = 2 * math.sqrt(accel * decel)
    turn, m = np.empty(len(idx), np.int64), 0
    change = np.zeros(len(tr.s), np.bool_)
    for i in idx:
        lane, nxt, s, v, v0 = tr.lane[i], tr.next_lane[i], tr.s[i], tr.v[i], tr.v0[i]
        length, closed = lengths[lane], closeds[lane]
        stop_dist = v * v / (2.0 * decel)
        rank = tr.entered[i]
        g, vl = _nearest(
            plain, i, rank, lane, nxt, s, length, closed, stop_dist, half, inside, np.inf, 0.0
        )
        g, vl = _nearest(
            junction, i, rank, lane, nxt, s, length, closed, stop_dist, half, inside, g, vl
        )
        if math.isfinite(zone[lane]) and not tr.go[i] and length + margin - s - half < g:
            g, vl = length + margin - s - half, 0.0
        has = math.isfinite(g)
        g = max(g if has else 1e6, 0.1)
        dv = v - (vl if has else v)
        s_star = min_gap + max(v * headway + v * dv / root, 0.0)
        q = s_star / g
        acc = max(accel * (1 - (v / max(v0, 0.1)) ** delta - q * q), -max_brake)
        tr.v[i] = max(v + acc * dt, 0.0) if v0 > 0 else 0.0  # v0 0: parked
        tr.s[i] = s + tr.v[i] * dt
        d = tr.d[i]
        tr.d[i] = d - (1.0 if d > 0.0 else (-1.0 if d < 0.0 else 0.0)) * min(abs(d), shift)
        tr.cooldown[i] = max(tr.cooldown[i] - dt, 0.0)
        held_up = has and g < 30.0 and vl < 0.5 * v0
        rate = (1.0 if held_up else change_rate) * dt
        change[i] = tr.cooldown[i] <= 0.0 and draws[i, 0] < rate
        if not tr.s[i] < length or change[i]:
            turn[m], m = i, m + 1
        if connector[lane] and not math.isfinite(tr.entered[i]):
            tr.entered[i] = t
    return turn[:m], change


# ------------------------------------------------------------------------------ one step
@compiled
def advance(idx, tr, lanes, rate, stops, plain, junction, per_lane, t, idm, dt, change, sizes):
    """One step of the vehicles ``idx`` in a single call (each of its parts unpacks the
    tables once, not once per part): the stop-sign queues (``stops``: whether there are
    any, then :func:`stop_signs`' arguments after ``tr``), the obstacle table
    (``plain``: :func:`obstacles`' arguments after ``tr``), the junctions' one when they
    are on (``junction``: whether, then :func:`junction_obstacles`' arguments after
    ``tr``) and :func:`follow` (``change``: its ``shift``, ``change_rate``, ``draws``);
    returns what :func:`follow` returns."""
    has_stops, length, zone, connector, conflict, claimed, ego_queue, yielding, still, stop = stops
    if has_stops:
        queue = (length, zone, connector, conflict, claimed, ego_queue, dt, t, yielding, still,
                 stop)  # fmt: skip
        stop_signs(idx, tr, *queue)
    ego, static, crossings, peds, lights, body, size = plain
    table = obstacles(lanes, rate, tr, ego, static, crossings, peds, lights, body, *size)
    on, sibs, cons, half, inside, ego_rank = junction
    rows = np.zeros((0, 7))
    if on:
        rows = junction_obstacles(tr, length, connector, sibs, cons, half, inside, ego, ego_rank)
    shift, change_rate, draws = change
    return follow(idx, tr, per_lane, table, rows, t, idm, dt, shift, change_rate, draws, sizes)


# ------------------------------------------------------------------------------ contacts
@compiled
def box_contacts(x, y, h, length, width):
    """Index pairs ``(i, j)``, ``i < j``, of boxes (centres ``x, y``, headings ``h``,
    ``length × width``) that overlap: no separating axis among the four box edges."""
    n = len(x)
    first, second, k = np.empty(n * n, np.int64), np.empty(n * n, np.int64), 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[j] - x[i], y[j] - y[i]
            if not dx * dx + dy * dy < length * length + width * width:  # circles apart
                continue
            ci, si, cj, sj = math.cos(h[i]), math.sin(h[i]), math.cos(h[j]), math.sin(h[j])
            separated = False
            for a in range(4):  # the axes along and across each box
                ax = (ci, -si, cj, -sj)[a]
                ay = (si, ci, sj, cj)[a]
                reach = 0.5 * length * (abs(ci * ax + si * ay) + abs(cj * ax + sj * ay))
                reach += 0.5 * width * (abs(-si * ax + ci * ay) + abs(-sj * ax + cj * ay))
                separated = separated or abs(dx * ax + dy * ay) > reach
            if not separated:
                first[k], second[k], k = i, j, k + 1
    return first[:k], second[:k]


@compiled
def poses_contacts(lanes, rate, lane, s, d, v, active, length, width):
    """Every vehicle's ``(x, y, heading)`` (:func:`poses`) and the index pairs of active
    ones whose footprints overlap (:func:`box_contacts`), in one call."""
    x, y, h = poses(lanes, rate, lane, s, d, v)
    idx = np.flatnonzero(active)
    first, second = box_contacts(x[idx], y[idx], h[idx], length, width)
    return x, y, h, idx[first], idx[second]
