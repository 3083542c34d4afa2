"""Registration of the driving ids (string entry points, time limits, descriptions).

Every id is :class:`~pilot.envs.driving.env.DrivingEnv` with its own config; keywords
given to ``gym.make`` override these.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

_ENTRY = "pilot.envs.driving.env:DrivingEnv"

_INTERSECTION: dict[str, Any] = {
    "scenario": "intersection",
    "speed_limit": 12.0,
    "target_speed": 10.0,
    "initial_speed": 5.0,
    "route_length": 200.0,
    "vehicles": 6,
    "pedestrians": 4,
}

_HIGHWAY: dict[str, Any] = {
    "scenario": "highway",
    "lanes": 3,
    "lane_width": 3.75,
    "speed_limit": 30.0,
    "target_speed": 25.0,
    "initial_speed": 20.0,
    "route_length": 600.0,
    "vehicles": 12,
}

_TOWN: dict[str, Any] = {
    "scenario": "town",
    "speed_limit": 14.0,
    "target_speed": 10.0,
    "initial_speed": 5.0,
    "route_length": 1500.0,
    "vehicles": 30,
    "pedestrians": 12,
}
#: A town route is 1.5 km: 150 s at 10 m/s, plus waits at lights and signs.
_TOWN_STEPS = 4500

#: id -> (max_episode_steps, config keywords, one-line description)
DRIVING: dict[str, tuple[int, dict[str, Any], str]] = {
    "pilot/Driving-LaneKeep-v0": (
        600,
        {"scenario": "loop", "lanes": 2, "route_length": 300.0, "target_speed": 10.0},
        "driving: keep lane on a seeded curvy two-lane loop, no traffic (lidar + state)",
    ),
    "pilot/Driving-Highway-v0": (
        500,
        _HIGHWAY,
        "driving: three-lane highway with IDM traffic that changes lanes (Box(2) controls)",
    ),
    "pilot/Driving-Highway-Meta-v0": (
        500,
        {**_HIGHWAY, "meta_actions": True},
        "driving: the highway with highway-env style meta actions (Discrete(5))",
    ),
    "pilot/Driving-Intersection-v0": (
        600,
        _INTERSECTION,
        "driving: 4-way junction with traffic lights, traffic and crossing pedestrians",
    ),
    "pilot/Driving-StopSign-v0": (
        600,
        {**_INTERSECTION, "junction_control": "stop"},
        "driving: 4-way all-way stop: stop at the sign, then yield (first come, first served)",
    ),
    "pilot/Driving-Obstacles-v0": (
        600,
        {
            "scenario": "loop",
            "lanes": 2,
            "route_length": 300.0,
            "target_speed": 10.0,
            "obstacles": 4,
            "vehicles": 2,
            "pedestrians": 2,
            "crosswalks": 2,
        },
        "driving: two-lane loop with static obstacles in lanes, light traffic, pedestrians",
    ),
    "pilot/Driving-Town-v0": (
        _TOWN_STEPS,
        _TOWN,
        "driving: 1.5 km routes across a generated town: lights, stop signs, traffic, clutter",
    ),
    "pilot/Driving-Town-Empty-v0": (
        _TOWN_STEPS,
        {**_TOWN, "vehicles": 0, "pedestrians": 0},
        "driving: the town without traffic or pedestrians (buildings, trees, parked cars)",
    ),
    "pilot/Driving-Town-Dense-v0": (
        _TOWN_STEPS,
        {**_TOWN, "vehicles": 80, "pedestrians": 30},
        "driving: the town in dense traffic (80 vehicles, 30 pedestrians)",
    ),
}


def register_driving(descriptions: dict[str, str]) -> None:
    """Register the driving ids with Gymnasium and add their descriptions."""
    for env_id, (steps, kwargs, text) in DRIVING.items():
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=_ENTRY, max_episode_steps=steps, kwargs=kwargs)
        descriptions[env_id] = text
