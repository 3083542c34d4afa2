"""One shard of the perception dataset: one seeded episode of one driving scenario, driven
by the scripted :class:`~.expert.Expert`, recorded every few steps.

Everything random in a shard comes from its ``(scenario, seed)``: the env is reset with
``seed`` (so the road, route, traffic and lights are those of ``env.reset(seed=seed)``
with the episode's settings), and the episode's variety (traffic density, light phase,
the expert's speed, lane changes and sway) and the lidar's noise come from generators
seeded with ``(seed, scenario index)``. The same pair therefore gives the same arrays,
byte for byte, in any process.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from pilot.config import field, to_dict
from pilot.envs.driving.env import CameraConfig, LidarConfig
from pilot.envs.driving.sensors import Lidar
from pilot.envs.driving.weather import WeatherConfig, render_camera
from pilot.envs.driving.world import PinholeCamera
from pilot.errors import UserError, close_matches

from .expert import Expert, ExpertStyle
from .grid import lidar_histogram
from .labels import LabelConfig, frame_labels, scene
from .sensors import (
    camera_extrinsics,
    camera_intrinsics,
    lidar_extrinsics,
    lidar_points,
    sweep,
)

#: Scenario name -> registered id; the shard names and ``--scenarios`` use the names.
SCENARIOS = {
    "LaneKeep": "pilot/Driving-LaneKeep-v0",
    "Highway": "pilot/Driving-Highway-v0",
    "Intersection": "pilot/Driving-Intersection-v0",
    "Obstacles": "pilot/Driving-Obstacles-v0",
    "StopSign": "pilot/Driving-StopSign-v0",
    "Town": "pilot/Driving-Town-v0",  # last: the others' shards keep their seeds
}


def check_scenarios(names: list[str]) -> None:
    """A one-line :class:`UserError` for the first name that is not a scenario of the
    dataset, with the close one and the names there are."""
    for name in names:
        if name not in SCENARIOS:
            hint = close_matches(name, SCENARIOS)
            raise UserError(
                f"unknown scenario '{name}'{hint}; the scenarios: {','.join(SCENARIOS)}"
            )


@dataclasses.dataclass(frozen=True)
class CollectConfig:
    """What each shard records. The camera is small (128 × 96, 4:3): a car 28 m ahead is
    still about 6 pixels wide, a frame is 37 KB before compression and a CNN over it
    trains on a CPU. The lidar is a 16-channel roof unit, so objects get several rings
    and the ground gets returns out to ~25 m."""

    frames: int = field(32, "frames per shard (fewer when the episode ends first)")
    every: int = field(5, "control steps between recorded frames (0.5 s at dt = 0.1 s)")
    camera: CameraConfig = field(CameraConfig(width=128, height=96), "the forward camera")
    lidar: LidarConfig = field(
        LidarConfig(
            rays=360,
            channels=16,
            max_range=50.0,
            v_fov=(-20.0, 2.5),
            mount_height=1.9,
            noise_std=0.02,
        ),
        "the lidar (its bev_size/bev_extent are unused: the histogram uses the label grid)",
    )
    labels: LabelConfig = field(LabelConfig(), "label grid, waypoints and light range")
    split_height: float = field(0.2, "lidar histogram: height (m) between its two bands")
    weather: WeatherConfig = field(
        WeatherConfig(), "weather and light of the camera and lidar ('random' draws per episode)"
    )

    def __post_init__(self) -> None:
        if self.frames < 1 or self.every < 1:
            raise ValueError("need frames >= 1 and every >= 1")

    def as_dict(self) -> dict[str, Any]:
        return to_dict(self)


def episode_setup(
    scenario: str, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, Any], ExpertStyle]:
    """``(env keywords, reset options, expert style)`` of one episode, drawn from ``rng``:
    traffic density within a range per scenario, the lights' phase, and the expert's
    speed, lane changes and sway, and at lights how long it stands on at green (drawn
    after the rest, so that scenarios without lights draw what they drew before)."""
    d = rng.random(8)
    kwargs: dict[str, Any] = {}
    options: dict[str, Any] = {}
    lane_changes = 0.08
    pass_stopped = True
    if scenario == "LaneKeep":
        speed = 6.0 + 8.0 * d[0]
    elif scenario == "Highway":
        kwargs["vehicles"] = 4 + int(17 * d[1])  # 4..20
        speed = 16.0 + 12.0 * d[0]
        lane_changes = 0.12
    elif scenario == "Intersection":
        kwargs["vehicles"] = int(9 * d[1])  # 0..8
        kwargs["pedestrians"] = int(7 * d[2])  # 0..6
        options["start_time"] = 36.0 * d[3]  # anywhere in the lights' 36 s cycle
        speed = 6.0 + 5.0 * d[0]
        lane_changes = 0.0  # one lane each way
    elif scenario == "StopSign":  # the expert stops at each sign (all-way: every approach)
        kwargs["vehicles"] = int(9 * d[1])  # 0..8
        kwargs["pedestrians"] = int(7 * d[2])  # 0..6
        speed = 6.0 + 5.0 * d[0]
        lane_changes = 0.0
    elif scenario == "Obstacles":
        kwargs["obstacles"] = 2 + int(4 * d[1])  # 2..5
        kwargs["vehicles"] = int(5 * d[2])  # 0..4
        kwargs["pedestrians"] = int(5 * d[3])  # 0..4
        speed = 6.0 + 6.0 * d[0]
    elif scenario == "Town":  # lights, stop signs, streets and arterials, clutter, parked cars
        kwargs["vehicles"] = 10 + int(31 * d[1])  # 10..40
        kwargs["pedestrians"] = 4 + int(13 * d[2])  # 4..16
        options["start_time"] = 36.0 * d[3]
        speed = 7.0 + 7.0 * d[0]  # under the town's 14 m/s limit and its bends
        lane_changes = 0.0
        pass_stopped = False  # what stands in a town lane is queued at a light or a sign
    else:
        raise KeyError(scenario)
    style = ExpertStyle(
        speed=speed,
        lane_change_rate=lane_changes,
        sway=0.5 * d[4],
        sway_period=4.0 + 8.0 * d[5],
        sway_phase=2 * math.pi * d[6],
        lateral_accel=2.0 + 1.0 * d[7],
        pass_stopped=pass_stopped,
    )
    if "start_time" in options:  # lights: a driver's 0.5-3 s to see green and go
        style.green_reaction = 0.5 + 2.5 * float(rng.random())
    return kwargs, options, style


def record_episode(
    scenario: str,
    seed: int,
    cfg: CollectConfig,
    on_frame: Callable[[], None] | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The arrays of one shard (see :mod:`.shards` for the keys) and how the episode
    ended (``"frames"`` when all frames were recorded, else the env's outcome)."""
    from pilot.envs import make_env

    index = list(SCENARIOS).index(scenario)
    kwargs, options, style = episode_setup(scenario, np.random.default_rng([seed, index, 0]))
    expert = Expert(style, np.random.default_rng([seed, index, 1]))
    noise = np.random.default_rng([seed, index, 2])
    env = make_env(
        SCENARIOS[scenario],
        sensors=("state",),
        camera=dataclasses.asdict(cfg.camera),
        lidar=dataclasses.asdict(cfg.lidar),
        weather=dataclasses.asdict(cfg.weather),
        **kwargs,
    )
    frames: list[dict[str, Any]] = []
    outcome = "frames"
    try:
        env.reset(seed=seed, options=options)
        u = env.unwrapped
        lidar = Lidar(u.lidar_spec)
        fixed = {
            "camera_K": camera_intrinsics(u.camera_spec).astype(np.float32),
            "camera_T": camera_extrinsics(u.camera_spec).astype(np.float32),
            "lidar_T": lidar_extrinsics(u.lidar_spec).astype(np.float32),
        }
        step = 0
        while True:
            now = scene(env)
            action = expert.act(env, now)
            if step % cfg.every == 0:
                frames.append(_frame(env, now, lidar, noise, expert.offset, cfg, step, action))
                frames[-1].update(fixed)
                if on_frame is not None:
                    on_frame()
                if len(frames) == cfg.frames:
                    break
            _, _, terminated, truncated, info = env.step(action)
            step += 1
            if terminated or truncated:
                outcome = info.get("outcome") or "time_limit"
                break
    finally:
        env.close()
    return stack_frames(frames), outcome


