"""The robot path-planning world: occupancy-grid maps, procedural and from Moving AI files.

Maps (:mod:`.maps`) and the two navigation envs (:mod:`.env`: ``pilot/Nav-Grid-v0`` and
``pilot/Nav-Continuous-v0``) live here; planners that solve them are in ``pilot.planning``
(this package imports nothing from there).
"""

from .env import (
    ContinuousNavConfig,
    ContinuousNavEnv,
    GridNavConfig,
    GridNavEnv,
    RewardWeights,
)
from .maps import (
    BLOCKED,
    PASSABLE,
    GridMap,
    Scenario,
    check_scenarios,
    format_map,
    format_scen,
    generate_scenarios,
    load_map,
    load_scen,
    maze,
    parse_map,
    parse_scen,
    random_obstacles,
    rooms,
    save_map,
    save_scen,
)
from .registration import NAVIGATION, register_navigation

__all__ = [
    "BLOCKED",
    "PASSABLE",
    "GridMap",
    "Scenario",
    "check_scenarios",
    "format_map",
    "format_scen",
    "generate_scenarios",
    "load_map",
    "load_scen",
    "maze",
    "parse_map",
    "parse_scen",
    "random_obstacles",
    "rooms",
    "save_map",
    "save_scen",
    "ContinuousNavConfig",
    "ContinuousNavEnv",
    "GridNavConfig",
    "GridNavEnv",
    "NAVIGATION",
    "RewardWeights",
    "register_navigation",
]
