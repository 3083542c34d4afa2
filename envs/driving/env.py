"""The driving env: a car on a seeded road network with traffic, sensors and infractions.

One class, :class:`DrivingEnv`, covers every driving scenario; the registered ids differ
only in their config (see :mod:`.registration`). The pieces:

* :mod:`.config`: the settings (:class:`DrivingConfig` and its nested configs);
* :mod:`.scenarios`: what a reset places (network, route, obstacles, traffic, pedestrians);
* :mod:`.episode`: the episode's state, the car's move, route progress and the outcome;
* :mod:`.infractions`: collisions, red lights, stop signs and outside-lane driving, logged
  and counted;
* :mod:`.rewards`: the named reward terms;
* :mod:`.drawing`: the rendered frame and the sensor panels;
* :mod:`.roads`: lanes, lights, crosswalks and routes as numpy data;
* :mod:`.town` and :mod:`.clutter`: the generated town and its roadside boxes;
* :mod:`.traffic`: the ego's kinematic bicycle, IDM vehicles and pedestrians;
* :mod:`.junctions`: stop signs and right of way for the traffic at junctions;
* :mod:`.world`: the pybullet client with the bodies, contacts, rays and camera images;
* :mod:`.sensors`: the observation's parts;
* :mod:`.weather` and :mod:`.lighting`: weather and light of the camera and the lidar;
* :mod:`.control`: pure pursuit and the meta-action driver.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pilot.errors import UserError

from .config import CameraConfig, DrivingConfig, LidarConfig, RewardWeights, build_config
from .control import META_ACTIONS, META_SPEEDS, box_command, meta_targets, route_command
from .drawing import DrivingViews
from .episode import (
    Ahead,
    DrivingSnapshot,
    EpisodeState,
    StepStart,
    StopLine,
    drive,
    episode_info,
    judge_outcome,
    light_ahead,
    project_on_route,
    speed_limit,
    target_speed,
    update_blocked,
)
from .infractions import INFRACTIONS, check_infractions
from .pedestrians import step_pedestrians
from .rewards import REWARD_TERMS, reward_terms
from .roads import LanePoint, RoadNetwork
from .routes import Route
from .scenarios import TownCache, build_scene, check_options, sync_world
from .sensors import SensorFrame, make_sensor
from .speed_rules import check_speed_rules
from .traffic import TrafficModel
from .weather import Weather, draw_weather
from .world import PinholeCamera, World

__all__ = [
    "INFRACTIONS",
    "REWARD_TERMS",
    "CameraConfig",
    "DrivingConfig",
    "DrivingEnv",
    "DrivingSnapshot",
    "LidarConfig",
    "RewardWeights",
    "build_config",
]


class DrivingEnv(DrivingViews, gym.Env):
    """
    ## Description

    A car drives a route through a seeded, procedurally generated road network in a
    pybullet world: a curvy multi-lane loop, a multi-lane highway, a 4-way intersection
    with traffic lights or with a stop sign on every approach, or a town (:mod:`.town`: a grid of junctions with lights and stop
    signs, 1.5 km routes, buildings, trees, fences and parked cars along the streets, which
    the camera and the lidar see and the car can hit). Other vehicles follow their lanes with the Intelligent Driver
    Model, stop for red lights and pedestrians and now and then change lanes; pedestrians
    cross at crosswalks (where the approach has a light, only on a red long enough for
    the crossing); static obstacles may block lanes. Infractions are recorded the way
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
    the route, at most what the cruise speed covers in a step: speeding does not pay),
    ``speed`` (relative error to the target speed, which drops to 0 before a red light),
    ``speed_change`` (how much of that error the step closed), ``centring`` (offset from
    the lane centre), ``comfort`` (changes of acceleration and steering), ``collision``
    (-1 per new contact) and ``off_road`` (-1 per step off the road); weights in
    :class:`RewardWeights`.

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
    seconds other than at a red light or a stop sign not yet stopped at. Truncated by the
    time limit of the registered id.
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
    ``outside_lane_distance``, ``traffic_contacts`` (contacts between two traffic
    vehicles so far; the right of way keeps it at 0), ``speed``, ``time``, ``is_success``,
    ``outcome`` and ``weather`` (the conditions in force, see below).

    A stop sign is judged as the CARLA leaderboard does: the car must come to a stop
    (under 0.1 m/s) in the sign's stop zone (5 m before the line, or before a crosswalk
    in front of the line) before its centre crosses the line, else one ``stop_sign`` infraction (coefficient 0.80). The route's
    next stop line reads like a light: a sign is RED until the car has stopped in its
    zone, then GREEN, and the target speed brings the car to a stop with its front at the
    line (``follow_route()`` stops there and goes on).

    ``weather`` (a :class:`~.weather.WeatherConfig`, e.g. ``{"preset": "night"}`` or
    ``{"preset": "random", "choices": ["day", "fog"]}``) sets the light and the weather:
    the sun, dusk or night with vehicles' headlights, fog, rain. They change the
    ``camera`` image and the ``lidar*`` returns only (never depth, segmentation or the
    scene); a random preset is drawn per episode from the seed. The default plain day
    renders exactly as without weather.

    ``get_state()`` / ``set_state(snapshot)`` save and restore the whole episode (world,
    traffic, lights, infraction log, random generator) for planning by search.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 10}

    META_SPEEDS = META_SPEEDS

    def __init__(
        self, render_mode: str | None = None, config: DrivingConfig | None = None, **kwargs: Any
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.config = cfg = build_config(config, kwargs)
        reach = max(cfg.camera.far, cfg.lidar.max_range)  # the clutter the sensors can see
        self.world = World(cfg.vehicles, cfg.pedestrians, cfg.obstacles, gui=cfg.gui, reach=reach)
        self._towns = TownCache()  # a town scenario's towns, built once each
        self._window = None
        self._clock = None
        cam = cfg.camera
        self.camera_spec = PinholeCamera(
            cam.width, cam.height, cam.fov, cam.mount, cam.pitch, far=cam.far
        )
        self.lidar_spec = cfg.lidar  # the sensors take the config itself
        self.sensors: dict[str, Any] = {
            key: make_sensor(key, cfg, self.camera_spec) for key in cfg.sensors
        }
        self.observation_space = spaces.Dict({k: s.space() for k, s in self.sensors.items()})
        if cfg.meta_actions:
            self.action_space = spaces.Discrete(len(META_ACTIONS))
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.net: RoadNetwork | None = None
        self.route: Route | None = None
        self.traffic_model: TrafficModel | None = None
        self._sim: EpisodeState | None = None
        self._episode = 0
        self._obstacles = np.zeros((0, 3))
        self._stops: list[StopLine] = []  # the route's stop lines (lights, stop signs)
        self._frame_cache: dict[str, Any] = {}
        self._lane = None
        self.weather: Weather | None = None  # the episode's, drawn at reset

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.weather = draw_weather(self.config.weather, self.np_random)  # leaves it unmoved
        options = check_options(options)
        self._episode += 1
        scene = build_scene(self.config, self.np_random, options, self.world, self._towns)
        self.net, self.route, self.traffic_model = scene.net, scene.route, scene.traffic_model
        self._obstacles, self._stops, self._sim = scene.obstacles, scene.stops, scene.sim
        self.world.set_road(self.net, self.config.raster_resolution)
        self.world.set_clutter(scene.clutter)
        self._sync_world()
        ego = self._sim.ego
        self._lane = self.net.locate(ego.x, ego.y, ego.yaw)
        info = episode_info(self._sim, self.route, {})
        return self._observe(), {**info, "weather": self.weather.as_info()}

    def step(self, action):
        sim = self._sim
        if sim is None:
            raise RuntimeError("call reset() before step()")
        cfg, net, route = self.config, self.net, self.route
        command = self._command(action)
        start = StepStart.of(sim)
        step_len = drive(sim, cfg, command)
        lane = self._lane = net.locate(sim.ego.x, sim.ego.y, sim.ego.yaw)
        self._move_others(lane)
        events: list[dict[str, Any]] = []
        collisions = check_infractions(sim, self.world, net, lane, start, step_len, events)
        project_on_route(sim, route)
        light = self._light_ahead()
        update_blocked(sim, cfg, light)
        terminated = judge_outcome(sim, cfg, route, lane, collisions, events)
        limit = speed_limit(cfg, net, lane)
        check_speed_rules(sim, cfg, route, limit, step_len, events)
        target = target_speed(cfg, limit, *light)
        terms = reward_terms(cfg, sim, start, lane, target, limit, collisions)
        reward = float(sum(terms.values()))
        obs = self._observe(*light)
        if self.render_mode == "human":
            self.render()
        info = {**episode_info(sim, route, terms, events), "weather": self.weather.as_info()}
        return obs, reward, terminated, False, info

    def _move_others(self, lane: LanePoint) -> None:
        """Traffic and pedestrians take their step (vehicles see the car in its lane), and
        the bodies follow."""
        cfg, sim = self.config, self._sim
        ego_slot = (lane.lane, lane.s, sim.ego.v) if lane.in_lane else None
        model, rng = self.traffic_model, self.np_random
        body = None
        if sim.traffic.active.any():
            body = model.ego_body(sim.ego, lane.lane if lane.in_lane else -1)
        queue = model.rules.queue_ego(
            sim.sign_queue, ego_slot, self.route.next_lane(lane.lane), cfg.dt, sim.t
        )
        way = model.rules.ego_way(sim.sign_queue, ego_slot, cfg.dt)
        turn = model.step(sim.traffic, cfg.dt, sim.t, rng, ego_slot, sim.peds, body, queue, way)
        model.rules.ego_turn_used(sim.sign_queue, turn, sim.ego.v, cfg.dt, sim.t)
        poses, touching = model.poses_and_contacts(sim.traffic)  # none while the model is right
        sim.traffic_contacts += len(set(touching) - set(sim.traffic_touching))
        sim.traffic_touching = touching
        step_pedestrians(self.net, sim.peds, cfg.dt, self.np_random, sim.t)
        self._sync_world(poses)

    def follow_route(self, speed: float | None = None, offset: float = 0.0) -> np.ndarray:
        """The ``[steer, throttle]`` action of a pure-pursuit driver on the route's centre
        line (shifted ``offset`` metres left) at ``speed``, by default the env's target
        speed (which drops to 0 before a red light): the meta actions' driver, and a
        scripted lane follower for tests and benchmarks."""
        if self._sim is None:
            raise RuntimeError("call reset() before follow_route()")
        cfg, sim = self.config, self._sim
        if speed is None:
            limit = speed_limit(cfg, self.net, self._lane)
            speed = target_speed(cfg, limit, *self._light_ahead())
        return route_command(sim.ego, self.route, sim.route_s, speed, cfg, offset)

    def _command(self, action) -> tuple[float, float] | np.ndarray:
        """``[steer, throttle]`` in [-1, 1] from an action of the action space; a meta
        action first moves the driver's lane offset and speed level."""
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
        return box_command(action)

    def _light_ahead(self) -> Ahead:
        """State of and distance to the next stop line on the route (-1, inf: none), and
        whether it is a stop sign's."""
        return light_ahead(self._sim, self._stops, self.net)

    def _sync_world(self, poses=None) -> None:
        """Put every body where the Python state says it is (``poses``: the traffic's, when
        the caller has them)."""
        sync_world(self.world, self._sim, self.traffic_model, self.net, self._obstacles, poses)

    # --- observations ---------------------------------------------------------------------------
    def _frame(
        self,
        light_state: int | None = None,
        light_dist: float | None = None,
        stop_sign: bool = False,
    ) -> SensorFrame:
        """What the sensors read now; the light ahead is passed in when the caller has it."""
        sim, lane = self._sim, self._lane
        if light_state is None:
            light_state, light_dist, stop_sign = self._light_ahead()
        limit = speed_limit(self.config, self.net, lane)
        return SensorFrame(
            world=self.world,
            net=self.net,
            route=self.route,
            ego=sim.ego,
            route_s=sim.route_s,
            route_lateral=sim.route_lateral,
            route_heading=sim.route_heading,
            lane=lane,
            speed_limit=limit,
            target_speed=target_speed(self.config, limit, light_state, light_dist, stop_sign),
            light_state=light_state,
            light_distance=light_dist,
            last_command=sim.last_command,
            rng=self.np_random,
            weather=self.weather,
            step=sim.steps,
        )

    def _observe(
        self,
        light_state: int | None = None,
        light_dist: float | None = None,
        stop_sign: bool = False,
    ):
        frame = self._frame(light_state, light_dist, stop_sign)
        obs = {key: sensor.observe(frame) for key, sensor in self.sensors.items()}
        self._frame_cache = frame.cache
        return obs

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

    def close(self) -> None:
        self._close_window()
        if getattr(self, "world", None) is not None:
            self.world.close()
            self.world = None
