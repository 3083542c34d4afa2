"""Infractions of the driving env, detected and counted the way the CARLA leaderboard
scores them (see ``pilot.eval.driving``).

Every event goes to the episode's log (``sim.infractions``) and to this step's list (what
``info["infractions"]`` shows); the scored kinds are also counted. The checks here run
after the car and the traffic have moved: collisions, red lights, stop signs and
outside-lane driving; the kinds that end the route are recorded where the outcome is judged
(:func:`.episode.judge_outcome`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .roads import RED, STOP_SPEED, segment_intersection
from .world import PEDESTRIAN, STATIC, VEHICLE

if TYPE_CHECKING:
    from .episode import EpisodeState, StepStart
    from .roads import LanePoint, RoadNetwork, StopSign, TrafficLight
    from .world import World

#: Infractions a leaderboard scores (see ``pilot.eval.driving``).
INFRACTIONS = (
    "collision_pedestrian",
    "collision_vehicle",
    "collision_static",
    "red_light",
    "stop_sign",
    "outside_lane",
    "speeding",
    "min_speed",
    "route_deviation",
    "agent_blocked",
)
#: The infraction of a contact with a body of each class.
COLLISION_TYPE = {
    PEDESTRIAN: "collision_pedestrian",
    VEHICLE: "collision_vehicle",
    STATIC: "collision_static",
}


def record(sim: EpisodeState, events: list[dict[str, Any]], kind: str) -> None:
    """Log an event of ``kind`` where the car is now; count it when it is scored."""
    ego = sim.ego
    event = {
        "type": kind,
        "step": sim.steps,
        "time": round(sim.t, 6),
        "x": ego.x,
        "y": ego.y,
    }
    sim.infractions.append(event)
    events.append(event)
    if kind in sim.counts:
        sim.counts[kind] += 1


def check_infractions(
    sim: EpisodeState,
    world: World,
    net: RoadNetwork,
    lane: LanePoint,
    start: StepStart,
    step_len: float,
    events: list[dict[str, Any]],
) -> int:
    """Record this step's collisions, red lights and entries outside the lanes, and add
    the step's length to the distance driven outside them. Returns the number of new
    collisions: a body that touches the car now and did not on the previous step."""
    ego = sim.ego
    contacts = tuple(world.ego_contacts())
    new = [b for b in contacts if b not in sim.contacts]
    sim.contacts = contacts
    for b in new:
        record(sim, events, COLLISION_TYPE[int(world.body_class[b])])
    # red lights: the car's centre crossed a stop line while its light was red
    for k in near_lines(ego.x, ego.y, net.light_mids, 20.0):  # a town has many lines
        light = net.lights[k]
        if light.state(sim.t) == RED and crossed(start.x, start.y, ego.x, ego.y, light):
            record(sim, events, "red_light")
    check_stop_signs(sim, net, start, events)
    # outside lanes: one event per excursion, every metre counted
    if not lane.in_lane:
        sim.outside_distance += step_len
        if not sim.outside:
            record(sim, events, "outside_lane")
    sim.outside = not lane.in_lane
    return len(new)


def check_stop_signs(
    sim: EpisodeState, net: RoadNetwork, start: StepStart, events: list[dict[str, Any]]
) -> None:
    """Record a ``stop_sign`` infraction when the car's centre crosses a sign's stop line
    without having stopped in the sign's zone since it came near.

    This is the criterion of the CARLA leaderboard's ``RunningStopTest``: the car must
    come to a stop (speed under :data:`.roads.STOP_SPEED`, CARLA's 0.1 m/s) while it is
    in the area the sign affects, before it leaves that area; here the area is the stop
    zone, the ``zone`` metres before the line across the lane. A stop before the zone does
    not count, each passage of a line needs its own stop, and a stop lapses when the car
    leaves the zone other than over the line. ``sim.stopped_at`` keeps the signs stopped
    at, which also turns the sign ahead GREEN for :func:`.episode.light_ahead`."""
    ego = sim.ego
    near = {int(k) for k in near_lines(ego.x, ego.y, net.sign_mids, net.sign_zone + 20.0)}
    stopped = set(sim.stopped_at) & near  # far from a sign, its stop lapses
    for sign in (net.stop_signs[k] for k in sorted(near)):  # a town has many
        if crossed(start.x, start.y, ego.x, ego.y, sign):
            if sign.id not in stopped:
                record(sim, events, "stop_sign")
            stopped.discard(sign.id)
        elif in_stop_zone(ego.x, ego.y, sign):
            if ego.v < STOP_SPEED:
                stopped.add(sign.id)
        else:
            stopped.discard(sign.id)
    sim.stopped_at = tuple(sorted(stopped))


def in_stop_zone(x: float, y: float, sign: StopSign) -> bool:
    """Whether ``(x, y)`` lies in the sign's stop zone: across the stop line's width and
    at most ``zone`` metres before it (in the sign's direction of travel)."""
    (ax, ay), (bx, by) = sign.stop_line
    along = (x - 0.5 * (ax + bx)) * math.cos(sign.heading) + (y - 0.5 * (ay + by)) * math.sin(
        sign.heading
    )
    ux, uy = bx - ax, by - ay
    across = ((x - ax) * ux + (y - ay) * uy) / max(ux * ux + uy * uy, 1e-12)
    return -sign.zone <= along <= 0.0 and 0.0 <= across <= 1.0


def near_lines(x: float, y: float, mids: np.ndarray, reach: float | np.ndarray) -> np.ndarray:
    """Indices of the stop lines whose middles ``mids`` (``n × 2``) lie within Manhattan
    distance ``reach`` of ``(x, y)``: a cheap test that rules out the lines a car is
    nowhere near (a line's ``reach`` may be its own)."""
    return np.flatnonzero(np.abs(mids[:, 0] - x) + np.abs(mids[:, 1] - y) <= reach)


def crossed(x0: float, y0: float, x1: float, y1: float, light: TrafficLight | StopSign) -> bool:
    """Whether the move from ``(x0, y0)`` to ``(x1, y1)`` crosses the stop line of a light
    or a stop sign in its direction of travel."""
    (ax, ay), (bx, by) = light.stop_line
    if (x1 - x0) * math.cos(light.heading) + (y1 - y0) * math.sin(light.heading) <= 0:
        return False
    hit = segment_intersection(
        np.array([x0, y0]), np.array([x1, y1]), np.array([ax, ay]), np.array([bx, by])
    )
    return hit is not None
