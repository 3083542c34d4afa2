"""Sensors of the driving envs: small classes with ``space()`` and ``observe(frame)``.

The env's observation is a ``spaces.Dict`` of the sensors named in its config:

* ``state``: :class:`EgoState`, speed, steering, heading error, offsets, route progress,
  the light ahead and the next route waypoints in the ego frame (float32 in [-1, 1]);
* ``camera`` / ``depth`` / ``segmentation``: :class:`Camera`, :class:`Depth` and
  :class:`Segmentation`, three outputs of one forward camera render (RGB uint8 HxWx3, so
  Stable-Baselines3 treats it as an image; depth over the far plane, float32 HxW; semantic
  class per pixel, uint8 HxW, classes in :data:`~pilot.envs.driving.world.CLASS_NAMES`);
* ``lidar`` / ``lidar_points`` / ``lidar_bev``: :class:`Lidar`, :class:`LidarPoints` and
  :class:`LidarBEV`, three outputs of one sweep against the world's boxes (ranges over the maximum
  range; hit points in the ego frame over the range; a bird's-eye occupancy and height
  grid).

Sensors that share a render or a sweep find it in ``frame.cache``, so asking for RGB,
depth and segmentation costs one camera image.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

from pilot.config import field

from .roads import RED, YELLOW, LanePoint, RoadNetwork
from .routes import Route
from .traffic import EgoCar
from .weather import CLUTTER, Weather, weather_rgb, weather_sweep
from .world import CLASS_NAMES, PinholeCamera, World

if TYPE_CHECKING:
    from .config import DrivingConfig


@dataclasses.dataclass
class SensorFrame:
    """Everything a sensor may read at one instant."""

    world: World
    net: RoadNetwork
    route: Route
    ego: EgoCar
    route_s: float
    route_lateral: float
    route_heading: float
    lane: LanePoint
    speed_limit: float
    target_speed: float
    light_state: int  # the next light on the route: -1 none, else GREEN / YELLOW / RED
    light_distance: float  # metres to its stop line (inf when none)
    last_command: tuple[float, float]  # the previous step's [steer, throttle]
    rng: np.random.Generator
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)
    weather: Weather | None = None  # the episode's weather (None: none)
    step: int = 0  # the episode's step: the weather's noise is drawn per step


# ------------------------------------------------------------------------------- ego state
_LIGHT_LEVEL = {YELLOW: 0.5, RED: 1.0}


class EgoState:
    """What the car knows about itself and its route, 16 + 2k numbers in [-1, 1]:

    ``[speed, steering, acceleration, sin/cos heading error, route offset, lane offset,
    progress, speed limit, target speed, in lane, on road, light ahead, light distance,
    previous steer and throttle commands, k waypoints (x, y)]``. Speeds are over
    ``max_speed``; the heading error and the route offset are against the route's centre
    line (offset over two lane widths), the lane offset against the nearest lane (over
    half its width); the light is 1 red, 0.5 yellow, 0 green or none, its distance over
    50 m; waypoints are every ``spacing`` metres ahead on the route, in the ego frame
    (x forward, y left) over ``k × spacing``.
    """

    def __init__(
        self,
        max_speed: float,
        max_steer: float,
        max_accel: float,
        lane_width: float,
        waypoints: int,
        spacing: float,
    ) -> None:
        self.max_speed, self.max_steer, self.max_accel = max_speed, max_steer, max_accel
        self.lane_width = lane_width
        self.waypoints, self.spacing = int(waypoints), float(spacing)
        self._offsets = self.spacing * np.arange(1, self.waypoints + 1)
        self._scale = self.spacing * self.waypoints
        self._vec = np.empty(16 + 2 * self.waypoints)  # work buffer, copied out as float32

    def space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (16 + 2 * self.waypoints,), np.float32)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        e, route, lane = frame.ego, frame.route, frame.lane
        s = frame.route_s
        err = e.yaw - frame.route_heading
        out = [
            e.v / self.max_speed,
            e.steer / self.max_steer,
            e.accel / self.max_accel,
            math.sin(err),
            math.cos(err),
            frame.route_lateral / (2 * self.lane_width),
            lane.lateral / (0.5 * self.lane_width),
            s / route.length,
            frame.speed_limit / self.max_speed,
            frame.target_speed / self.max_speed,
            float(lane.in_lane),
            float(lane.on_road),
            _LIGHT_LEVEL.get(frame.light_state, 0.0),
            min(frame.light_distance / 50.0, 1.0),
            *frame.last_command,
        ]
        # waypoints in the ego frame, into a reused buffer (this runs every step)
        vec = self._vec
        vec[:16] = out
        c, sn = math.cos(e.yaw), math.sin(e.yaw)
        route.ahead_in_frame(s + self._offsets, e.x, e.y, c, sn, self._scale, vec[16:])
        np.maximum(vec, -1.0, out=vec)
        return np.minimum(vec, 1.0, out=vec).astype(np.float32)


# ------------------------------------------------------------------------------- camera
class Camera:
    """Forward RGB camera, uint8 ``height × width × 3``, under the frame's weather (the
    sun on the bodies, then :mod:`.weather`'s post-effects; depth and segmentation are
    the same in any weather)."""

    key = "camera"

    def __init__(self, cam: PinholeCamera) -> None:
        self.cam = cam

    def render(self, frame: SensorFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The render shared by the camera kinds: RGB in the weather's sunlight (no
        post-effects yet), depth, classes."""
        if "camera" not in frame.cache:
            e, w = frame.ego, frame.weather
            light = w.light_args() if w is not None else {}
            frame.cache["camera"] = frame.world.camera(self.cam, e.x, e.y, e.yaw, **light)
        return frame.cache["camera"]

    def space(self) -> spaces.Box:
        return spaces.Box(0, 255, (self.cam.height, self.cam.width, 3), np.uint8)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        if "camera_rgb" not in frame.cache:
            e = frame.ego
            pose = (e.x, e.y, e.yaw)
            rgb, depth, cls = self.render(frame)
            frame.cache["camera_rgb"] = weather_rgb(
                frame.world, self.cam, pose, rgb, depth, cls, frame.weather, frame.step
            )
        return frame.cache["camera_rgb"]


