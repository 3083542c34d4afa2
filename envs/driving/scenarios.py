"""Scenario construction of the driving env: what a reset places, and where the bodies go.

A reset draws, from the env's generator and in this order, the road network of the
config's scenario (a town: which of the env's towns, see :class:`TownCache`), a route on
it, the static obstacles, the traffic and the pedestrians;
``reset(options=...)`` may replace the random placements by scripted lists
(:data:`RESET_OPTIONS`). :func:`sync_world` then puts every pybullet body where the
episode's state says it is, after a reset, a step or a restored snapshot.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pilot.errors import UserError, close_matches

from . import layouts, roads
from .clutter import Clutter
from .config import DrivingConfig
from .control import META_SPEEDS
from .episode import EpisodeState, StopLine
from .pedestrians import PedestrianState, crosswalk_positions, spawn_pedestrians
from .roads import RoadNetwork
from .routes import Route, sample_route
from .town import Town, guard_poles, town, town_clutter, town_route
from .traffic import EgoCar, TrafficModel, TrafficState
from .world import EGO_Z, OBSTACLE_HALF, PED_HALF, World

#: Keys ``reset(options=...)`` accepts (see :class:`.env.DrivingEnv`'s Starting State).
RESET_OPTIONS = ("start_time", "vehicles", "obstacles", "pedestrians")


@dataclasses.dataclass
class Scene:
    """One episode's fixed world (network, route, traffic model, obstacle poses, the
    route's stop lines) and its state at the start."""

    net: RoadNetwork
    route: Route
    traffic_model: TrafficModel
    obstacles: np.ndarray  # (n, 3) x, y, heading
    stops: list[StopLine]  # the route's stop lines (lights and stop signs), in order
    sim: EpisodeState
    clutter: Clutter = dataclasses.field(default_factory=Clutter.empty)  # roadside boxes


@dataclasses.dataclass(frozen=True)
class _Start:
    """Where the route begins: the network, the route, its first lane and ``s`` on it."""

    net: RoadNetwork
    route: Route
    lane: int
    s: float


def check_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of the reset options; an unknown key is a :class:`UserError`."""
    options = dict(options or {})
    unknown = set(options) - set(RESET_OPTIONS)
    if unknown:
        key = sorted(unknown)[0]
        raise UserError(f"unknown reset option '{key}'{close_matches(key, list(RESET_OPTIONS))}")
    return options


def network(cfg: DrivingConfig, rng: np.random.Generator) -> RoadNetwork:
    """The road network of the config's scenario, generated from ``rng``."""
    if cfg.scenario == "highway":
        length = max(1000.0, cfg.route_length + 200.0)
        return layouts.highway(rng, cfg.lanes, cfg.lane_width, length, cfg.speed_limit)
    if cfg.scenario == "intersection":
        return layouts.intersection(
            rng, cfg.lane_width, speed_limit=cfg.speed_limit, control=cfg.junction_control
        )
    return layouts.loop(
        rng, cfg.lanes, cfg.lane_width, speed_limit=cfg.speed_limit, n_crosswalks=cfg.crosswalks
    )


class TownCache:
    """The towns of one env. With ``town_maps`` > 0 an episode draws one of that many
    towns, town ``k`` grown from the seed ``(town_seed, k)``; each is built (network,
    clutter, traffic model) the first time it is drawn and kept, so later resets there
    only draw a route and traffic, as MetaDrive keeps its ``num_scenarios`` maps. With
    ``town_maps`` = 0 every episode builds a new town from the env's generator."""

    def __init__(self) -> None:
        self._towns: dict[int, tuple[Town, Clutter, TrafficModel]] = {}

    def draw(
        self, cfg: DrivingConfig, rng: np.random.Generator
    ) -> tuple[Town, Clutter, TrafficModel]:
        if cfg.town_maps == 0:
            return self._build(cfg, rng)
        k = int(rng.integers(cfg.town_maps))
        if k not in self._towns:
            self._towns[k] = self._build(cfg, np.random.default_rng([cfg.town_seed, k]))
        return self._towns[k]

    @staticmethod
    def _build(cfg: DrivingConfig, rng: np.random.Generator) -> tuple[Town, Clutter, TrafficModel]:
        t = town(rng, cfg.lane_width, cfg.speed_limit)
        model = TrafficModel(t.net, lane_change_rate=cfg.lane_change_rate)
        return t, town_clutter(t, rng), model


