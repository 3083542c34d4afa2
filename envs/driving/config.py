"""The driving env's settings: frozen dataclasses with a docstring per field.

:class:`DrivingConfig` is what ``gym.make(id, **kwargs)`` builds through
:func:`build_config`; the reward weights live beside the terms they weigh
(:mod:`.rewards`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pilot.config import field, from_dict
from pilot.errors import UserError, close_matches

from .rewards import RewardWeights
from .sensors import SENSOR_KEYS, LidarConfig
from .weather import WeatherConfig

__all__ = [
    "CameraConfig",
    "DrivingConfig",
    "LidarConfig",
    "RewardWeights",
    "WeatherConfig",
    "build_config",
]


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

    scenario: Literal["loop", "highway", "intersection", "town"] = field(
        "loop", "road network generated per episode"
    )
    junction_control: Literal["lights", "stop"] = field(
        "lights", "intersection: a traffic light or a stop sign on every approach"
    )
    sensors: tuple[str, ...] = field(
        ("state", "lidar"), f"observation keys, any of {', '.join(SENSOR_KEYS)}"
    )
    camera: CameraConfig = field(CameraConfig(), "forward camera settings")
    lidar: LidarConfig = field(LidarConfig(), "lidar settings")
    weather: WeatherConfig = field(
        WeatherConfig(), "weather and light of the camera and lidar (a preset, or 'random')"
    )
    meta_actions: bool = field(
        False, "Discrete(5) highway-env style meta actions instead of Box(2) controls"
    )
    lanes: int = field(2, "loop and highway: lanes in the driving direction")
    lane_width: float = field(3.5, "lane width")
    speed_limit: float = field(
        15.0, "speed limit on the generated roads (a town's arterials; its streets: 3/4)"
    )
    route_length: float = field(300.0, "route length (shorter where the network ends)")
    vehicles: int = field(0, "other vehicles")
    pedestrians: int = field(0, "pedestrians (they walk on crosswalks)")
    obstacles: int = field(0, "static obstacles placed in lanes along the route")
    crosswalks: int = field(0, "loop: mid-block crosswalks (the intersection has four)")
    town_maps: int = field(
        16, "town: towns the episodes draw from, each built once and kept; 0: a new one each"
    )
    town_seed: int = field(0, "town: seed of town number 0 (other seeds, other towns)")
    lane_change_rate: float = field(0.05, "lane changes per second a vehicle attempts")
    dt: float = field(0.1, "seconds per control step")
    physics_substeps: int = field(4, "integration steps of the car model per control step")
    target_speed: float = field(10.0, "desired speed (capped by the lane's speed limit)")
    initial_speed: float = field(5.0, "the car's speed at the start")
    max_speed: float = field(40.0, "top speed; speeds in observations are divided by it")
    max_accel: float = field(3.0, "acceleration at throttle +1")
    max_brake: float = field(8.0, "deceleration at throttle -1")
    mass: float = field(1500.0, "the car's mass (kg)")
    drag_area: float = field(0.7, "drag coefficient × frontal area, C_d·A (m²)")
    rolling_resistance: float = field(0.015, "rolling resistance coefficient c_rr")
    engine_power: float = field(100e3, "engine power (W); above max_accel's speed it limits")
    engine_braking: float = field(0.08, "engine braking per m/s at closed throttle (1/s)")
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
    speed_tolerance: float = field(0.5, "m/s over the lane's limit before it is speeding")
    min_speed_checkpoints: int = field(
        4, "route stretches over which the minimum-speed test compares car and traffic"
    )
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
        for name in ("vehicles", "pedestrians", "obstacles", "crosswalks", "town_maps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        positive = ("dt", "target_speed", "max_speed", "max_accel", "max_brake", "max_steer")
        positive += ("mass", "drag_area", "engine_power")
        for name in positive + ("steer_rate", "wheelbase", "route_length", "blocked_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.speed_tolerance < 0 or self.min_speed_checkpoints < 1:
            raise ValueError("need speed_tolerance >= 0 and min_speed_checkpoints >= 1")
        if self.rolling_resistance < 0 or self.engine_braking < 0:
            raise ValueError("rolling_resistance and engine_braking must not be negative")
        if self.physics_substeps < 1:
            raise ValueError("physics_substeps must be at least 1")


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
