"""Right of way for traffic at junctions: stop signs, yielding where junction paths cross
or merge, and the check that no two vehicles ever touch.

The traffic model (:class:`.traffic.TrafficModel`) asks :class:`JunctionRules` two things
each step, both as IDM obstacles:

* **Stop signs.** A vehicle on a lane whose end a stop sign guards drives (IDM) towards a
  virtual standing obstacle just past the line until it has stood still in the sign's
  zone for :data:`STAND_STILL` seconds; then it waits there until no vehicle occupies or
  has been let into a junction connector that conflicts with its own, and those that
  finished their stop earlier go first (first come, first served). The ego counts as a
  vehicle: on a connector it occupies it, while it drives up to a stop line it claims
  every connector its lane leads to, and once it has stood :data:`STAND_STILL` seconds
  in a sign's zone it holds its place in the queue (:class:`EgoQueue`) for the connector
  its route takes. A place is not held forever: when the ego's turn has come and it has
  stood through :data:`EGO_TURN` seconds of it, it goes to the back of the queue, so an
  agent that never moves holds up the others a few seconds at a time, not for good.
* **Yielding.** Junction connectors whose centre lines come closer than
  :data:`CLEARANCE` (crossing, or merging into one lane) have a conflict area on each. A
  vehicle stops (IDM towards a standing obstacle at the start of its conflict area) for
  any vehicle on the other connector that has not yet left its own conflict area and has
  the right of way: one already inside the area always has it; otherwise the one that
  entered the junction first. Entry times order every vehicle, so no two wait for each
  other; the ego has the right of way, until it has stood :data:`EGO_TURN` seconds on a
  connector: then, like a stop sign's turn, its way lapses, and only areas it is inside
  hold others (a car that had stopped for it, its body already beside the ego's path at
  a merge, would otherwise wait for an ego that waits for it). Connectors that leave one lane side by side
  (turning and going straight from one approach) are not conflicts: a vehicle on one sees
  a vehicle near the start of the other as a leader, as if they shared the lane.

:func:`box_contacts` finds overlapping vehicle footprints (oriented boxes, separating axis
test); the env counts them, and with these rules the count stays zero. The per-step loops
are compiled (:mod:`.traffic_kernels`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

from .roads import STOP_SPEED
from .traffic_kernels import box_contacts  # noqa: F401 - the contact check, compiled there

if TYPE_CHECKING:
    from .roads import RoadNetwork

#: Centre lines closer than this (m) carry vehicles (1.9 m wide) that could touch.
CLEARANCE = 2.5
#: Seconds a vehicle stands still at a stop sign before it may enter the junction.
STAND_STILL = 1.0
#: The stop sign's virtual obstacle lies this far (m) past the line, so that with the IDM's
#: jam distance of 2 m a vehicle's front stops about a metre before the line.
LINE_MARGIN = 1.0
#: A vehicle whose front is this far (m) into a conflict area is inside it.
INSIDE = 0.5
#: The ego, driving faster than ``EGO_CLAIM_SPEED`` m/s within ``EGO_CLAIM`` m of a stop
#: line, claims the connectors ahead (it may be about to enter).
EGO_CLAIM, EGO_CLAIM_SPEED = 10.0, 0.5
#: Seconds the ego may stand (under ``EGO_CLAIM_SPEED``) once its turn at a stop sign has
#: come before it loses its place and queues again behind those waiting then.
EGO_TURN = 3.0
#: Spacing (m) of the samples along junction connectors that find their conflict areas.
SAMPLE_STEP = 0.5


def _near_pairs(net: RoadNetwork, ids: np.ndarray) -> dict[tuple[int, int], tuple[float, float]]:
    """For every ordered pair ``(a, b)`` of the lanes ``ids`` whose centre lines come
    within :data:`CLEARANCE` of each other: an arc-length interval ``(first, last)`` on
    ``a`` that holds every point of ``a`` that close to ``b``'s centre line.

    The lanes are sampled every :data:`SAMPLE_STEP` metres (and at their ends), and one
    KD-tree over all the samples finds the close pairs. A point's distance to ``b``'s
    nearest sample exceeds its distance to ``b``'s centre line by at most half a step
    across it, so the search radius is widened by that much, and the interval by a step
    at either end (the true first and last close points lie between samples): the areas
    come out up to a step longer, never short."""
    lengths = net.lane_lengths[ids]
    count = np.ceil(lengths / SAMPLE_STEP).astype(np.int64) + 1  # ... and the lane's end
    owner = np.repeat(ids, count)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    arc = np.minimum(k * SAMPLE_STEP, np.repeat(lengths, count))
    x, y, _ = net.poses(owner, arc)
    radius = float(np.hypot(CLEARANCE, 0.5 * SAMPLE_STEP))
    tree = cKDTree(np.stack([x, y], axis=1), balanced_tree=False, compact_nodes=False)
    pairs = tree.query_pairs(radius, output_type="ndarray")  # the same pairs, built faster
    pairs = pairs[owner[pairs[:, 0]] != owner[pairs[:, 1]]]
    a = np.concatenate([pairs[:, 0], pairs[:, 1]])  # both directions
    b = np.concatenate([pairs[:, 1], pairs[:, 0]])
    base = int(owner.max()) + 1
    key = owner[a] * base + owner[b]
    first = np.full(base * base, np.inf)
    last = np.full(base * base, -np.inf)
    np.minimum.at(first, key, arc[a])
    np.maximum.at(last, key, arc[a])
    out = {}
    for k in np.flatnonzero(np.isfinite(first)).tolist():
        la, lb = divmod(k, base)
        lo = max(float(first[k]) - SAMPLE_STEP, 0.0)
        out[la, lb] = (lo, min(float(last[k]) + SAMPLE_STEP, float(net.lane_lengths[la])))
    return out


@dataclasses.dataclass
class EgoQueue:
    """The ego's stop at a sign, as the traffic's per-vehicle arrays keep theirs, and its
    stand on a junction connector, which ends its right of way there (part of the episode
    state, copied with it)."""

    lane: int = -1  # the lane it was counted in (a new lane starts afresh)
    wait: float = 0.0  # seconds stood in that lane's stop zone
    ticket: float = math.inf  # when its stop was complete, or its place renewed (inf: not)
    idle: float = 0.0  # seconds its turn has come while it stood
    stood: float = 0.0  # seconds it has stood on a junction connector


class JunctionRules:
    """The junction geometry of one network, precomputed, and the per-step right of way."""

    def __init__(self, net: RoadNetwork, length: float) -> None:
        self.net = net
        self.half = 0.5 * length
        lanes = net.lanes
        self.connector = np.array([ln.kind == "junction" for ln in lanes])
        self.active = bool(self.connector.any())
        zones = {sign.id: sign.zone for sign in net.stop_signs}
        self.stop_zone = np.array(
            [np.nan if ln.stop is None else zones[ln.stop] for ln in lanes], dtype=np.float64
        )
        self.has_stops = bool(np.isfinite(self.stop_zone).any())
        preds: dict[int, set[int]] = {ln.id: set() for ln in lanes}
        for ln in lanes:
            for nxt in ln.successors:
                preds[nxt].add(ln.id)
        ids = [int(i) for i in np.flatnonzero(self.connector)]
        sib, con = [], []  # (from, onto, length) and (yielding, other, in, other in, other out)
        self.conflict = np.zeros((len(lanes), len(lanes)), dtype=bool)
        near = _near_pairs(net, np.array(ids, dtype=np.int64)) if ids else {}
        for (a, b), (a_in, a_out) in near.items():
            if a > b or (b, a) not in near:
                continue
            b_in, b_out = near[b, a]
            if preds[a] & preds[b]:  # side by side out of one lane
                sib += [(b, a, b_out), (a, b, a_out)]
            else:
                con += [(a, b, a_in, b_in, b_out), (b, a, b_in, a_in, a_out)]
                self.conflict[a, b] = self.conflict[b, a] = True
        sib_arr = np.array(sib, dtype=np.float64).reshape(-1, 3)
        self.sib_from, self.sib_onto = (
            sib_arr[:, 0].astype(np.int64),
            sib_arr[:, 1].astype(np.int64),
        )
        self.sib_len = sib_arr[:, 2]
        con_arr = np.array(con, dtype=np.float64).reshape(-1, 5)
        self.con_lane, self.con_other = (
            con_arr[:, 0].astype(np.int64),
            con_arr[:, 1].astype(np.int64),
        )
        self.con_in, self.con_other_in, self.con_other_out = (
            con_arr[:, 2],
            con_arr[:, 3],
            con_arr[:, 4],
        )
        sibs = (self.sib_from, self.sib_onto, self.sib_len)
        cons = (self.con_lane, self.con_other, self.con_in, self.con_other_in, self.con_other_out)
        self._yielding_args = (True, sibs, cons, self.half, INSIDE, -math.inf)
        self._no_yielding = (False, sibs, cons, self.half, INSIDE, -math.inf)

    # --- the step's arguments ----------------------------------------------------------------
    def yielding_args(self, on: bool, ego_way: bool = True) -> tuple:
        """What vehicles in the junction (on a connector, or with the front over the line
        into their next one; and the ego, with the way while ``ego_way``) put on other
        connectors: a leader's copy on the connectors beside theirs, and a standing
        obstacle at the start of each conflict area they have not left, which holds only
        those that owe them the way (rank -inf when they are inside the area: then everyone
        yields to them). The arguments of :func:`.traffic_kernels.junction_obstacles` in
        :func:`.traffic_kernels.advance` (``on``: whether vehicles yield at all)."""
        args = self._yielding_args if on else self._no_yielding
        return args if ego_way else (*args[:-1], math.inf)

    def ego_way(self, q: EgoQueue, ego, dt: float) -> bool:
        """Count the ego's stand on a junction connector (``ego``: ``(lane, s, speed)`` or
        None) and say whether it still has the right of way there: not once it has stood
        :data:`EGO_TURN` seconds (it keeps it in conflict areas it is inside)."""
        standing = ego is not None and self.connector[int(ego[0])] and ego[2] < EGO_CLAIM_SPEED
        q.stood = q.stood + dt if standing else 0.0
        return q.stood < EGO_TURN - 1e-9

    def stop_args(self, ego, yielding: bool, ego_queue: tuple) -> tuple:
        """Count the time each vehicle stands in its stop zone, give it its ticket after
        :data:`STAND_STILL` seconds, and let ticket holders into the junction, first come
        first served, when nothing conflicting is in it (all of them at once when
        ``yielding`` is off): the arguments of :func:`.traffic_kernels.stop_signs` in
        :func:`.traffic_kernels.advance` (``ego``: ``(lane, s, speed)`` or None;
        ``ego_queue``: its ticket, the connector it wants, and a one-element bool array
        for whether its turn has come, from :meth:`queue_ego`)."""
        net = self.net
        claims = self._ego_claims(ego)
        return (self.has_stops, net.lane_lengths, self.stop_zone, self.connector, self.conflict,
                claims, ego_queue, yielding, STAND_STILL, STOP_SPEED)  # fmt: skip

    def queue_ego(self, q: EgoQueue, ego, want: int, dt: float, t: float) -> tuple[float, int]:
        """Count the ego's stand in its lane's stop zone as a vehicle's is counted (``ego``:
        ``(lane, s, speed)`` or None; ``want``: the connector its route takes next, -1 if
        none or not known) and return its place: ``(ticket, want)``, ``(inf, -1)`` when it
        holds none."""
        lane = -1 if ego is None else int(ego[0])
        if lane != q.lane:
            q.lane, q.wait, q.ticket, q.idle = lane, 0.0, math.inf, 0.0
        if lane < 0 or not math.isfinite(self.stop_zone[lane]):
            return math.inf, -1
        if self.net.lane_lengths[lane] - ego[1] <= self.stop_zone[lane] and ego[2] < STOP_SPEED:
            q.wait += dt
        if q.wait >= STAND_STILL - 1e-9 and not math.isfinite(q.ticket):
            q.ticket = t
        if not math.isfinite(q.ticket) or want < 0 or not self.connector[want]:
            return math.inf, -1
        return q.ticket, want

    @staticmethod
    def ego_turn_used(q: EgoQueue, turn: bool, speed: float, dt: float, t: float) -> None:
        """After the step: an ego whose turn has come and who stands through
        :data:`EGO_TURN` seconds of it goes to the back of the queue (a ticket of now)."""
        if not (turn and speed < EGO_CLAIM_SPEED):
            q.idle = 0.0
            return
        q.idle += dt
        if q.idle >= EGO_TURN - 1e-9:
            q.ticket, q.idle = t, 0.0

    def _ego_claims(self, ego) -> np.ndarray:
        """The connectors the ego (``(lane, s, speed)`` or None) takes: the one it is on,
        or, while it drives up to a stop line, every one its lane leads to."""
        if ego is not None:
            lane, s, v = ego
            ln = self.net.lanes[lane]
            if self.connector[lane]:
                return np.array([lane], dtype=np.int64)
            near = v > EGO_CLAIM_SPEED and ln.length - s < EGO_CLAIM
            if np.isfinite(self.stop_zone[lane]) and near:
                return np.array(ln.successors, dtype=np.int64)
        return np.zeros(0, dtype=np.int64)
