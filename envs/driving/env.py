"""The driving env: a car on a seeded road network with traffic, sensors and infractions.

One class, :class:`DrivingEnv`, covers every driving scenario; the registered ids differ
only in their config (see :mod:`.registration`). The pieces:

* :mod:`.roads`: lanes, lights, crosswalks and routes as numpy data;
* :mod:`.traffic`: the ego's kinematic bicycle, IDM vehicles and pedestrians;
* :mod:`.world`: the pybullet client with the bodies, contacts, rays and camera images;
* :mod:`.sensors`: the observation's parts;
* :mod:`.control`: pure pursuit and the meta-action driver.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pilot.config import field, from_dict
from pilot.errors import UserError, close_matches

from ..rendering import warn_no_render_mode
from . import roads
from .control import META_ACTIONS, meta_targets, route_command
from .roads import GREEN, RED, YELLOW, RoadNetwork, Route, segment_intersection
from .sensors import (
    SENSOR_KEYS,
    Camera,
    Depth,
    EgoState,
    Lidar,
    LidarBEV,
    LidarConfig,
    LidarPoints,
    Segmentation,
    SensorFrame,
)
from .traffic import (
    EgoCar,
    PedestrianState,
    TrafficModel,
    TrafficState,
    bicycle_step,
    crosswalk_positions,
    spawn_pedestrians,
    step_pedestrians,
)
from .world import (
    EGO_Z,
    OBSTACLE_HALF,
    PALETTE,
    PED_HALF,
    PEDESTRIAN,
    STATIC,
    VEHICLE,
    PinholeCamera,
    World,
)

#: Names of the reward terms, in the order they are summed.
REWARD_TERMS = ("progress", "speed", "centring", "comfort", "collision", "off_road")

#: Infractions a leaderboard scores (see ``pilot.eval.driving``).
INFRACTIONS = (
    "collision_pedestrian",
    "collision_vehicle",
    "collision_static",
    "red_light",
    "outside_lane",
    "route_deviation",
    "agent_blocked",
)
_COLLISION_TYPE = {
    PEDESTRIAN: "collision_pedestrian",
    VEHICLE: "collision_vehicle",
    STATIC: "collision_static",
}


# ------------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms; each term is ``weight × raw value``. Raw values:
    metres of route progress this step; ``-|v - v_target| / v_target``; ``-|lane offset|
    / half lane width`` (capped at 1); ``-(|Δ acceleration| / range + |Δ steering| /
    range)``; -1 per new collision; -1 per step off the road."""

    progress: float = field(0.1, "reward per metre of progress along the route")
    speed: float = field(0.05, "cost of missing the target speed (relative error)")
    centring: float = field(0.05, "cost of the offset from the lane's centre line")
    comfort: float = field(0.02, "cost of changes of acceleration and steering (jerk)")
    collision: float = field(10.0, "cost of a collision")
    off_road: float = field(1.0, "cost of every step with the car's centre off the road")


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """The forward camera (also used for ``depth`` and ``segmentation``)."""

    width: int = field(84, "image width (pixels)")
    height: int = field(84, "image height (pixels)")
    fov: float = field(60.0, "vertical field of view (degrees)")
    mount: tuple[float, float, float] = field(
        (2.3, 0.0, 1.4), "position on the car: metres forward of the centre, left, up"
    )
    pitch: float = field(8.0, "downward tilt (degrees)")
    far: float = field(80.0, "far clipping distance (metres); depth is divided by it")

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise ValueError("camera width and height must be at least 8")
        if not 1.0 <= self.fov <= 150.0 or self.far <= 1.0:
            raise ValueError("need 1 <= fov <= 150 and far > 1")


