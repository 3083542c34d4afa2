"""The modular stack's config: a frozen dataclass, with presets per scenario in
``presets.yaml`` beside this file (``default`` ← the env id's entry ← ``--set``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

from pilot.config import field, from_dict, load_yaml, merge
from pilot.errors import UserError

PRESETS = Path(__file__).with_name("presets.yaml")


@dataclasses.dataclass(frozen=True)
class ModularConfig:
    """Settings of the perceive → predict → decide → plan → track stack (metres, seconds)."""

    perception: str = field(
        "privileged",
        "'privileged' (ground-truth objects and lights) or a perception run directory "
        "(camera, lidar or fusion: objects and the light's colour from the network)",
    )
    perception_smoothing: float = field(
        0.6, "learned perception: weight of the previous velocity estimate (0: none)"
    )
    perception_threshold: float = field(
        0.0,
        "learned perception: keep detections at or above this centre probability (0: the "
        "run's own decoding threshold; `pilot perception eval` prints the best-F1 one)",
    )
    perception_hold: float = field(
        0.5,
        "learned perception: seconds a box the network stops finding is kept, moved on at "
        "its velocity (0: dropped at once)",
    )
    perception_exclusive: bool = field(
        True,
        "learned perception: drop a detection whose centre lies in a better one's "
        "footprint or whose footprint holds its centre (one object read as several)",
    )
    perception_rear: float = field(
        40.0,
        "learned perception from a network that reads the lidar: metres behind the car "
        "watched for vehicles in the raw lidar returns, where the grid does not reach "
        "(0: not watched)",
    )
    tracker: Literal["pure_pursuit", "stanley", "mpc"] = field(
        "pure_pursuit", "path tracker that turns the plan into steering"
    )
    target_speed: float = field(10.0, "desired cruising speed (capped by the lane's limit)")
    lateral_accel: float = field(2.0, "slow for bends to keep lateral acceleration under this")
    bend_decel: float = field(1.5, "slow for a bend ahead as late as braking at this allows (m/s²)")
    accel: float = field(1.5, "IDM maximum acceleration (m/s²)")
    decel: float = field(2.5, "IDM comfortable deceleration (m/s²)")
    max_decel: float = field(6.0, "hardest planned braking (m/s²)")
    headway: float = field(1.2, "IDM desired time gap to the lead (s)")
    min_gap: float = field(2.5, "IDM gap kept when standing (m, bumper to bumper)")
    stop_margin: float = field(1.5, "stop this far before a stop line or crosswalk (m)")
    yellow_decel: float = field(4.0, "stop for yellow only when this braking suffices (m/s²)")
    prediction: Literal["lanes", "straight"] = field(
        "lanes",
        "other vehicles rolled forward along their lanes (the map's) or in straight lines",
    )
    safe_braking: float = field(
        4.0,
        "a lane change may not make the vehicle behind in the target lane brake harder "
        "than this (m/s², MOBIL's b_safe; 0: not checked)",
    )
    horizon: float = field(4.0, "planning and prediction horizon (s)")
    plan_dt: float = field(0.2, "time step of planned trajectories and predictions (s)")
    lateral_time: float = field(2.5, "seconds of travel over which a lateral move completes")
    lateral_offsets: tuple[float, ...] = field(
        (0.0, -1.0, 1.0), "candidate lateral targets in lane widths (left positive)"
    )
    speed_factors: tuple[float, ...] = field(
        (1.0, 0.6, 0.3), "candidate desired speeds as fractions of the target speed"
    )
    ego_radius: float = field(1.3, "radius of each of the ego's three covering discs (m)")
    growth: float = field(0.3, "predicted footprints grow this much per second (m/s)")
    standing_margin: float = field(
        0.3, "room kept from standing vehicles and obstacles (m), checked as exact rectangles"
    )
    pedestrian_corridor: float = field(
        0.5, "a pedestrian this close to the car's sides (m), now or soon, is in its path"
    )
    pedestrian_gap: float = field(
        1.0,
        "seconds kept between the car and a pedestrian crossing its path, before or after",
    )
    w_progress: float = field(1.0, "cost per metre of progress missing over the horizon")
    w_offset: float = field(2.0, "cost per metre of lateral offset at the plan's end")
    w_comfort: float = field(0.5, "cost of lateral jerk / speed changes")
    w_clearance: float = field(5.0, "cost of passing close to predicted objects")
    lookahead: float = field(4.0, "pure pursuit look-ahead at standstill (m)")
    lookahead_gain: float = field(0.4, "pure pursuit look-ahead per m/s (s)")
    speed_gain: float = field(1.0, "feedback of the speed error into acceleration (1/s)")

    def __post_init__(self) -> None:
        positive = ("target_speed", "lateral_accel", "bend_decel", "accel", "decel",
                    "max_decel", "horizon", "plan_dt", "lateral_time", "ego_radius", "lookahead",
                    "yellow_decel", "standing_margin", "pedestrian_gap")  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        non_negative = ("headway", "min_gap", "stop_margin", "growth", "pedestrian_corridor",
                        "w_progress", "w_offset", "w_comfort", "w_clearance", "lookahead_gain",
                        "speed_gain", "safe_braking")  # fmt: skip
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if any(f < 0 for f in self.speed_factors):
            raise ValueError("speed_factors must not be negative")
        if not self.lateral_offsets or not self.speed_factors:
            raise ValueError("lateral_offsets and speed_factors must not be empty")
        if not 0.0 <= self.perception_smoothing < 1.0:
            raise ValueError("perception_smoothing must lie in [0, 1)")
        if not 0.0 <= self.perception_threshold < 1.0:
            raise ValueError("perception_threshold must lie in [0, 1)")
        if not 0.0 <= self.perception_hold <= 5.0:
            raise ValueError("perception_hold must lie in [0, 5] seconds")
        if not 0.0 <= self.perception_rear <= 50.0:
            raise ValueError("perception_rear must lie in [0, 50] metres")
        if self.plan_dt > self.horizon:
            raise ValueError("plan_dt must not exceed the horizon")


def build_config(env_id: str, overrides: dict[str, Any] | None = None) -> ModularConfig:
    """The preset for ``env_id`` with ``overrides`` on top; unknown keys are a
    :class:`UserError` naming the close matches, and a ``perception`` that is neither
    ``privileged`` nor a perception run is one too (checked without torch)."""
    table = load_yaml(PRESETS)
    values = merge(dict(table.get("default") or {}), table.get(env_id) or {})
    config = from_dict(ModularConfig, merge(values, overrides or {}))
    if config.perception != "privileged":
        check_perception_run(config.perception)
    return config


def check_perception_run(path: str) -> None:
    """``path`` is a perception run (or checkpoint) the stack can see through."""
    from pilot.agents.common import checkpoint
    from pilot.perception.meta import check_network_meta

    if not Path(path).exists():
        raise UserError(
            f"perception={path}: no such perception run; use privileged or a run directory "
            "of `pilot perception train`"
        )
    check_network_meta(checkpoint.read_meta(path), path)
