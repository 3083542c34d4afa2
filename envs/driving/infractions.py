"""Infractions of the driving env, detected and counted the way the CARLA leaderboard
scores them (see ``pilot.eval.driving``).

Every event goes to the episode's log (``sim.infractions``) and to this step's list (what
``info["infractions"]`` shows); the scored kinds are also counted. The checks here run
after the car and the traffic have moved: collisions, red lights and outside-lane
driving; the kinds that end the route are recorded where the outcome is judged
(:func:`.episode.judge_outcome`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .roads import RED, segment_intersection
from .world import PEDESTRIAN, STATIC, VEHICLE

if TYPE_CHECKING:
    from .episode import EpisodeState, StepStart
    from .roads import LanePoint, RoadNetwork, TrafficLight
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
    for light in net.lights:
        if light.state(sim.t) == RED and crossed(start.x, start.y, ego.x, ego.y, light):
            record(sim, events, "red_light")
    # outside lanes: one event per excursion, every metre counted
    if not lane.in_lane:
        sim.outside_distance += step_len
        if not sim.outside:
            record(sim, events, "outside_lane")
    sim.outside = not lane.in_lane
    return len(new)


def crossed(x0: float, y0: float, x1: float, y1: float, light: TrafficLight) -> bool:
    """Whether the move from ``(x0, y0)`` to ``(x1, y1)`` crosses the light's stop line in
    its direction of travel."""
    (ax, ay), (bx, by) = light.stop_line
    if (x1 - x0) * math.cos(light.heading) + (y1 - y0) * math.sin(light.heading) <= 0:
        return False
    hit = segment_intersection(
        np.array([x0, y0]), np.array([x1, y1]), np.array([ax, ay]), np.array([bx, by])
    )
    return hit is not None
