"""Classical planning: optimal grid search, hybrid A*, RRT*, smoothing and path trackers.

Planners take plain numpy occupancy grids (``blocked[row, col]``, True = obstacle) and
return data, never drawings: ``plan(...) -> (path, info)`` with ``info`` a
:class:`~pilot.planning.types.PlanInfo` (success, cost, expansions, time, message).

* :mod:`~pilot.planning.grid` — A*, Dijkstra, jump point search and Theta* under the
  Moving AI rules (8-connected, diagonal √2, no corner cutting); cells are ``(row, col)``.
* :mod:`~pilot.planning.hybrid_astar` — hybrid A* for a car-like robot (poses in metres).
* :mod:`~pilot.planning.rrt_star` — RRT* for a disc robot in the plane.
* :mod:`~pilot.planning.smoothing` — shortcutting, resampling, smoothing.
* :mod:`~pilot.planning.trackers` — pure pursuit, Stanley and MPC path trackers.
"""

from .collision import OccupancyChecker
from .grid import GRID_PLANNERS, GridGraph, astar, dijkstra, distance_field, jps, theta_star
from .hybrid_astar import HybridAStarConfig
from .rrt_star import RRTStarConfig
from .trackers import MPC, Control, PurePursuit, Reference, Stanley
from .types import PlanInfo

__all__ = [
    "GRID_PLANNERS",
    "MPC",
    "Control",
    "GridGraph",
    "HybridAStarConfig",
    "OccupancyChecker",
    "PlanInfo",
    "PurePursuit",
    "RRTStarConfig",
    "Reference",
    "Stanley",
    "astar",
    "dijkstra",
    "distance_field",
    "jps",
    "theta_star",
]
