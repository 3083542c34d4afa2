"""Motion of everything that moves: the ego's kinematic bicycle, IDM traffic and pedestrians.

All of it is numpy on plain arrays, with every random draw taken from the generator the
env passes in, so a state is a few arrays that copy exactly (see ``DrivingEnv.get_state``).

* The ego's state (:class:`EgoCar`); its motion is :mod:`.dynamics`.
* Other vehicles follow lane centre lines with the Intelligent Driver Model (Treiber,
  Hennecke & Helbing 2000) towards the nearest thing ahead on their path: another vehicle,
  the ego, a pedestrian on a crosswalk, a static obstacle, or the stop line of a light that
  is not green. At junctions they stop at stop signs and yield by the rules of
  :mod:`.junctions`. Now and then one changes lane when the target lane has a gap; until
  it has moved over, the lane it leaves still holds it.
* Pedestrians (:mod:`.pedestrians`) walk to and fro across crosswalks; vehicles stop for
  one on a crosswalk that cuts their lane.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .junctions import JunctionRules, box_contacts
from .pedestrians import Crossings, PedestrianState
from .roads import GREEN, RoadNetwork

VEHICLE_LENGTH, VEHICLE_WIDTH = 4.5, 1.9


@dataclasses.dataclass(frozen=True)
class IDMParams:
    """Intelligent Driver Model constants (typical urban values from Treiber's book)."""

    accel: float = 1.5  # maximum acceleration (m/s²)
    decel: float = 2.0  # comfortable deceleration (m/s²)
    headway: float = 1.5  # desired time gap (s)
    min_gap: float = 2.0  # jam distance (m)
    delta: float = 4.0  # acceleration exponent
    max_brake: float = 9.0  # hardest braking (m/s²)


# ------------------------------------------------------------------------------ ego
@dataclasses.dataclass
class EgoCar:
    """The ego car: pose, speed, steering angle and the last applied acceleration."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    v: float = 0.0
    steer: float = 0.0
    accel: float = 0.0


# ------------------------------------------------------------------------------ traffic
@dataclasses.dataclass
class TrafficState:
    """Other vehicles, one entry per pooled body; inactive ones are parked out of sight."""

    lane: np.ndarray  # int, current lane
    s: np.ndarray  # arc length on the lane
    v: np.ndarray  # speed
    v0: np.ndarray  # desired speed
    d: np.ndarray  # lateral offset left of the centre line (non-zero while changing lane)
    next_lane: np.ndarray  # int, the lane taken at the end of this one (-1: none)
    active: np.ndarray  # bool
    cooldown: np.ndarray  # seconds until the next lane change may start
    stop_wait: np.ndarray  # seconds stood still in the zone of this lane's stop sign
    stop_ticket: np.ndarray  # when that stop was complete (inf: not yet): first come first
    go: np.ndarray  # bool, let into the junction past this lane's stop sign
    entered: np.ndarray  # when it entered the junction connector it is on (inf: not on one)

    @classmethod
    def empty(cls, n: int) -> TrafficState:
        z = np.zeros(n)
        return cls(
            lane=np.zeros(n, dtype=np.int64),
            s=z.copy(),
            v=z.copy(),
            v0=z.copy(),
            d=z.copy(),
            next_lane=np.full(n, -1, dtype=np.int64),
            active=np.zeros(n, dtype=bool),
            cooldown=z.copy(),
            stop_wait=z.copy(),
            stop_ticket=np.full(n, np.inf),
            go=np.zeros(n, dtype=bool),
            entered=np.full(n, np.inf),
        )


class TrafficModel:
    """IDM car following, lights, stop signs, right of way at junctions (:mod:`.junctions`;
    ``yielding = False`` switches the right of way off, to show what it prevents), lane
    changes and respawning for one road network."""

    def __init__(
        self,
        net: RoadNetwork,
        idm: IDMParams = IDMParams(),
        lane_change_rate: float = 0.05,
        lane_change_time: float = 3.0,
    ) -> None:
        self.net = net
        self.idm = idm
        self.lane_change_rate = lane_change_rate
        self.lane_change_time = lane_change_time
        self.crossings = Crossings(net)
        light_of_lane = np.array(
            [-1 if ln.light is None else ln.light for ln in net.lanes], dtype=np.int64
        )
        #: lanes that end at a light (ids ascending) and that light
        self.lit_lanes = np.flatnonzero(light_of_lane >= 0)
        self.lane_light = light_of_lane[self.lit_lanes]
        #: static obstacles as (lane, s) pairs; set by the env after placing them
        self.static_lane = np.zeros(0, dtype=np.int64)
        self.static_s = np.zeros(0)
        self.rules = JunctionRules(net, VEHICLE_LENGTH)
        self._poses_memo: tuple | None = None  # (state copied, poses): see poses()
        self.yielding = True

    # --- spawning ---------------------------------------------------------------------------
    def pick_next(self, lane: int, rng: np.random.Generator) -> int:
        ln = self.net.lanes[lane]
        if ln.closed:
            return lane
        if not ln.successors:
            return -1
        return ln.successors[int(rng.integers(len(ln.successors)))]

    def spawn(
        self,
        n: int,
        rng: np.random.Generator,
        keep_clear: list[tuple[int, float]],
        speed_range: tuple[float, float] = (0.6, 1.0),
        window: tuple[float, float] | None = None,
    ) -> TrafficState:
        """Up to ``n`` vehicles at random free places on non-junction lanes, at least 12 m
        from each other and from the ``(lane, s)`` places in ``keep_clear``; on open lanes
        only between arc lengths ``window`` when given (traffic around the ego on a long
        highway rather than spread thinly over all of it)."""
        tr = TrafficState.empty(n)
        taken = list(keep_clear)
        lanes = [ln for ln in self.net.lanes if ln.kind == "road"]
        for i in range(n):
            for _ in range(20):
                ln = lanes[int(rng.integers(len(lanes)))]
                lo, hi = 0.0, ln.length * (1.0 if ln.closed else 0.85)
                if window is not None and not ln.closed:
                    lo, hi = max(lo, window[0]), max(min(hi, window[1]), max(lo, window[0]))
                s = float(rng.uniform(lo, hi))
                if all(lane != ln.id or abs(s - s2) > 12.0 for lane, s2 in taken):
                    break
            else:
                continue
            taken.append((ln.id, s))
            tr.lane[i], tr.s[i] = ln.id, s
            tr.v0[i] = ln.speed_limit * rng.uniform(*speed_range)
            tr.v[i] = tr.v0[i] * rng.uniform(0.5, 1.0)
            tr.next_lane[i] = self.pick_next(ln.id, rng)
            tr.active[i] = True
            tr.cooldown[i] = rng.uniform(0.0, 10.0)
        return tr

    # --- one control step --------------------------------------------------------------------
    def step(
        self,
        tr: TrafficState,
        dt: float,
        t: float,
        rng: np.random.Generator,
        ego: tuple[int, float, float] | None,
        peds: PedestrianState,
    ) -> None:
        """Advance all active vehicles by ``dt``. ``ego`` is ``(lane, s, speed)`` when the
        ego is in a lane (it is then a leader like any other vehicle), else None."""
        if not len(tr.s):  # no pool: nothing to draw (an empty draw leaves the stream as is)
            return
        net, p = self.net, self.idm
        draws = rng.random((len(tr.s), 3))  # fixed count per step keeps streams aligned
        idx = np.flatnonzero(tr.active)
        if len(idx) == 0:
            return
        if self.rules.has_stops:
            self.rules.stop_signs(tr, idx, dt, t, ego, self.yielding)
        ob_lane, ob_s, ob_v, ob_half = self._obstacles(tr, t, ego, peds)
        base = len(ob_s)  # then the junctions' obstacles, when there are any
        junction = self._junction_obstacles(tr, ego)
        if junction is not None:
            ob_lane, ob_s, ob_v, ob_half = (
                np.concatenate([a, b])
                for a, b in zip((ob_lane, ob_s, ob_v, ob_half), junction[:4], strict=True)
            )
        lane, s, v = tr.lane[idx], tr.s[idx], tr.v[idx]
        length = net.lane_lengths[lane]
        closed = net.lane_closed[lane]
        nxt = tr.next_lane[idx]
        same = ob_lane[None, :] == lane[:, None]
        ds = ob_s[None, :] - s[:, None]
        ds = np.where(closed[:, None], np.mod(ds, length[:, None]), ds)
        ahead_same = same & (ds > 1e-6)
        on_next = (ob_lane[None, :] == nxt[:, None]) & ~closed[:, None]
        ds_next = (length - s)[:, None] + ob_s[None, :]
        dist = np.where(ahead_same, ds, np.where(on_next, ds_next, np.inf))
        # a yellow light is ignored by vehicles too close to stop comfortably
        is_light = ob_v < -0.5
        stop_dist = v**2 / (2.0 * p.decel)
        dist = np.where(is_light[None, :] & (dist < stop_dist[:, None]), np.inf, dist)
        gap = dist - 0.5 * VEHICLE_LENGTH - ob_half[None, :]
        if junction is not None:  # conflict points hold only who owes their owners the way
            gap[:, base:] = self.rules.hold(gap[:, base:], tr.entered[idx], idx, *junction[4:])
        if self.rules.has_stops:  # a standing obstacle past a stop sign's line until "go"
            gap = np.concatenate([gap, self.rules.held_gap(tr, idx)[:, None]], axis=1)
            ob_v = np.append(ob_v, 0.0)
        j = np.argmin(gap, axis=1)
        g = gap[np.arange(len(idx)), j]
        vl = np.maximum(ob_v[j], 0.0)
        has = np.isfinite(g)
        g = np.maximum(np.where(has, g, 1e6), 0.1)
        dv = v - np.where(has, vl, v)
        s_star = p.min_gap + np.maximum(
            v * p.headway + v * dv / (2 * math.sqrt(p.accel * p.decel)), 0
        )
        acc = p.accel * (1 - (v / np.maximum(tr.v0[idx], 0.1)) ** p.delta - (s_star / g) ** 2)
        acc = np.maximum(acc, -p.max_brake)
        v_new = np.where(tr.v0[idx] > 0, np.maximum(v + acc * dt, 0.0), 0.0)  # v0 0: parked
        s_new = s + v_new * dt
        tr.v[idx], tr.s[idx] = v_new, s_new
        # lateral: lane changes in progress converge to the centre line
        shift = net.lanes[0].width / self.lane_change_time * dt
        tr.d[idx] -= np.sign(tr.d[idx]) * np.minimum(np.abs(tr.d[idx]), shift)
        tr.cooldown[idx] = np.maximum(tr.cooldown[idx] - dt, 0.0)
        # a vehicle held up by something much slower ahead looks for a way round far more
        # often than one that changes lane on a whim
        held_up = has & (g < 30.0) & (vl < 0.5 * tr.v0[idx])
        rate = np.where(held_up, 1.0, self.lane_change_rate) * dt
        for k, i in enumerate(idx.tolist()):
            self._advance_lane(tr, i, rng, ego)
            if tr.active[i] and tr.cooldown[i] <= 0.0 and draws[i, 0] < rate[k]:
                self._try_lane_change(tr, i, draws[i, 1] < 0.5, ego, draws[i, 2])
        if self.rules.active:  # a new lane: a new stop sign, a new entry time
            moved = idx[tr.lane[idx] != lane]
            tr.stop_wait[moved], tr.stop_ticket[moved], tr.go[moved] = 0.0, np.inf, False
            tr.entered[moved] = np.inf
            fresh = idx[self.rules.connector[tr.lane[idx]] & ~np.isfinite(tr.entered[idx])]
            tr.entered[fresh] = t

    def _obstacles(self, tr, t, ego, peds):
        """Everything a vehicle may have to stop for, as (lane, s, speed, half length); a
        light's stop line has speed -1 so that yellow lights can be told apart."""
        net = self.net
        act = np.flatnonzero(tr.active)
        lanes = [tr.lane[act]]
        ss = [tr.s[act]]
        vs = [tr.v[act]]
        halves = [np.full(len(act), 0.5 * VEHICLE_LENGTH)]
        if ego is not None:
            lanes.append(np.array([ego[0]]))
            ss.append(np.array([ego[1]]))
            vs.append(np.array([ego[2]]))
            halves.append(np.array([0.5 * VEHICLE_LENGTH]))
        if len(self.static_lane):
            lanes.append(self.static_lane)
            ss.append(self.static_s)
            vs.append(np.zeros(len(self.static_s)))
            halves.append(np.full(len(self.static_s), 1.0))
        ghosts = self._leaving(tr, act)
        if ghosts is not None:
            for out, value in zip((lanes, ss, vs, halves), ghosts, strict=True):
                out.append(value)
        cr = self.crossings
        if len(cr.lane) and peds.active.any():
            on = peds.active[None, :] & (peds.crosswalk[None, :] == cr.crosswalk[:, None])
            near = np.abs(peds.u[None, :] - cr.u[:, None]) < cr.half[:, None]
            rows = np.flatnonzero((on & near).any(axis=1))
            if len(rows):
                lanes.append(cr.lane[rows])
                ss.append(cr.s[rows] - 2.0)
                vs.append(np.zeros(len(rows)))
                halves.append(np.zeros(len(rows)))
        if net.lights:
            states = np.asarray(net.light_states(t))
            stop = self.lit_lanes[states[self.lane_light] != GREEN]
            if len(stop):
                lanes.append(stop)
                ss.append(net.lane_lengths[stop])
                vs.append(np.full(len(stop), -1.0))
                halves.append(np.zeros(len(stop)))
        return (
            np.concatenate(lanes).astype(np.int64),
            np.concatenate(ss),
            np.concatenate(vs),
            np.concatenate(halves),
        )

    def _leaving(self, tr: TrafficState, act: np.ndarray):
        """Vehicles changing lane (of ``act``) whose footprint, turned towards the new
        lane, still reaches into the lane they leave, as obstacles on that lane (lane, s,
        speed, half length); None when there are none. Without them a follower in the old
        lane drives into a car that has only just begun to move over."""
        chg = act[np.abs(tr.d[act]) > 1e-6]
        if not len(chg):
            return None
        net = self.net
        rate = net.lanes[0].width / self.lane_change_time
        tilt = np.arctan2(rate, np.maximum(tr.v[chg], 1.0))
        reach = np.abs(tr.d[chg]) + 0.5 * (
            VEHICLE_WIDTH * np.cos(tilt) + VEHICLE_LENGTH * np.sin(tilt)
        )
        x, y, _ = self.poses(tr)
        rows = []
        for k, i in enumerate(chg.tolist()):
            lane = net.lanes[tr.lane[i]]
            old = lane.left if tr.d[i] > 0 else lane.right
            if old is not None and reach[k] > net.lanes[old].width - 0.5 * VEHICLE_WIDTH:
                rows.append((old, net.lanes[old].project(x[i], y[i])[0], tr.v[i]))
        if not rows:
            return None
        arr = np.array(rows, dtype=np.float64)
        half = np.full(len(arr), 0.5 * VEHICLE_LENGTH)
        return arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], half

    def _junction_obstacles(self, tr, ego):
        """What vehicles in a junction (the ego among them, with the way always) put on
        the connectors beside and across theirs: ``(lane, s, speed, half length, rank,
        owner, conflict point)`` arrays (:meth:`.junctions.JunctionRules.obstacles`), or
        None where the network has no junction or yielding is off."""
        rules = self.rules
        if not (self.yielding and rules.active):
            return None
        act = np.flatnonzero(tr.active)
        which, conn, pos, rank = rules.movers(
            tr.lane[act], tr.s[act], tr.next_lane[act], tr.entered[act]
        )
        speed, owner = tr.v[act][which], act[which]
        if ego is not None and rules.connector[ego[0]]:
            conn, pos = np.append(conn, ego[0]), np.append(pos, ego[1])
            speed, rank = np.append(speed, ego[2]), np.append(rank, -np.inf)
            owner = np.append(owner, -1)
        return rules.obstacles(conn, pos, speed, rank, owner)

    def _advance_lane(self, tr: TrafficState, i: int, rng: np.random.Generator, ego) -> None:
        net = self.net
        lane = net.lanes[tr.lane[i]]
        if tr.s[i] < lane.length:
            return
        if lane.closed:
            tr.s[i] -= lane.length
            return
        if tr.next_lane[i] >= 0:
            tr.s[i] -= lane.length
            tr.lane[i] = tr.next_lane[i]
            tr.next_lane[i] = self.pick_next(int(tr.lane[i]), rng)
            return
        # the end of the network: come back in at a free source lane (free for as far as it
        # takes to stop from the speed it comes in at), or wait parked
        clear = 15.0 + tr.v[i] ** 2 / (2.0 * self.idm.decel)
        for src in net.sources:
            busy = tr.active & (tr.lane == src) & (tr.s < clear)
            if not busy.any() and not (ego is not None and ego[0] == src and ego[1] < clear):
                tr.lane[i], tr.s[i] = src, 0.0
                tr.next_lane[i] = self.pick_next(src, rng)
                tr.d[i] = 0.0
                return
        tr.active[i] = False

    def _try_lane_change(self, tr: TrafficState, i: int, left: bool, ego, u: float = 0.0) -> None:
        """Move vehicle ``i`` to a neighbouring lane when it has a gap there; its next lane
        becomes one of the new lane's successors (picked by ``u`` in [0, 1))."""
        net = self.net
        lane = net.lanes[tr.lane[i]]
        target = lane.left if left else lane.right
        if target is None:
            target = lane.right if left else lane.left
        if target is None or abs(tr.d[i]) > 0.1:
            return
        x, y, _ = lane.pose_at(float(tr.s[i]))
        s_t, lat = net.lanes[target].project(x, y)
        others = tr.active & (tr.lane == target)
        ds = tr.s[others] - s_t
        if net.lanes[target].closed:
            length = net.lanes[target].length
            ds = (ds + 0.5 * length) % length - 0.5 * length
        if np.any((ds > -12.0) & (ds < 15.0)):
            return
        if ego is not None and ego[0] == target and -12.0 < ego[1] - s_t < 15.0:
            return
        blocked = (self.static_lane == target) & (np.abs(self.static_s - s_t - 10.0) < 15.0)
        if blocked.any():
            return
        tr.lane[i], tr.s[i], tr.d[i] = target, s_t, lat
        successors = net.lanes[target].successors
        if net.lanes[target].closed:
            tr.next_lane[i] = target
        else:  # a town's lanes go on; without a successor the car would leave at the end
            tr.next_lane[i] = successors[int(u * len(successors))] if successors else -1
        tr.cooldown[i] = 10.0

    def contacts(self, tr: TrafficState) -> tuple[tuple[int, int], ...]:
        """Pairs of active vehicles whose footprints overlap now (none, when the model
        keeps them apart)."""
        act = np.flatnonzero(tr.active)
        if len(act) < 2:
            return ()
        x, y, h = self.poses(tr)
        i, j = box_contacts(x[act], y[act], h[act], VEHICLE_LENGTH, VEHICLE_WIDTH)
        return tuple(zip(act[i].tolist(), act[j].tolist(), strict=True))

    def poses(self, tr: TrafficState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, y, heading)`` of every vehicle, lane-change offsets included (read-only
        arrays: the last answer is kept and given again while the state is the same, as it
        is for the several asks of one step)."""
        state = (tr.lane, tr.s, tr.d, tr.v)
        memo = self._poses_memo
        if memo is not None and all(map(np.array_equal, memo[0], state)):
            return memo[1]
        x, y, h = self.net.poses(tr.lane, tr.s)
        x = x - np.sin(h) * tr.d
        y = y + np.cos(h) * tr.d
        rate = self.net.lanes[0].width / self.lane_change_time
        h = h - np.sign(tr.d) * np.arctan2(rate, np.maximum(tr.v, 1.0)) * (np.abs(tr.d) > 1e-6)
        for a in (x, y, h):
            a.flags.writeable = False
        self._poses_memo = (tuple(a.copy() for a in state), (x, y, h))
        return x, y, h