def sensor_arrays(
    world,
    pose: tuple[float, float, float],
    cfg: CollectConfig,
    camera: PinholeCamera | None,
    lidar: Lidar | None,
    noise: np.random.Generator | None,
    weather=None,
    step: int = 0,
) -> dict[str, np.ndarray]:
    """A frame's sensor arrays as a shard stores them: ``camera`` (the image of the
    ``camera`` spec from ``pose``), ``lidar`` (the sweep's raw ranges, noise drawn from
    ``noise``) and ``lidar_bev`` (the histogram of its returns on the label grid), under
    the episode's ``weather`` at control step ``step`` (None: clear); a sensor given as
    None is skipped. Collection and the driving stack's learned perception both build
    their frames here, so a network reads live what it trained on."""
    out: dict[str, np.ndarray] = {}
    if camera is not None:
        out["camera"] = render_camera(world, camera, pose, weather, step)[0]
    if lidar is not None:
        ranges, ids = sweep(lidar, world, pose, noise, weather, step)
        returns = lidar_points(lidar, ranges)[ids != -1]
        out["lidar"] = ranges.astype(np.float32)
        out["lidar_bev"] = lidar_histogram(returns, cfg.labels.grid, cfg.split_height)
    return out


def _frame(env, now, lidar, noise, offset, cfg: CollectConfig, step: int, action) -> dict:
    u = env.unwrapped
    labels = frame_labels(env, cfg.labels, offset=offset, now=now)
    return {
        **sensor_arrays(
            u.world, now.pose, cfg, u.camera_spec, lidar, noise, u.weather, u.get_state().sim.steps
        ),
        "bev": labels.grid,
        "boxes": labels.boxes,
        "box_class": labels.box_class,
        "light": np.int8(labels.light),
        "light_distance": np.float32(labels.light_distance),
        "light_heads": labels.light_heads,
        "waypoints": labels.waypoints,
        "speed": np.float32(now.speed),
        "action": np.asarray(action, dtype=np.float32),
        "pose": np.array(now.pose, dtype=np.float64),
        "time": np.float32(now.t),
        "step": np.int32(step),
    }


def stack_frames(frames: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-frame dicts → shard arrays: fixed-size fields stacked on a first frame axis;
    the variable-length object list concatenated, frame ``i``'s boxes at rows
    ``box_start[i]:box_start[i + 1]``."""
    out = {}
    for key in frames[0]:
        if key in ("boxes", "box_class"):
            out[key] = np.concatenate([f[key] for f in frames])
        else:
            out[key] = np.stack([np.asarray(f[key]) for f in frames])
    counts = [len(f["box_class"]) for f in frames]
    out["box_start"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return out
