"""Episode bookkeeping of the driving env: its mutable state, the car's move, progress
along the route, the lights ahead, the outcome and the info dict.

:class:`EpisodeState` is everything that changes during an episode, so a snapshot
(:class:`DrivingSnapshot`) is a copy of it plus the random generator's state. The
functions below update it in the order :meth:`.env.DrivingEnv.step` calls them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, NamedTuple

from .dynamics import bicycle_step
from .infractions import INFRACTIONS, record
from .junctions import EgoQueue
from .pedestrians import PedestrianState
from .roads import GREEN, RED, YELLOW
from .speed_rules import SpeedLog
from .traffic import EgoCar, TrafficState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import DrivingConfig
    from .roads import LanePoint, RoadNetwork
    from .routes import Route


@dataclasses.dataclass
class EpisodeState:
    """All mutable state of an episode (what :meth:`DrivingEnv.get_state` copies)."""

    t: float
    steps: int
    ego: EgoCar
    route_s: float
    best_s: float
    traffic: TrafficState
    peds: PedestrianState
    last_command: tuple[float, float] = (0.0, 0.0)
    distance: float = 0.0
    outside_distance: float = 0.0
    outside: bool = False
    blocked_for: float = 0.0
    contacts: tuple[int, ...] = ()
    infractions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(INFRACTIONS, 0)
    )
    outcome: str | None = None
    meta_offset: float = 0.0
    meta_speed: int = 0
    route_lateral: float = 0.0  # offset from the route's centre line (left positive)
    route_heading: float = 0.0  # the route's heading at the car's projection
    speed: SpeedLog = dataclasses.field(default_factory=SpeedLog)
    stopped_at: tuple[int, ...] = ()  # stop signs stopped at (in the zone), line not yet crossed
    sign_queue: EgoQueue = dataclasses.field(default_factory=EgoQueue)  # its place at a sign
    traffic_contacts: int = 0  # contacts between two traffic vehicles so far
    traffic_touching: tuple[tuple[int, int], ...] = ()  # the traffic pairs in contact now

    def copy(self) -> EpisodeState:
        """A deep copy, written out because ``copy.deepcopy`` is several times slower and
        a search planner copies states at every node."""

        def arrays(obj):
            return type(obj)(**{k: v.copy() for k, v in vars(obj).items()})

        return dataclasses.replace(
            self,
            ego=dataclasses.replace(self.ego),
            traffic=arrays(self.traffic),
            peds=arrays(self.peds),
            infractions=[dict(e) for e in self.infractions],
            counts=dict(self.counts),
            speed=self.speed.copy(),
            sign_queue=dataclasses.replace(self.sign_queue),
        )


@dataclasses.dataclass(frozen=True)
class DrivingSnapshot:
    """A saved moment of one episode, from :meth:`DrivingEnv.get_state`."""

    episode: int
    sim: EpisodeState
    rng_state: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class StepStart:
    """The car before this step's move: what the red-light check and the reward terms
    compare the new position, controls and progress against."""

    x: float
    y: float
    accel: float
    steer: float
    route_s: float
    v: float

    @classmethod
    def of(cls, sim: EpisodeState) -> StepStart:
        ego = sim.ego
        return cls(ego.x, ego.y, ego.accel, ego.steer, sim.route_s, ego.v)


def drive(sim: EpisodeState, cfg: DrivingConfig, command: Sequence[float]) -> float:
    """Move the car one control step on ``[steer, throttle]`` in [-1, 1] and advance the
    clock and the odometer. Returns the distance driven."""
    ego = sim.ego
    x0, y0 = ego.x, ego.y
    bicycle_step(
        ego,
        command[0] * cfg.max_steer,
        command[1],
        cfg.dt,
        cfg.physics_substeps,
        cfg.wheelbase,
        cfg.steer_rate,
        cfg.max_speed,
        cfg,
    )
    sim.last_command = (float(command[0]), float(command[1]))
    sim.t += cfg.dt
    sim.steps += 1
    step_len = math.hypot(ego.x - x0, ego.y - y0)
    sim.distance += step_len
    return step_len


def project_on_route(sim: EpisodeState, route: Route) -> None:
    """Find the car on the route (searching on from the last projection) and keep the
    farthest point reached, which the route completion counts."""
    ego = sim.ego
    sim.route_s, sim.route_lateral, sim.route_heading = route.project(ego.x, ego.y, sim.route_s)
    sim.best_s = max(sim.best_s, sim.route_s)


class StopLine(NamedTuple):
    """A stop line the route crosses: its arc length on the route and what guards it."""

    s: float
    kind: str  # "light" or "stop_sign"
    id: int  # the light's or the stop sign's id in the network


class Ahead(NamedTuple):
    """The next stop line on the route: its state (GREEN / YELLOW / RED, -1 when there is
    none), the metres to it (inf when none) and whether a stop sign guards it."""

    state: int
    distance: float
    stop_sign: bool = False


#: Before a stop sign the car is asked to brake at most this hard (m/s²) ...
SIGN_DECEL = 2.0
#: ... so as to stand with its centre this far (m) before the line, inside the stop zone.
SIGN_STOP_AT = 4.0


def light_ahead(sim: EpisodeState, stops: Sequence[StopLine], net: RoadNetwork) -> Ahead:
    """The next stop line on the route (``stops``, in order). A light shows its colour; a
    stop sign reads RED until the car has stopped in its zone and GREEN from then until the
    car is over the line, so the target speed and the blocked timer treat a sign not yet
    stopped at like a red light."""
    s = sim.route_s
    for line in stops:
        if line.kind == "light":
            if line.s > s - 0.5:
                return Ahead(net.lights[line.id].state(sim.t), line.s - s)
        elif line.s > s:
            return Ahead(GREEN if line.id in sim.stopped_at else RED, line.s - s, True)
    return Ahead(-1, math.inf)


def speed_limit(cfg: DrivingConfig, net: RoadNetwork, lane: LanePoint) -> float:
    """The limit of the car's lane (where a junction's connectors overlap, the highest
    of theirs); off the lanes, the network's."""
    return lane.speed_limit if lane.lane >= 0 else cfg.speed_limit