@dataclasses.dataclass(frozen=True)
class DrivingConfig:
    """Settings of :class:`DrivingEnv` (metres, seconds, m/s)."""

    scenario: Literal["loop", "highway", "intersection"] = field(
        "loop", "road network generated per episode"
    )
    sensors: tuple[str, ...] = field(
        ("state", "lidar"), f"observation keys, any of {', '.join(SENSOR_KEYS)}"
    )
    camera: CameraConfig = field(CameraConfig(), "forward camera settings")
    lidar: LidarConfig = field(LidarConfig(), "lidar settings")
    meta_actions: bool = field(
        False, "Discrete(5) highway-env style meta actions instead of Box(2) controls"
    )
    lanes: int = field(2, "loop and highway: lanes in the driving direction")
    lane_width: float = field(3.5, "lane width")
    speed_limit: float = field(15.0, "speed limit on the generated roads")
    route_length: float = field(300.0, "route length (shorter where the network ends)")
    vehicles: int = field(0, "other vehicles")
    pedestrians: int = field(0, "pedestrians (they walk on crosswalks)")
    obstacles: int = field(0, "static obstacles placed in lanes along the route")
    crosswalks: int = field(0, "loop: mid-block crosswalks (the intersection has four)")
    lane_change_rate: float = field(0.05, "lane changes per second a vehicle attempts")
    dt: float = field(0.1, "seconds per control step")
    physics_substeps: int = field(4, "integration steps of the car model per control step")
    target_speed: float = field(10.0, "desired speed (capped by the lane's speed limit)")
    initial_speed: float = field(5.0, "the car's speed at the start")
    max_speed: float = field(40.0, "top speed; speeds in observations are divided by it")
    max_accel: float = field(3.0, "acceleration at throttle +1")
    max_brake: float = field(8.0, "deceleration at throttle -1")
    max_steer: float = field(0.5, "steering angle at steer ±1 (rad)")
    steer_rate: float = field(2.0, "fastest change of the steering angle (rad/s)")
    wheelbase: float = field(2.7, "distance between the axles")
    weights: RewardWeights = field(RewardWeights(), "weights of the reward terms")
    terminate_on_collision: bool = field(True, "end the episode at the first collision")
    terminate_off_road: bool = field(True, "end the episode when the car leaves the road")
    blocked_time: float = field(
        20.0, "standing still this long (not at a red light) is 'agent blocked'"
    )
    deviation_distance: float = field(30.0, "farther than this from the route ends it")
    waypoints: int = field(5, "state sensor: route waypoints ahead")
    waypoint_spacing: float = field(5.0, "state sensor: metres between waypoints")
    raster_resolution: float = field(0.1, "metres per pixel of the painted ground")
    gui: bool = field(False, "open pybullet's own 3-D window (needs a display)")

    def __post_init__(self) -> None:
        unknown = [k for k in self.sensors if k not in SENSOR_KEYS]
        if unknown:
            raise ValueError(
                f"unknown sensor '{unknown[0]}'{close_matches(unknown[0], SENSOR_KEYS)}; "
                f"choose from {', '.join(SENSOR_KEYS)}"
            )
        if not self.sensors or len(set(self.sensors)) != len(self.sensors):
            raise ValueError("sensors must name at least one sensor, each once")
        if self.lanes < 1 or self.lane_width <= 2.0:
            raise ValueError("need lanes >= 1 and lane_width > 2")
        for name in ("vehicles", "pedestrians", "obstacles", "crosswalks"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        positive = ("dt", "target_speed", "max_speed", "max_accel", "max_brake", "max_steer")
        for name in positive + ("steer_rate", "wheelbase", "route_length", "blocked_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.physics_substeps < 1:
            raise ValueError("physics_substeps must be at least 1")


def _check_room(given: int, room: int, what: str) -> None:
    """Scripted ``what`` (obstacles, vehicles, pedestrians) must fit the env's pooled bodies."""
    if given > room:
        raise UserError(
            f"{given} {what} given but the env has room for {room}; make it with a larger '{what}'"
        )


def build_config(config: DrivingConfig | None, overrides: Mapping[str, Any]) -> DrivingConfig:
    """A :class:`DrivingConfig` from an instance and/or keyword overrides; nested configs
    may be given as partial mappings. Unknown keys are a :class:`UserError`."""
    base = config if config is not None else DrivingConfig()
    if not isinstance(base, DrivingConfig):
        raise UserError(f"config must be a DrivingConfig, got {type(base).__name__}")
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(DrivingConfig)}
    for key, value in overrides.items():
        current = values.get(key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = {**dataclasses.asdict(current), **value}
        values[key] = value
    values = {
        k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v for k, v in values.items()
    }
    return from_dict(DrivingConfig, values)


# ------------------------------------------------------------------------------- state
@dataclasses.dataclass
class _Sim:
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

    def copy(self) -> _Sim:
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
        )


@dataclasses.dataclass(frozen=True)
class DrivingSnapshot:
    """A saved moment of one episode, from :meth:`DrivingEnv.get_state`."""

    episode: int
    sim: _Sim
    rng_state: dict[str, Any]


# ------------------------------------------------------------------------------- env
class DrivingEnv(gym.Env):
    """
    ## Description

    A car drives a route through a seeded, procedurally generated road network in a
    pybullet world: a curvy multi-lane loop, a multi-lane highway, or a 4-way intersection
    with traffic lights. Other vehicles follow their lanes with the Intelligent Driver
    Model, stop for red lights and pedestrians and now and then change lanes; pedestrians
    cross at crosswalks; static obstacles may block lanes. Infractions are recorded the way
    the CARLA leaderboard scores them (collisions with pedestrians, vehicles and static
    objects, red lights, driving outside lanes, route deviation, agent blocked), so
    ``pilot.eval.driving.driving_score`` computes the Driving Score from an episode.

    ## Action Space

    ``Box(-1, 1, (2,))``: steering (±1 = ``max_steer``, positive turns left) and
    throttle / brake (+1 = ``max_accel``, -1 = ``max_brake``; the car never reverses).
    With ``meta_actions=True``, ``Discrete(5)``: 0 LANE_LEFT, 1 IDLE, 2 LANE_RIGHT,
    3 FASTER, 4 SLOWER, as in highway-env; a pure-pursuit driver then follows the route
    (shifted by whole lanes) at one of the speed levels 0, 5, ..., 30 m/s.

    ## Observation Space

    A ``Dict`` of the sensors named in ``sensors`` (default ``("state", "lidar")``):
    ``state`` (float32 vector: speed, steering, heading error, offsets, progress, light
    ahead, route waypoints in the car's frame), ``camera`` (uint8 H×W×3 forward RGB),
    ``depth`` (float32 H×W), ``segmentation`` (uint8 H×W classes), ``lidar`` (float32
    ranges of ``channels × rays`` over ``max_range``), ``lidar_points`` (float32 n×3) and
    ``lidar_bev`` (float32 2×N×N occupancy and height). See :mod:`.sensors`.

    ## Rewards

    The sum of the weighted terms in ``info["reward_terms"]``: ``progress`` (metres along
    the route), ``speed`` (relative error to the target speed, which drops to 0 before a
    red light), ``centring`` (offset from the lane centre), ``comfort`` (changes of
    acceleration and steering), ``collision`` (-1 per new contact) and ``off_road``
    (-1 per step off the road); weights in :class:`RewardWeights`.

    ## Starting State

    A new road network and route per episode (from the seed): the car starts on the
    route's first point, heading along it, at ``initial_speed``. Traffic, pedestrians and
    obstacles are placed at random, clear of the car. ``reset(options=...)`` accepts
    ``start_time`` (the lights' clock), and lists that replace the random placement:
    ``vehicles`` (dicts with ``lane`` (default: the start lane), ``s`` or ``ahead`` (metres
    ahead of the car on that lane) and ``speed``), ``obstacles`` (``lane``, ``s`` or
    ``ahead``, ``offset`` to the left) and ``pedestrians`` (``crosswalk``, ``u`` metres
    along it, ``speed``).

    ## Episode End

    Terminated when the route is complete, at a collision (``terminate_on_collision``),
    when the car's centre leaves the road (``terminate_off_road``), when it is more than
    ``deviation_distance`` from the route, or when it has stood still for ``blocked_time``
    seconds other than at a red light. Truncated by the time limit of the registered id.
    ``info["outcome"]`` names the reason.

    ## Arguments

    ``gym.make(id, render_mode=None, **kwargs)`` with the fields of :class:`DrivingConfig`
    as keywords (nested ``camera``, ``lidar`` and ``weights`` as partial mappings) or
    ``config=DrivingConfig(...)``. ``render_mode="rgb_array"`` returns a chase-camera view
    beside a top-down view (route, objects, lidar returns); ``"human"`` shows the same in
    a pygame window; ``gui=True`` opens pybullet's own 3-D window (needs a display).
    ``sensor_panels()`` gives the pictures ``pilot watch`` shows side by side: the camera
    image the agent sees (the chase camera without one), a top-down lidar plot and the
    BEV. ``info`` carries ``reward_terms``, ``infractions`` (this
    step's events: ``type``, ``step``, ``time``, ``x``, ``y``), ``infraction_counts``,
    ``route_completion`` (0..1), ``route_length``, ``distance``,
    ``outside_lane_distance``, ``speed``, ``time``, ``is_success`` and ``outcome``.

    ``get_state()`` / ``set_state(snapshot)`` save and restore the whole episode (world,
    traffic, lights, infraction log, random generator) for planning by search.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 10}

    META_SPEEDS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0)

    def __init__(
        self, render_mode: str | None = None, config: DrivingConfig | None = None, **kwargs: Any
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.config = cfg = build_config(config, kwargs)
        self.world = World(cfg.vehicles, cfg.pedestrians, cfg.obstacles, gui=cfg.gui)
        self._window = None
        self._clock = None
        cam = cfg.camera
        self.camera_spec = PinholeCamera(
            cam.width, cam.height, cam.fov, cam.mount, cam.pitch, far=cam.far
        )
        self.lidar_spec = cfg.lidar  # the sensors take the config itself
        self.sensors: dict[str, Any] = {}
        for key in cfg.sensors:
            self.sensors[key] = self._make_sensor(key)
        self.observation_space = spaces.Dict({k: s.space() for k, s in self.sensors.items()})
        if cfg.meta_actions:
            self.action_space = spaces.Discrete(len(META_ACTIONS))
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.net: RoadNetwork | None = None
        self.route: Route | None = None
        self.traffic_model: TrafficModel | None = None
        self._sim: _Sim | None = None
        self._episode = 0
        self._obstacles = np.zeros((0, 3))
        self._stops: list[tuple[float, int]] = []  # (route s of a stop line, light id)
        self._frame_cache: dict[str, Any] = {}
        self._lane = None

    def _make_sensor(self, key: str):
        cfg = self.config
        if key == "state":
            return EgoState(
                cfg.max_speed,
                cfg.max_steer,
                max(cfg.max_accel, cfg.max_brake),
                cfg.lane_width,
                cfg.waypoints,
                cfg.waypoint_spacing,
            )
        cameras = {"camera": Camera, "depth": Depth, "segmentation": Segmentation}
        if key in cameras:
            return cameras[key](self.camera_spec)
        lidars = {"lidar": Lidar, "lidar_points": LidarPoints, "lidar_bev": LidarBEV}
        return lidars[key](self.lidar_spec)

    # --- episodes ---------------------------------------------------------------------------
    def _network(self) -> RoadNetwork:
        cfg, rng = self.config, self.np_random
        if cfg.scenario == "highway":
            length = max(1000.0, cfg.route_length + 200.0)
            return roads.highway(rng, cfg.lanes, cfg.lane_width, length, cfg.speed_limit)
        if cfg.scenario == "intersection":
            return roads.intersection(rng, cfg.lane_width, speed_limit=cfg.speed_limit)
        return roads.loop(
            rng, cfg.lanes, cfg.lane_width, speed_limit=cfg.speed_limit, n_crosswalks=cfg.crosswalks
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"start_time", "vehicles", "obstacles", "pedestrians"}
        if unknown:
            key = sorted(unknown)[0]
            raise UserError(
                f"unknown reset option '{key}'"
                f"{close_matches(key, ['start_time', 'vehicles', 'obstacles', 'pedestrians'])}"
            )
        cfg, rng = self.config, self.np_random
        self._episode += 1
        net = self.net = self._network()
        route, s_start = roads.sample_route(net, rng, cfg.route_length)
        self.route = route
        start_lane = route.lanes[0]
        x, y, yaw = net.lanes[start_lane].pose_at(s_start)
        ego = EgoCar(x, y, route.heading_at(0.0), cfg.initial_speed)
        model = self.traffic_model = TrafficModel(net, lane_change_rate=cfg.lane_change_rate)
        self._place_obstacles(options.get("obstacles"), start_lane, s_start)
        keep_clear = [(start_lane, s_start)] + list(
            zip(model.static_lane.tolist(), model.static_s.tolist(), strict=True)
        )
        if options.get("vehicles") is not None:
            traffic = self._given_vehicles(options["vehicles"], start_lane, s_start)
        else:
            window = (s_start - 60.0, s_start + 340.0) if cfg.scenario == "highway" else None
            traffic = model.spawn(cfg.vehicles, rng, keep_clear, window=window)
        if options.get("pedestrians") is not None:
            peds = self._given_pedestrians(options["pedestrians"])
        else:
            peds = spawn_pedestrians(net, cfg.pedestrians, rng)
        self._stops = _stop_lines_on(route, net)
        meta_speed = int(np.argmin(np.abs(np.array(self.META_SPEEDS) - cfg.initial_speed)))
        self._sim = _Sim(
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
        self.world.set_road(net, cfg.raster_resolution)
        self._sync_world()
        self._lane = net.locate(ego.x, ego.y, ego.yaw)
        obs = self._observe()
        return obs, self._info({})

    def _lane_option(
        self, item: Mapping[str, Any], default: int, s_start: float, what: str
    ) -> tuple[int, float]:
        """``(lane, s)`` of a scripted item: its ``lane`` (default: the ego's) and its ``s``
        on that lane, or ``ahead`` metres (default 20) beyond the ego's ``s_start``."""
        lane = int(item.get("lane", default))
        if not 0 <= lane < len(self.net.lanes):
            raise UserError(
                f"{what} lane {lane} does not exist (this network has lanes 0..{len(self.net.lanes) - 1})"
            )
        s = float(item["s"]) if "s" in item else s_start + float(item.get("ahead", 20.0))
        return lane, s

    def _place_obstacles(self, given, start_lane: int, s_start: float) -> None:
        cfg, net, rng = self.config, self.net, self.np_random
        rows = []
        if given is not None:
            for item in given:
                lane, s = self._lane_option(item, start_lane, s_start, "obstacle")
                rows.append((lane, s, float(item.get("offset", 0.0))))
        elif cfg.obstacles:
            span = max(self.route.length - 60.0, 10.0)
            for k in range(cfg.obstacles):
                s_route = 40.0 + span * (k + rng.uniform(0.2, 0.8)) / cfg.obstacles
                p = self.route.point_at(s_route)
                here = net.locate(float(p[0]), float(p[1]), self.route.heading_at(s_route))
                lane = net.lanes[here.lane]
                choices = [i for i in (here.lane, lane.left, lane.right) if i is not None]
                pick = choices[int(rng.integers(len(choices)))]
                s_pick = net.lanes[pick].project(float(p[0]), float(p[1]))[0]
                rows.append((pick, s_pick, 0.0))
        _check_room(len(rows), len(self.world.obstacles), "obstacles")
        poses = []
        for lane, s, off in rows:
            x, y, h = net.lanes[lane].pose_at(s)
            poses.append((x - math.sin(h) * off, y + math.cos(h) * off, h))
        self._obstacles = np.array(poses, dtype=np.float64).reshape(-1, 3)
        self.traffic_model.static_lane = np.array([r[0] for r in rows], dtype=np.int64)
        self.traffic_model.static_s = np.array([r[1] for r in rows], dtype=np.float64)

    def _given_vehicles(self, items, start_lane: int, s_start: float) -> TrafficState:
        n = len(self.world.vehicles)
        _check_room(len(items), n, "vehicles")
        tr = TrafficState.empty(n)
        for i, item in enumerate(items):
            lane, tr.s[i] = self._lane_option(item, start_lane, s_start, "vehicle")
            tr.lane[i] = lane
            tr.v[i] = tr.v0[i] = float(item.get("speed", 0.0))
            tr.next_lane[i] = self.traffic_model.pick_next(lane, self.np_random)
            tr.active[i] = True
            tr.cooldown[i] = 1e9  # scripted vehicles keep their lane
        return tr

    def _given_pedestrians(self, items) -> PedestrianState:
        n = len(self.world.pedestrians)
        _check_room(len(items), n, "pedestrians")
        peds = PedestrianState.empty(n)
        for i, item in enumerate(items):
            peds.crosswalk[i] = int(item.get("crosswalk", 0))
            if not 0 <= peds.crosswalk[i] < len(self.net.crosswalks):
                raise UserError(
                    f"crosswalk {peds.crosswalk[i]} does not exist "
                    f"(this network has {len(self.net.crosswalks)})"
                )
            peds.u[i] = float(item.get("u", 0.0))
            peds.speed[i] = float(item.get("speed", 0.0))
            peds.active[i] = True
        return peds

    # --- stepping ---------------------------------------------------------------------------
    def step(self, action):
        sim = self._sim
        if sim is None:
            raise RuntimeError("call reset() before step()")
        cfg, net, route = self.config, self.net, self.route
        ego = sim.ego
        command = self._command(action)
        prev_x, prev_y, prev_accel, prev_steer = ego.x, ego.y, ego.accel, ego.steer
        accel = command[1] * (cfg.max_accel if command[1] >= 0 else cfg.max_brake)
        bicycle_step(
            ego,
            command[0] * cfg.max_steer,
            accel,
            cfg.dt,
            cfg.physics_substeps,
            cfg.wheelbase,
            cfg.steer_rate,
            cfg.max_speed,
        )
        sim.last_command = (float(command[0]), float(command[1]))
        sim.t += cfg.dt
        sim.steps += 1
        step_len = math.hypot(ego.x - prev_x, ego.y - prev_y)
        sim.distance += step_len
        lane = self._lane = net.locate(ego.x, ego.y, ego.yaw)
        ego_slot = (lane.lane, lane.s, ego.v) if lane.in_lane else None
        self.traffic_model.step(sim.traffic, cfg.dt, sim.t, self.np_random, ego_slot, sim.peds)
        step_pedestrians(net, sim.peds, cfg.dt, self.np_random)
        self._sync_world()

        events: list[dict[str, Any]] = []

        def record(kind: str) -> None:
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

        # collisions: a body that was not touching the car on the previous step
        contacts = tuple(self.world.ego_contacts())
        new = [b for b in contacts if b not in sim.contacts]
        sim.contacts = contacts
        for b in new:
            record(_COLLISION_TYPE[int(self.world.body_class[b])])
        # red lights: the car's centre crossed a stop line while its light was red
        for light in net.lights:
            if light.state(sim.t) == RED and _crossed(prev_x, prev_y, ego.x, ego.y, light):
                record("red_light")
        # lanes and route
        if not lane.in_lane:
            sim.outside_distance += step_len
            if not sim.outside:
                record("outside_lane")
        sim.outside = not lane.in_lane
        before = sim.route_s
        sim.route_s, route_lat, sim.route_heading = route.project(ego.x, ego.y, sim.route_s)
        sim.route_lateral = route_lat
        sim.best_s = max(sim.best_s, sim.route_s)
        light_state, light_dist = self._light_ahead()
        waiting = light_state in (RED, YELLOW) and light_dist < 40.0
        sim.blocked_for = sim.blocked_for + cfg.dt if ego.v < 0.1 and not waiting else 0.0

        terminated = False
        if sim.best_s >= route.length - 1.0:
            sim.best_s = route.length
            sim.outcome, terminated = "route_completed", True
            record("route_completed")
        elif new and cfg.terminate_on_collision:
            sim.outcome, terminated = "collision", True
        elif abs(route_lat) > cfg.deviation_distance:
            sim.outcome, terminated = "route_deviation", True
            record("route_deviation")
        elif not lane.on_road and cfg.terminate_off_road:
            sim.outcome, terminated = "off_road", True
        elif sim.blocked_for >= cfg.blocked_time - 1e-9:
            sim.outcome, terminated = "agent_blocked", True
            record("agent_blocked")

        target = self._target_speed(lane, light_state, light_dist)
        raw = {
            "progress": sim.route_s - before,
            "speed": -abs(ego.v - target) / max(min(cfg.target_speed, self._limit(lane)), 1.0),
            "centring": -min(abs(lane.lateral) / (0.5 * cfg.lane_width), 1.0),
            "comfort": -(
                abs(ego.accel - prev_accel) / (cfg.max_accel + cfg.max_brake)
                + abs(ego.steer - prev_steer) / (2 * cfg.max_steer)
            ),
            "collision": -float(len(new)),
            "off_road": -float(not lane.on_road),
        }
        w = cfg.weights
        terms = {k: getattr(w, k) * raw[k] for k in REWARD_TERMS}
        reward = float(sum(terms.values()))
        obs = self._observe(light_state, light_dist)
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, False, self._info(terms, events)

    def follow_route(self, speed: float | None = None, offset: float = 0.0) -> np.ndarray:
        """The ``[steer, throttle]`` action of a pure-pursuit driver on the route's centre
        line (shifted ``offset`` metres left) at ``speed``, by default the env's target
        speed (which drops to 0 before a red light): the meta actions' driver, and a
        scripted lane follower for tests and benchmarks."""
        if self._sim is None:
            raise RuntimeError("call reset() before follow_route()")
        cfg, sim = self.config, self._sim
        target = self._target_speed(self._lane, *self._light_ahead()) if speed is None else speed
        return route_command(
            sim.ego,
            self.route,
            sim.route_s,
            target,
            cfg.wheelbase,
            cfg.max_steer,
            cfg.max_accel,
            cfg.max_brake,
            offset,
        )

    def _command(self, action) -> tuple[float, float] | np.ndarray:
        cfg, sim = self.config, self._sim
        if cfg.meta_actions:
            a = int(action)
            if not 0 <= a < len(META_ACTIONS):
                raise ValueError(f"action must be in 0..{len(META_ACTIONS) - 1}, got {action!r}")
            sim.meta_offset, sim.meta_speed = meta_targets(
                a,
                self.net,
                self.route,
                sim.route_s,
                sim.ego.yaw,
                sim.meta_offset,
                sim.meta_speed,
                self.META_SPEEDS,
                cfg.lane_width,
            )
            target = min(self.META_SPEEDS[sim.meta_speed], cfg.max_speed)
            return self.follow_route(target, sim.meta_offset)
        # plain floats: numpy's per-call overhead dwarfs the work on two numbers
        try:
            steer, throttle = (float(v) for v in np.ravel(action))
        except (TypeError, ValueError):
            steer = throttle = math.nan
        if not (math.isfinite(steer) and math.isfinite(throttle)):
            raise ValueError(f"action must be 2 finite numbers, got {action!r}")
        return min(max(steer, -1.0), 1.0), min(max(throttle, -1.0), 1.0)

    def _limit(self, lane) -> float:
        return self.net.lanes[lane.lane].speed_limit if lane.lane >= 0 else self.config.speed_limit

    def _target_speed(self, lane, light_state: int, light_dist: float) -> float:
        target = min(self.config.target_speed, self._limit(lane))
        if light_state in (RED, YELLOW) and light_dist < 30.0:
            return 0.0
        return target

    def _light_ahead(self) -> tuple[int, float]:
        """State of and distance to the next stop line on the route (-1, inf: none)."""
        s = self._sim.route_s
        for s_stop, light in self._stops:
            if s_stop > s - 0.5:
                return self.net.lights[light].state(self._sim.t), s_stop - s
        return -1, math.inf

    def _sync_world(self) -> None:
        """Put every pybullet body where the Python state says it is."""
        sim, world = self._sim, self.world
        world.place_ego(sim.ego.x, sim.ego.y, sim.ego.yaw)
        tr = sim.traffic
        if len(tr.s):
            x, y, h = self.traffic_model.poses(tr)
            world.place(world.vehicles, x, y, h, tr.active, EGO_Z)
        if len(sim.peds.u):
            x, y, h = crosswalk_positions(self.net, sim.peds)
            world.place(world.pedestrians, x, y, h, sim.peds.active, PED_HALF[2])
        obs = self._obstacles
        n = len(world.obstacles)
        if n:
            active = np.arange(n) < len(obs)
            pad = np.zeros((n, 3))
            pad[: len(obs)] = obs
            world.place(world.obstacles, pad[:, 0], pad[:, 1], pad[:, 2], active, OBSTACLE_HALF[2])
        if self.net.lights:
            world.show_lights(self.net.light_states(sim.t))

    # --- observations and info ------------------------------------------------------------------
    def _frame(
        self, light_state: int | None = None, light_dist: float | None = None
    ) -> SensorFrame:
        sim, lane = self._sim, self._lane
        if light_state is None:
            light_state, light_dist = self._light_ahead()
        return SensorFrame(
            world=self.world,
            net=self.net,
            route=self.route,
            ego=sim.ego,
            route_s=sim.route_s,
            route_lateral=sim.route_lateral,
            route_heading=sim.route_heading,
            lane=lane,
            speed_limit=self._limit(lane),
            target_speed=self._target_speed(lane, light_state, light_dist),
            light_state=light_state,
            light_distance=light_dist,
            last_command=sim.last_command,
            rng=self.np_random,
        )

    def _observe(self, light_state: int | None = None, light_dist: float | None = None):
        frame = self._frame(light_state, light_dist)
        obs = {key: sensor.observe(frame) for key, sensor in self.sensors.items()}
        self._frame_cache = frame.cache
        return obs

    def _info(self, terms: dict[str, float], events: list[dict[str, Any]] | None = None) -> dict:
        sim, route = self._sim, self.route
        info = {
            "reward_terms": terms,
            "infractions": list(events or []),
            "infraction_counts": dict(sim.counts),
            "route_completion": min(sim.best_s / route.length, 1.0),
            "route_length": route.length,
            "distance": sim.distance,
            "outside_lane_distance": sim.outside_distance,
            "speed": sim.ego.v,
            "time": sim.t,
            "is_success": sim.outcome == "route_completed",
            "outcome": sim.outcome,
        }
        return info

    # --- snapshots ------------------------------------------------------------------------------
    def get_state(self) -> DrivingSnapshot:
        """A copy of everything that changes during the episode: the car, traffic,
        pedestrians, the lights' clock, the infraction log, the counters and the random
        generator's state. Restore it with :meth:`set_state` any number of times."""
        if self._sim is None:
            raise RuntimeError("call reset() before get_state()")
        return DrivingSnapshot(
            self._episode,
            self._sim.copy(),
            copy.deepcopy(self.np_random.bit_generator.state),
        )

    def set_state(self, snapshot: DrivingSnapshot) -> None:
        """Return the episode to ``snapshot`` (taken in this episode, i.e. since the last
        reset). The road network, route and obstacles are fixed within an episode, and
        every body is placed from the restored state, so the next steps repeat exactly."""
        if not isinstance(snapshot, DrivingSnapshot):
            raise TypeError(f"expected a DrivingSnapshot, got {type(snapshot).__name__}")
        if snapshot.episode != self._episode:
            raise ValueError("this snapshot belongs to another episode (the env was reset since)")
        self._sim = snapshot.sim.copy()
        self.np_random.bit_generator.state = copy.deepcopy(snapshot.rng_state)
        self._sync_world()
        ego = self._sim.ego
        self._lane = self.net.locate(ego.x, ego.y, ego.yaw)
        self._frame_cache = {}

    # --- rendering ------------------------------------------------------------------------------
    CHASE = PinholeCamera(320, 240, 60.0, (-10.0, 0.0, 5.0), 15.0, far=150.0)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            warn_no_render_mode(self)
            return None
        if self._sim is None:
            raise RuntimeError("call reset() before render()")
        ego = self._sim.ego
        if self.world.gui:  # pybullet's window follows the car
            self.world.client.resetDebugVisualizerCamera(
                12.0, math.degrees(ego.yaw) - 90.0, -20.0, [ego.x, ego.y, 1.0]
            )
        chase = self.world.camera(self.CHASE, ego.x, ego.y, ego.yaw)[0]
        frame = np.concatenate([chase, self.bev_image(self.CHASE.height)], axis=1)
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def _show(self, frame: np.ndarray) -> None:
        """Draw ``frame`` in a pygame window, like Gymnasium's classic-control envs."""
        import pygame

        if self._window is None:
            pygame.display.init()
            self._window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(frame.transpose(1, 0, 2)))
        self._window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.metadata["render_fps"])

    def sensor_panels(self, size: int = 320) -> list[tuple[str, np.ndarray]]:
        """``(title, RGB image)`` pictures of what the car senses now, for a viewer to show
        side by side: the forward camera image the agent sees (the chase camera when the
        observation has no camera), a top-down plot of the lidar sweep, and the BEV.

        The camera image keeps its own resolution (the viewer scales it); the lidar plot
        and the BEV are ``size × size``. Nothing here touches the episode's state or its
        random generator, so showing the panels never changes a rollout."""
        if self._sim is None:
            raise RuntimeError("call reset() before sensor_panels()")
        ego = self._sim.ego
        cam = next((k for k in ("camera", "depth", "segmentation") if k in self.sensors), None)
        if cam == "camera":
            cached = self._frame_cache.get("camera")
            if cached is None:  # e.g. just after set_state(): the same view, rendered again
                cached = self.world.camera(self.camera_spec, ego.x, ego.y, ego.yaw)
            spec = self.camera_spec
            first = (f"camera {spec.width}x{spec.height} (agent)", cached[0])
        else:
            chase = self.world.camera(self.CHASE, ego.x, ego.y, ego.yaw)[0]
            first = ("chase camera (no camera in obs)", chase)
        spec = self.lidar_spec
        lidar_title = f"lidar {spec.channels}x{spec.rays}, {spec.max_range:g} m"
        if not any(isinstance(s, Lidar) for s in self.sensors.values()):
            lidar_title += " (not in obs)"
        return [
            first,
            (lidar_title, self.lidar_image(size)),
            ("BEV", self.bev_image(size)),
        ]

    def lidar_image(self, size: int = 320) -> np.ndarray:
        """The last lidar sweep seen from above, car at the centre heading up: the free
        space the rays swept, a dot at every return coloured by what it hit (vehicle,
        pedestrian, static, on a light rim; brown: the ground) and range rings every 10 m.
        Without a lidar in the observation a noise-free sweep of the configured lidar is
        cast for the picture."""
        import cv2

        sensor, (ranges, ids) = self._last_sweep()
        spec = sensor.spec
        img = np.full((size, size, 3), 24, dtype=np.uint8)
        centre = np.array([size / 2, size / 2])
        px_per_m = 0.5 * (size - 8) / spec.max_range
        pts = sensor.dirs[:, :2] * ranges[:, None]  # ego frame: x forward, y left
        pix = np.round(centre - pts[:, ::-1] * px_per_m).astype(np.int32)  # up = forward
        cls = self.world.body_class[np.clip(ids, 0, len(self.world.body_class) - 1)]
        colours = np.where(ids[:, None] >= 0, PALETTE[cls], (120, 120, 120))
        colours[ids == -2] = (140, 100, 60)
        hit = ids != -1
        # free space: the area the rays swept before their returns
        outline = pix if spec.h_fov >= 360.0 else np.vstack([centre.astype(np.int32), pix])
        cv2.fillPoly(img, [outline.reshape(-1, 1, 2)], (52, 60, 72), cv2.LINE_AA)
        for ring in np.arange(10.0, spec.max_range + 1e-9, 10.0):
            cv2.circle(img, (size // 2, size // 2), int(ring * px_per_m), (80, 80, 80), 1)
        for u, v in pix[ids >= 0].tolist():  # a light rim lifts body returns off the dark
            cv2.circle(img, (u, v), 4, (210, 210, 210), -1, cv2.LINE_AA)
        for (u, v), colour in zip(pix[hit].tolist(), colours[hit].tolist(), strict=True):
            cv2.circle(img, (u, v), 3, tuple(int(x) for x in colour), -1, cv2.LINE_AA)
        half = np.array([2.25, 0.95]) * px_per_m
        cv2.rectangle(
            img,
            tuple(int(x) for x in centre - half[::-1]),
            tuple(int(x) for x in centre + half[::-1]),
            (220, 40, 40),
            -1,
        )
        return img

    def _last_sweep(self) -> tuple[Lidar, tuple[np.ndarray, np.ndarray]]:
        """The lidar and its last sweep (ranges, hit ids) for the pictures; without a lidar
        in the observation a noise-free sweep of the configured lidar is cast, so the
        env's generator is never drawn from."""
        sensor = next((s for s in self.sensors.values() if isinstance(s, Lidar)), None)
        ranges_ids = self._frame_cache.get("lidar") if sensor is not None else None
        if ranges_ids is None:
            sensor = Lidar(dataclasses.replace(self.lidar_spec, noise_std=0.0))
            ranges_ids = sensor.sweep(self._frame())
        return sensor, ranges_ids

    #: Colour of the lidar returns in the BEV: magenta, which no class of the palette uses.
    LIDAR_RETURN = (255, 0, 255)

    def bev_image(self, size: int = 240, extent: float = 60.0) -> np.ndarray:
        """A top-down view centred ahead of the car, heading up: the ground classes, the
        route (green), other bodies, the car (red) and the last lidar returns on bodies
        (magenta dots with a dark rim, about a metre across, so they stand out on any
        class)."""
        import cv2

        sim, ego = self._sim, self._sim.ego
        m_per_px = extent / size
        c, s = math.cos(ego.yaw), math.sin(ego.yaw)
        fwd = (size * 0.65 - np.arange(size) - 0.5) * m_per_px  # rows: ahead is up
        left = (size * 0.5 - np.arange(size) - 0.5) * m_per_px  # cols: left is left
        ex, ey = np.meshgrid(fwd, left, indexing="ij")
        wx, wy = ego.x + c * ex - s * ey, ego.y + s * ex + c * ey
        img = np.ascontiguousarray(PALETTE[self.world.raster.lookup(wx, wy)])

        def to_px(points: np.ndarray) -> np.ndarray:
            dx, dy = points[:, 0] - ego.x, points[:, 1] - ego.y
            lx, ly = c * dx + s * dy, -s * dx + c * dy
            return np.stack([size * 0.5 - ly / m_per_px, size * 0.65 - lx / m_per_px], 1).astype(
                np.int32
            )

        pts = self.route.points
        cv2.polylines(img, [to_px(pts).reshape(-1, 1, 2)], False, (60, 200, 90), 1, cv2.LINE_AA)

        def box(x, y, h, half, colour):
            cx, sx = math.cos(h), math.sin(h)
            corners = np.array(
                [(half[0], half[1]), (half[0], -half[1]), (-half[0], -half[1]), (-half[0], half[1])]
            )
            world_pts = np.stack(
                [
                    x + cx * corners[:, 0] - sx * corners[:, 1],
                    y + sx * corners[:, 0] + cx * corners[:, 1],
                ],
                1,
            )
            cv2.fillPoly(img, [to_px(world_pts)], colour, cv2.LINE_AA)

        tr = sim.traffic
        if len(tr.s):
            x, y, h = self.traffic_model.poses(tr)
            for i in np.flatnonzero(tr.active):
                box(x[i], y[i], h[i], (2.25, 0.95), tuple(int(v) for v in PALETTE[VEHICLE]))
        if len(sim.peds.u):
            x, y, h = crosswalk_positions(self.net, sim.peds)
            for i in np.flatnonzero(sim.peds.active):
                box(x[i], y[i], h[i], (0.4, 0.4), tuple(int(v) for v in PALETTE[PEDESTRIAN]))
        for ox, oy, oh in self._obstacles:
            box(ox, oy, oh, OBSTACLE_HALF[:2], tuple(int(v) for v in PALETTE[STATIC]))
        for light in self.net.lights:
            a, b = np.array(light.stop_line)
            colour = {GREEN: (40, 220, 60), YELLOW: (250, 200, 0), RED: (230, 30, 30)}[
                light.state(sim.t)
            ]
            cv2.line(img, *[tuple(p) for p in to_px(np.array([a, b]))], colour, 2)
        box(ego.x, ego.y, ego.yaw, (2.25, 0.95), (220, 40, 40))
        sensor, (ranges, ids) = self._last_sweep()
        pts = sensor.dirs[:, :2] * ranges[:, None]
        hit = ids >= 0
        world_pts = np.stack(
            [
                ego.x + c * pts[hit, 0] - s * pts[hit, 1],
                ego.y + s * pts[hit, 0] + c * pts[hit, 1],
            ],
            1,
        )
        radius = max(2, round(0.5 / m_per_px))  # a dot about a metre across
        dots = [(u, v) for u, v in to_px(world_pts).tolist() if 0 <= u < size and 0 <= v < size]
        for rim, colour in ((radius + 1, (20, 20, 20)), (radius, self.LIDAR_RETURN)):
            for centre in dots:  # every rim first, so no rim cuts into a neighbour's dot
                cv2.circle(img, centre, rim, colour, -1)
        return img

    def close(self) -> None:
        if getattr(self, "_window", None) is not None:
            import pygame

            pygame.display.quit()
            self._window = None
        if getattr(self, "world", None) is not None:
            self.world.close()
            self.world = None


def _crossed(x0: float, y0: float, x1: float, y1: float, light) -> bool:
    """Whether the move from ``(x0, y0)`` to ``(x1, y1)`` crosses the light's stop line in
    its direction of travel."""
    (ax, ay), (bx, by) = light.stop_line
    if (x1 - x0) * math.cos(light.heading) + (y1 - y0) * math.sin(light.heading) <= 0:
        return False
    hit = segment_intersection(
        np.array([x0, y0]), np.array([x1, y1]), np.array([ax, ay]), np.array([bx, by])
    )
    return hit is not None


def _stop_lines_on(route: Route, net: RoadNetwork) -> list[tuple[float, int]]:
    """``(route s, light id)`` of every stop line the route crosses, in order."""
    out = []
    for light in net.lights:
        a, b = (np.array(p) for p in light.stop_line)
        for i in range(len(route.points) - 1):
            hit = segment_intersection(route.points[i], route.points[i + 1], a, b)
            if hit is not None:
                out.append((float(route.s[i] + hit[0] * (route.s[i + 1] - route.s[i])), light.id))
                break
    return sorted(out)