def build_scene(
    cfg: DrivingConfig,
    rng: np.random.Generator,
    options: Mapping[str, Any],
    world: World,
    towns: TownCache | None = None,
) -> Scene:
    """A new episode: network, route, the car on the route's first point heading along it,
    obstacles, traffic clear of the car and pedestrians, placed at random or as
    ``options`` script them; scripted lists must fit ``world``'s pooled bodies. A town
    comes from ``towns`` (the env's, kept between episodes)."""
    clutter = Clutter.empty()
    if cfg.scenario == "town":
        tw, clutter, model = (towns or TownCache()).draw(cfg, rng)
        net = tw.net
        route, s_start = town_route(tw, rng, cfg.route_length)
    else:
        net = network(cfg, rng)
        if net.stop_signs:  # the signs stand beside the road, for the camera and lidar
            clutter = Clutter.of(guard_poles(net, lights=False))
        route, s_start = sample_route(net, rng, cfg.route_length)
        model = TrafficModel(net, lane_change_rate=cfg.lane_change_rate)
    start = _Start(net, route, route.lanes[0], s_start)
    x, y, _ = net.lanes[start.lane].pose_at(s_start)
    ego = EgoCar(x, y, route.heading_at(0.0), cfg.initial_speed)
    obstacles = _place_obstacles(cfg, rng, start, model, options.get("obstacles"), world)
    keep_clear = [(start.lane, s_start)] + list(
        zip(model.static_lane.tolist(), model.static_s.tolist(), strict=True)
    )
    if options.get("vehicles") is not None:
        traffic = _given_vehicles(start, model, options["vehicles"], world, rng)
    else:
        window = (s_start - 60.0, s_start + 340.0) if cfg.scenario == "highway" else None
        traffic = model.spawn(cfg.vehicles, rng, keep_clear, window=window)
    if options.get("pedestrians") is not None:
        peds = _given_pedestrians(net, options["pedestrians"], world)
    else:
        peds = spawn_pedestrians(net, cfg.pedestrians, rng)
    stops = stop_lines_on(route, net)
    meta_speed = int(np.argmin(np.abs(np.array(META_SPEEDS) - cfg.initial_speed)))
    sim = EpisodeState(
        t=float(options.get("start_time", 0.0)),
        steps=0,
        ego=ego,
        route_s=0.0,
        best_s=0.0,
        traffic=traffic,
        peds=peds,
        meta_speed=meta_speed,
        route_heading=route.heading_at(0.0),
    )
    return Scene(net, route, model, obstacles, stops, sim, clutter)


def stop_lines_on(route: Route, net: RoadNetwork) -> list[StopLine]:
    """Every stop line the route crosses (a light's or a stop sign's), in order, and the
    one at the end of the route's last lane when the route ends before it (a car that
    waits at that red light, or in the queue before it, is waiting, not blocked)."""
    out = []
    guards = [("light", g) for g in net.lights] + [("stop_sign", g) for g in net.stop_signs]
    for kind, guard in guards:
        a, b = (np.array(p) for p in guard.stop_line)
        for i, u in roads.polyline_crossings(route.points, a, b):  # a town route may pass twice
            s = float(route.s[i] + u * (route.s[i + 1] - route.s[i]))
            out.append(StopLine(s, kind, guard.id))
    last = net.lanes[route.lanes[-1]]
    s_end = last.project(*route.points[-1])[0]
    beyond = route.length + last.length - s_end
    kind, guard = ("light", last.light) if last.light is not None else ("stop_sign", last.stop)
    if guard is not None and beyond > route.length + 1e-6:
        out.append(StopLine(beyond, kind, guard))
    return sorted(out)


