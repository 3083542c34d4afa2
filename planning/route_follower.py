"""The floor of the driving leaderboard: follow the route's lane centre at a fixed speed
with the pure pursuit tracker, ignoring lights, cars and pedestrians
(``pilot eval route --env pilot/Driving-LaneKeep-v0``). What the modular stack scores above
it is what perceiving and deciding are worth."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from pilot.envs.driving.dynamics import pedal_for
from pilot.errors import UserError
from pilot.planning.trackers import PurePursuit, Reference


class RouteFollower:
    """Pure pursuit on the route's centre line at ``speed`` m/s; nothing to train."""

    name: ClassVar[str] = "route"
    summary: ClassVar[str] = "route follower (the floor): lane centre at a fixed speed"
    uses_simulator: ClassVar[bool] = True

    def __init__(self, env_id: str, config: dict[str, Any] | None = None, **_: Any) -> None:
        self.env_id = env_id
        self.config = self.configure(env_id, config or {})
        self.step = 0

    @staticmethod
    def configure(env_id: str, overrides: dict[str, Any]) -> dict[str, Any]:
        """``speed`` (None: the scenario's target speed) is the only setting; applying it
        twice (the CLI checks it, the agent builds from it) gives the same config."""
        if not env_id.startswith("pilot/Driving-") or "Meta" in env_id:
            raise UserError(
                f"the route follower drives the Box(2) driving envs, not {env_id}; "
                "see `pilot list` for pilot/Driving-* ids"
            )
        unknown = set(overrides) - {"speed"}
        if unknown:
            raise UserError(
                f"unknown config key '{sorted(unknown)[0]}' (the route follower has: speed)"
            )
        if overrides.get("speed") is None:
            return {"speed": None}
        speed = float(overrides["speed"])
        if not speed > 0:
            raise UserError(f"speed must be positive, got {overrides['speed']}")
        return {"speed": speed}

    def act(self, obs: Any, deterministic: bool = True, envs: list | None = None) -> np.ndarray:
        """``[steer, throttle]`` per env in ``envs`` (the batch's envs, in order)."""
        if envs is None:
            raise UserError("the route follower reads the live env: pass envs=[...]")
        self.step += len(envs)
        return np.stack([self._action(env.unwrapped) for env in envs])

    def _action(self, u) -> np.ndarray:
        car, sim = u.config, u.get_state().sim
        ego = sim.ego
        target = self.config["speed"] or min(car.target_speed, car.speed_limit)
        # the route's next 40 m: the tracker steers the rear axle along the centre line
        s = np.linspace(sim.route_s, min(sim.route_s + 40.0, u.route.length), 41)
        points = np.stack(u.route.xy_at(s), axis=-1)
        tracker = PurePursuit(4.0, speed=max(ego.v, 1.0), lookahead_gain=0.4, max_curvature=1.0)
        half = 0.5 * car.wheelbase
        rear = np.array(
            [ego.x - half * math.cos(ego.yaw), ego.y - half * math.sin(ego.yaw), ego.yaw]
        )
        kappa = tracker.control(rear, Reference.from_points(points)).curvature
        steer = math.atan(car.wheelbase * kappa) / car.max_steer
        accel = 1.5 * (target - ego.v)
        throttle = pedal_for(car, accel, ego.v)
        return np.array([np.clip(steer, -1, 1), np.clip(throttle, -1, 1)], dtype=np.float32)

    def action_distribution(self, obs: Any) -> None:
        return None
