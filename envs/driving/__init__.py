"""The driving world: seeded pybullet road networks with traffic, a camera and a lidar.

Roads (:mod:`.roads`) are numpy data that planners and scoring share; :mod:`.env` holds
:class:`DrivingEnv`, registered as ``pilot/Driving-*`` ids (:mod:`.registration`).

Only the registration is imported eagerly: ``import pilot.envs`` (every CLI command)
should not pay for importing pybullet, which also prints its build time to stderr.
"""

from __future__ import annotations

import importlib
from typing import Any

from .registration import DRIVING, register_driving

_LAZY = {
    "META_ACTIONS": "control",
    "pure_pursuit": "control",
    "route_command": "control",
    "INFRACTIONS": "env",
    "REWARD_TERMS": "env",
    "CameraConfig": "env",
    "DrivingConfig": "env",
    "DrivingEnv": "env",
    "DrivingSnapshot": "env",
    "LidarConfig": "env",
    "RewardWeights": "env",
    "Lane": "roads",
    "RoadNetwork": "roads",
    "Route": "roads",
    "TrafficLight": "roads",
    "highway": "roads",
    "intersection": "roads",
    "loop": "roads",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DRIVING", "register_driving", *_LAZY]