def sync_world(
    world: World,
    sim: EpisodeState,
    model: TrafficModel,
    net: RoadNetwork,
    obstacles: np.ndarray,
    poses: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> None:
    """Put every body where the Python state says it is (``poses``: the traffic's
    :meth:`.traffic.TrafficModel.poses`, when the caller has them)."""
    world.place_ego(sim.ego.x, sim.ego.y, sim.ego.yaw)
    tr = sim.traffic
    if len(tr.s):
        x, y, h = model.poses(tr) if poses is None else poses
        world.place(world.vehicles, x, y, h, tr.active, EGO_Z)
    if len(sim.peds.u):
        x, y, h = crosswalk_positions(net, sim.peds)
        world.place(world.pedestrians, x, y, h, sim.peds.active, PED_HALF[2])
    n = len(world.obstacles)
    if n:
        active = np.arange(n) < len(obstacles)
        pad = np.zeros((n, 3))
        pad[: len(obstacles)] = obstacles
        world.place(world.obstacles, pad[:, 0], pad[:, 1], pad[:, 2], active, OBSTACLE_HALF[2])
    if net.lights:
        world.set_light_clock(net, sim.t)


# ------------------------------------------------------------------------------- scripted
def _check_room(given: int, room: int, what: str) -> None:
    """Scripted ``what`` (obstacles, vehicles, pedestrians) must fit the env's pooled bodies."""
    if given > room:
        raise UserError(
            f"{given} {what} given but the env has room for {room}; make it with a larger '{what}'"
        )


def _lane_option(start: _Start, item: Mapping[str, Any], what: str) -> tuple[int, float]:
    """``(lane, s)`` of a scripted item: its ``lane`` (default: the ego's) and its ``s``
    on that lane, or ``ahead`` metres (default 20) beyond the ego's start."""
    lanes = start.net.lanes
    lane = int(item.get("lane", start.lane))
    if not 0 <= lane < len(lanes):
        raise UserError(
            f"{what} lane {lane} does not exist (this network has lanes 0..{len(lanes) - 1})"
        )
    s = float(item["s"]) if "s" in item else start.s + float(item.get("ahead", 20.0))
    return lane, s


def _place_obstacles(
    cfg: DrivingConfig,
    rng: np.random.Generator,
    start: _Start,
    model: TrafficModel,
    given: Sequence[Mapping[str, Any]] | None,
    world: World,
) -> np.ndarray:
    """Obstacle poses ``(n, 3)``: the scripted ones, or ``cfg.obstacles`` spread along the
    route in its lane or a neighbour. The traffic model learns their lanes, to stop."""
    net, route = start.net, start.route
    rows = []
    if given is not None:
        for item in given:
            lane, s = _lane_option(start, item, "obstacle")
            rows.append((lane, s, float(item.get("offset", 0.0))))
    elif cfg.obstacles:
        span = max(route.length - 60.0, 10.0)
        for k in range(cfg.obstacles):
            s_route = 40.0 + span * (k + rng.uniform(0.2, 0.8)) / cfg.obstacles
            p = route.point_at(s_route)
            here = net.locate(float(p[0]), float(p[1]), route.heading_at(s_route))
            lane = net.lanes[here.lane]
            choices = [i for i in (here.lane, lane.left, lane.right) if i is not None]
            pick = choices[int(rng.integers(len(choices)))]
            s_pick = net.lanes[pick].project(float(p[0]), float(p[1]))[0]
            rows.append((pick, s_pick, 0.0))
    _check_room(len(rows), len(world.obstacles), "obstacles")
    poses = []
    for lane, s, off in rows:
        x, y, h = net.lanes[lane].pose_at(s)
        poses.append((x - math.sin(h) * off, y + math.cos(h) * off, h))
    model.static_lane = np.array([r[0] for r in rows], dtype=np.int64)
    model.static_s = np.array([r[1] for r in rows], dtype=np.float64)
    return np.array(poses, dtype=np.float64).reshape(-1, 3)


def _given_vehicles(
    start: _Start,
    model: TrafficModel,
    items: Sequence[Mapping[str, Any]],
    world: World,
    rng: np.random.Generator,
) -> TrafficState:
    """Scripted vehicles (``lane``, ``s`` or ``ahead``, ``speed``); they keep their lane."""
    n = len(world.vehicles)
    _check_room(len(items), n, "vehicles")
    tr = TrafficState.empty(n)
    for i, item in enumerate(items):
        lane, tr.s[i] = _lane_option(start, item, "vehicle")
        tr.lane[i] = lane
        tr.v[i] = tr.v0[i] = float(item.get("speed", 0.0))
        tr.next_lane[i] = model.pick_next(lane, rng)
        tr.active[i] = True
        tr.cooldown[i] = 1e9  # scripted vehicles keep their lane
    return tr


def _given_pedestrians(
    net: RoadNetwork, items: Sequence[Mapping[str, Any]], world: World
) -> PedestrianState:
    """Scripted pedestrians (``crosswalk``, ``u`` metres along it, ``speed``)."""
    n = len(world.pedestrians)
    _check_room(len(items), n, "pedestrians")
    peds = PedestrianState.empty(n)
    for i, item in enumerate(items):
        peds.crosswalk[i] = int(item.get("crosswalk", 0))
        if not 0 <= peds.crosswalk[i] < len(net.crosswalks):
            raise UserError(
                f"crosswalk {peds.crosswalk[i]} does not exist "
                f"(this network has {len(net.crosswalks)})"
            )
        peds.u[i] = float(item.get("u", 0.0))
        peds.speed[i] = float(item.get("speed", 0.0))
        peds.active[i] = True
    return peds
