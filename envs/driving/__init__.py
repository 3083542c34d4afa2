"""The driving world: seeded pybullet road networks with traffic, a camera and a lidar.

Roads (:mod:`.roads`) are numpy data that planners and scoring share; :mod:`.env` holds
:class:`DrivingEnv`, registered as ``pilot/Driving-*`` ids (:mod:`.registration`).

Only the registration is imported eagerly: ``import pilot.envs`` (every CLI command)
should not pay for importing pybullet; :mod:`.world` imports it through
:func:`import_pybullet_quietly`, which keeps its build-time line off stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from types import ModuleType
from typing import Any

from .registration import DRIVING, register_driving

BUILD_TIME_LINE = "pybullet build time:"


def import_pybullet_quietly() -> ModuleType:
    """Import pybullet without its "pybullet build time: ..." line.

    pybullet's C code prints that line to file descriptor 2 when the module loads, on
    every driving command. The descriptor is pointed at a temporary file for the import
    and restored; whatever else was printed there (a real warning or error) is written
    back to stderr.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor to redirect
        return importlib.import_module("pybullet")
    sys.stderr.flush()
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return importlib.import_module("pybullet")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            rest = [
                line
                for line in text.splitlines(keepends=True)
                if not line.startswith(BUILD_TIME_LINE)
            ]
            if rest:
                sys.stderr.write("".join(rest))
                sys.stderr.flush()


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
    "WeatherConfig": "weather",
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


__all__ = ["DRIVING", "import_pybullet_quietly", "register_driving", *_LAZY]