def target_speed(
    cfg: DrivingConfig,
    limit: float,
    light_state: int,
    light_dist: float,
    stop_sign: bool = False,
) -> float:
    """The speed the car is asked to drive: the configured one within ``limit``, and 0
    within 30 m of a red or yellow light. Before a stop sign not yet stopped at (RED), no
    more than the speed from which braking at :data:`SIGN_DECEL` stops the car
    :data:`SIGN_STOP_AT` metres before the line, so that it stops inside the zone."""
    target = min(cfg.target_speed, limit)
    if stop_sign:
        if light_state != RED:
            return target
        return min(target, math.sqrt(2.0 * SIGN_DECEL * max(light_dist - SIGN_STOP_AT, 0.0)))
    if light_state in (RED, YELLOW) and light_dist < 30.0:
        return 0.0
    return target


def update_blocked(sim: EpisodeState, cfg: DrivingConfig, ahead: Ahead) -> None:
    """Time the car has stood still; waiting within 40 m of a red or yellow light, or of
    a stop sign's line (before the stop and after it, while other traffic crosses), does
    not count."""
    waiting = (ahead.state in (RED, YELLOW) or ahead.stop_sign) and ahead.distance < 40.0
    sim.blocked_for = sim.blocked_for + cfg.dt if sim.ego.v < 0.1 and not waiting else 0.0


def judge_outcome(
    sim: EpisodeState,
    cfg: DrivingConfig,
    route: Route,
    lane: LanePoint,
    collisions: int,
    events: list[dict[str, Any]],
) -> bool:
    """Whether the episode ends now, naming the reason in ``sim.outcome``; the first that
    applies wins: route completed, collision, route deviation, off road, agent blocked."""
    if sim.best_s >= route.length - 1.0:
        sim.best_s = route.length
        sim.outcome = "route_completed"
        record(sim, events, "route_completed")
    elif collisions and cfg.terminate_on_collision:
        sim.outcome = "collision"
    elif abs(sim.route_lateral) > cfg.deviation_distance:
        sim.outcome = "route_deviation"
        record(sim, events, "route_deviation")
    elif not lane.on_road and cfg.terminate_off_road:
        sim.outcome = "off_road"
    elif sim.blocked_for >= cfg.blocked_time - 1e-9:
        sim.outcome = "agent_blocked"
        record(sim, events, "agent_blocked")
    else:
        return False
    return True


def episode_info(
    sim: EpisodeState,
    route: Route,
    terms: dict[str, float],
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``info`` of a reset or a step (keys in :class:`.env.DrivingEnv`'s docstring)."""
    return {
        "reward_terms": terms,
        "infractions": list(events or []),
        "infraction_counts": dict(sim.counts),
        "route_completion": min(sim.best_s / route.length, 1.0),
        "route_length": route.length,
        "distance": sim.distance,
        "outside_lane_distance": sim.outside_distance,
        "traffic_contacts": sim.traffic_contacts,
        "speeding_time": sim.speed.speeding_time,
        "speeding_distance": sim.speed.speeding_distance,
        "min_speed_percentages": list(sim.speed.percentages),
        "speed": sim.ego.v,
        "time": sim.t,
        "is_success": sim.outcome == "route_completed",
        "outcome": sim.outcome,
    }
