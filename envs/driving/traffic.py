"""Motion of everything that moves: the ego's kinematic bicycle, IDM traffic and pedestrians.

A state is a few plain arrays that copy exactly (see ``DrivingEnv.get_state``), and every
random draw comes from the generator the env passes in. The per-step arithmetic over all
vehicles is compiled (:mod:`.traffic_kernels`); the rare per-vehicle events (the end of a
lane, a lane change) stay here.

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

from . import traffic_kernels as kernels
from .junctions import INSIDE, LINE_MARGIN, JunctionRules
from .pedestrians import Crossings, PedestrianState
from .roads import RoadNetwork

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
        self.yielding = True
        self.lanes = kernels.lane_tables(net)

    @property
    def _rate(self) -> float:
        """Sideways speed (m/s) of a lane change."""
        return self.net.lanes[0].width / self.lane_change_time

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
        body: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        ego_queue: tuple[float, int] = (math.inf, -1),
        ego_way: bool = True,
    ) -> bool:
        """Advance all active vehicles by ``dt``. ``ego`` is ``(lane, s, speed)`` when the
        ego is in a lane (it is then a leader like any other vehicle), else None; ``body``
        the other lanes its body is in the way on (:meth:`ego_body`); ``ego_queue`` its
        place at a stop sign (:meth:`.junctions.JunctionRules.queue_ego`), ``ego_way``
        whether it has the right of way in junctions (:meth:`~.junctions.JunctionRules.
        ego_way`). Returns whether
        the ego's turn at its stop sign has come."""
        if not len(tr.s):  # no pool: nothing to draw (an empty draw leaves the stream as is)
            return False
        draws = rng.random((len(tr.s), 3))  # fixed count per step keeps streams aligned
        idx = np.flatnonzero(tr.active)
        if len(idx) == 0:
            return False
        vehicles, rules, p, cr = kernels.Vehicles(**vars(tr)), self.rules, self.idm, self.crossings
        slot = kernels.ego_slot(ego)
        ego_turn = np.zeros(1, np.bool_)
        if body is None:
            body = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        # stop signs, then what each vehicle may stop for (other vehicles, the ego and its
        # body, static obstacles, lane changers still in the lane they leave, pedestrians on
        # crosswalks, lights that are not green), the junctions' right of way, and IDM
        # towards the nearest, with lateral moves and cooldowns; a vehicle held up by
        # something much slower ahead looks for a way round far more often than one that
        # changes lane on a whim
        turn, change = kernels.advance(
            idx,
            vehicles,
            self.lanes,
            self._rate,
            rules.stop_args(ego, self.yielding, (*ego_queue, ego_turn)),
            (
                slot,
                (self.static_lane, self.static_s),
                (cr.crosswalk, cr.u, cr.half, cr.lane, cr.s),
                (peds.active, peds.crosswalk, peds.u),
                (self.lit_lanes, self.lane_light, self.net.light_states(t)),
                body,
                (VEHICLE_LENGTH, VEHICLE_WIDTH),
            ),
            rules.yielding_args(self.yielding and rules.active, ego_way),
            (self.lanes.length, self.lanes.closed, rules.stop_zone, rules.connector),
            t,
            (p.accel, p.decel, p.headway, p.min_gap, p.delta, p.max_brake),
            dt,
            (self._rate * dt, self.lane_change_rate, draws),
            (VEHICLE_LENGTH, INSIDE, LINE_MARGIN),
        )
        for i in turn.tolist():  # past the lane's end, or trying a lane change
            lane = tr.lane[i]
            self._advance_lane(tr, i, rng, ego, body)
            if tr.active[i] and change[i]:
                self._try_lane_change(tr, i, draws[i, 1] < 0.5, ego, body, draws[i, 2])
            if tr.lane[i] != lane and rules.active:  # a new stop sign, a new entry time
                tr.stop_wait[i], tr.stop_ticket[i], tr.go[i] = 0.0, np.inf, False
                tr.entered[i] = t if rules.connector[tr.lane[i]] else np.inf
        return bool(ego_turn[0])

    def _advance_lane(self, tr: TrafficState, i: int, rng: np.random.Generator, ego, body) -> None:
        """Move vehicle ``i`` past its lane's end onto its next lane; at the end of the
        network, back in at a source lane whose start is free of vehicles and of the ego's
        centre and body (:func:`ego_on`), or parked until one is."""
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
            if not busy.any() and not (ego_on(src, ego, body) < clear).any():
                tr.lane[i], tr.s[i] = src, 0.0
                tr.next_lane[i] = self.pick_next(src, rng)
                tr.d[i] = 0.0
                return
        tr.active[i] = False

    def _try_lane_change(self, tr: TrafficState, i: int, left: bool, ego, body, u: float) -> None:
        """Move vehicle ``i`` to a neighbouring lane when it has a gap there; its next lane
        becomes one of the new lane's successors (picked by ``u`` in [0, 1)). The ego takes
        room in the lane its centre is in and in each lane its body is in the way on
        (``body``, :meth:`ego_body`): a car whose rear is still over the line is not a gap."""
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
        ego_s = ego_on(target, ego, body)
        if np.any((ego_s - s_t > -12.0) & (ego_s - s_t < 15.0)):
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
        return self.poses_and_contacts(tr)[1]

    def poses_and_contacts(self, tr: TrafficState) -> tuple[tuple, tuple[tuple[int, int], ...]]:
        """:meth:`poses` and :meth:`contacts` in one compiled call."""
        x, y, h, i, j = kernels.poses_contacts(
            self.lanes, self._rate, tr.lane, tr.s, tr.d, tr.v, tr.active,
            VEHICLE_LENGTH, VEHICLE_WIDTH,
        )  # fmt: skip
        return (x, y, h), tuple(zip(i.tolist(), j.tolist(), strict=True))

    def poses(self, tr: TrafficState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, y, heading)`` of every vehicle, lane-change offsets included."""
        return kernels.poses(self.lanes, self._rate, tr.lane, tr.s, tr.d, tr.v)

    def ego_body(self, ego, own_lane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lanes, s, speed along each)``: the lanes other than ``own_lane`` (-1: none)
        that the ego's body is in the way on (:data:`EGO_BODY_REACH`), each where the body
        comes closest to its centre line. A car across a junction path, or half over the
        line into the next lane, is then an obstacle to the vehicles on those lanes too, as
        it is to those behind it in its own (traffic that sees only the ego's lane drives
        into it)."""
        t = self.lanes
        back = (ego.x - 1.5 * math.cos(ego.yaw), ego.y - 1.5 * math.sin(ego.yaw))
        return kernels.body_lanes(
            self.net.segments_near(*back),
            ego.x, ego.y, ego.yaw, ego.v,
            EGO_BODY_REACH * EGO_BODY_REACH,
            own_lane,
            t.length, t.closed, t.offset, t.cat_s, t.cat_h,
        )  # fmt: skip


def ego_on(lane: int, ego, body) -> np.ndarray:
    """Where on ``lane`` the ego takes room: its centre's ``s`` when that is the lane it is
    in (``ego``: ``(lane, s, speed)`` or None), and each ``s`` at which its body is in the
    way on it (``body``: :meth:`TrafficModel.ego_body`)."""
    at = body[1][body[0] == lane]
    if ego is not None and ego[0] == lane:
        at = np.append(at, ego[1])
    return at


#: A lane whose centre line passes this close (m) to one of three points along the ego's
#: axis (its middle and 1.5 m either way) has the ego's body in the way of a vehicle on
#: it: the discs about those points (radius 1.21 m) and a vehicle's half width (0.95 m)
#: come within a quarter metre.
EGO_BODY_REACH = 2.2