class Depth(Camera):
    """Depth along the optical axis from the camera's view, over the far plane (float32
    ``height × width`` in [0, 1])."""

    key = "depth"

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.cam.height, self.cam.width), np.float32)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        return np.clip(self.render(frame)[1] / self.cam.far, 0.0, 1.0).astype(np.float32)


class Segmentation(Camera):
    """Semantic class per pixel from the camera's view (uint8 ``height × width``)."""

    key = "segmentation"

    def space(self) -> spaces.Box:
        return spaces.Box(0, len(CLASS_NAMES) - 1, (self.cam.height, self.cam.width), np.uint8)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        return self.render(frame)[2]


# ------------------------------------------------------------------------------- lidar
@dataclasses.dataclass(frozen=True)
class LidarConfig:
    """The spinning lidar (``lidar``, ``lidar_points`` and ``lidar_bev`` sensors)."""

    rays: int = field(360, "rays per revolution (per channel)")
    channels: int = field(1, "vertical channels, spread evenly over v_fov")
    max_range: float = field(50.0, "maximum range (metres)")
    h_fov: float = field(360.0, "horizontal field of view (degrees), centred ahead")
    v_fov: tuple[float, float] = field(
        (0.0, 0.0), "lowest and highest channel elevation (degrees, negative = down)"
    )
    mount_height: float = field(1.0, "height of the rays' origin above the ground (metres)")
    noise_std: float = field(0.0, "Gaussian range noise (metres) on every return")
    bev_size: int = field(64, "lidar_bev: cells per side")
    bev_extent: float = field(40.0, "lidar_bev: metres per side, centred on the car")

    def __post_init__(self) -> None:
        if self.rays < 1 or self.channels < 1 or self.max_range <= 0:
            raise ValueError("need rays >= 1, channels >= 1 and max_range > 0")
        if not 0 < self.h_fov <= 360 or self.v_fov[0] > self.v_fov[1]:
            raise ValueError("need 0 < h_fov <= 360 and v_fov low <= high")
        if self.mount_height <= 0 or self.noise_std < 0:
            raise ValueError("need mount_height > 0 and noise_std >= 0")


class Lidar:
    """Ranges of a ``channels × rays`` sweep against the world's boxes
    (:meth:`.world.World.sweep`), over ``max_range`` (float32, 1 = nothing within range),
    channel-major.

    Rays start at the mount, ``mount_height`` above the ground over the ego's centre; the
    ego itself is not among the boxes. Rays that pass through every body stop at the flat
    ground. ``noise_std`` adds Gaussian range noise (metres) from the
    env's generator to every return within range. Fog and rain then drop, perturb and
    add returns (:func:`.weather.weather_sweep`; spurious ones have id ``CLUTTER``).
    """

    key = "lidar"

    def __init__(self, spec: LidarConfig) -> None:
        self.spec = spec
        if spec.h_fov >= 360.0 - 1e-9:
            az = 2 * np.pi * np.arange(spec.rays) / spec.rays
        elif spec.rays == 1:
            az = np.zeros(1)
        else:
            half = math.radians(spec.h_fov) / 2
            az = np.linspace(-half, half, spec.rays)
        el = np.radians(np.linspace(spec.v_fov[0], spec.v_fov[1], spec.channels))
        el_g, az_g = np.meshgrid(el, az, indexing="ij")
        self.dirs = np.stack(
            [np.cos(el_g) * np.cos(az_g), np.cos(el_g) * np.sin(az_g), np.sin(el_g)], axis=-1
        ).reshape(-1, 3)
        #: the rays' reach in the car's frame (x, y) and their end points' heights
        self._rays = (
            np.ascontiguousarray(spec.max_range * self.dirs[:, 0]),
            np.ascontiguousarray(spec.max_range * self.dirs[:, 1]),
            spec.mount_height + spec.max_range * self.dirs[:, 2],
        )
        dz = self.dirs[:, 2]
        with np.errstate(divide="ignore"):
            self.ground_frac = np.where(
                dz < -1e-9, spec.mount_height / (-dz * spec.max_range), np.inf
            )

    @property
    def n(self) -> int:
        return len(self.dirs)

    def sweep(self, frame: SensorFrame) -> tuple[np.ndarray, np.ndarray]:
        """Ranges in metres and hit body ids (-1 none, -2 ground), shared through the cache."""
        if "lidar" in frame.cache:
            return frame.cache["lidar"]
        e, spec = frame.ego, self.spec
        r = spec.max_range
        # rays that reach the ground plane before any body stop there
        frac, ids = frame.world.sweep(e.x, e.y, (math.cos(e.yaw), math.sin(e.yaw)), self._rays,
                                      spec.mount_height, self.ground_frac)  # fmt: skip
        ranges = frac * r
        if spec.noise_std > 0:
            noise = frame.rng.normal(0.0, spec.noise_std, len(ranges))
            ranges = np.where(frac < 1.0, np.clip(ranges + noise, 0.0, r), r)
        weather = getattr(frame, "weather", None)  # callers may pass a bare namespace
        if weather is not None:
            ranges, ids = weather_sweep(ranges, ids, r, weather, frame.step)
        frame.cache["lidar"] = (ranges, ids)
        return ranges, ids

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.n,), np.float32)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        return (self.sweep(frame)[0] / self.spec.max_range).astype(np.float32)

    def points(self, frame: SensorFrame) -> np.ndarray:
        """Hit points in the ego frame (x forward, y left, z up from the ground), metres;
        rays without a return give the point at maximum range."""
        ranges = self.sweep(frame)[0]
        pts = self.dirs * ranges[:, None]
        pts[:, 2] += self.spec.mount_height
        return pts


class LidarPoints(Lidar):
    """The sweep as a point cloud in the ego frame over ``max_range`` (float32 ``n × 3``)."""

    key = "lidar_points"

    def space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.n, 3), np.float32)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        return np.clip(self.points(frame) / self.spec.max_range, -1.0, 1.0).astype(np.float32)


class LidarBEV(Lidar):
    """A bird's-eye grid of the returns (float32 ``2 × size × size``), ego at the centre,
    x forward = up: channel 0 occupancy (a return above 0.2 m in the cell), channel 1 the
    highest return over 3 m. The grid spans ``bev_extent`` metres on a side."""

    key = "lidar_bev"

    def space(self) -> spaces.Box:
        n = self.spec.bev_size
        return spaces.Box(0.0, 1.0, (2, n, n), np.float32)

    def observe(self, frame: SensorFrame) -> np.ndarray:
        n, ext = self.spec.bev_size, self.spec.bev_extent
        ranges, ids = self.sweep(frame)
        pts = self.points(frame)
        hit = ((ids >= 0) | (ids == CLUTTER)) & (pts[:, 2] > 0.2)
        pts = pts[hit]
        row = ((ext / 2 - pts[:, 0]) / ext * n).astype(np.int64)
        col = ((ext / 2 - pts[:, 1]) / ext * n).astype(np.int64)
        ok = (row >= 0) & (row < n) & (col >= 0) & (col < n)
        grid = np.zeros((2, n, n), dtype=np.float32)
        grid[0, row[ok], col[ok]] = 1.0
        np.maximum.at(grid[1], (row[ok], col[ok]), np.clip(pts[ok, 2] / 3.0, 0.0, 1.0))
        return grid


SENSOR_KEYS = (
    "state",
    "camera",
    "depth",
    "segmentation",
    "lidar",
    "lidar_points",
    "lidar_bev",
)


def make_sensor(key: str, cfg: DrivingConfig, camera: PinholeCamera) -> Any:
    """The sensor behind observation key ``key``: the camera kinds share ``camera``, the
    lidar kinds take ``cfg.lidar`` itself."""
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
        return cameras[key](camera)
    lidars = {"lidar": Lidar, "lidar_points": LidarPoints, "lidar_bev": LidarBEV}
    return lidars[key](cfg.lidar)
