"""A* as an agent: the classical planner's row on the navigation leaderboard.

A built-in agent (``pilot eval astar --env pilot/Nav-Grid-v0``): on each step it plans
with :func:`pilot.planning.grid.astar` on the env's known map (8-connected, √2 diagonals,
no corner cutting: the Moving AI conventions the env moves by) from the robot's cell to the
goal, and takes the path's first move. It is optimal by construction, so its SPL is the
board's ceiling, as the random agent's is its floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from pilot.config import field, from_dict
from pilot.errors import UserError

from .grid import astar

GRID_ENVS = ("pilot/Nav-Grid-v0",)


@dataclass(frozen=True)
class AStarConfig:
    """Config of the A* agent."""

    replan: bool = field(True, "plan again on every step (False: follow the first plan)")


class AStarAgent:
    """Plans the shortest 8-connected path on the known map and follows it."""

    name: ClassVar[str] = "astar"
    summary: ClassVar[str] = "A* on the known grid map, first move of the path"
    uses_simulator: ClassVar[bool] = True  # it reads the map and the robot's cell

    def __init__(self, env_id: str, config: AStarConfig | None = None, **_: Any) -> None:
        if env_id not in GRID_ENVS:
            raise UserError(
                f"the A* agent moves on grid maps ({', '.join(GRID_ENVS)}), not {env_id}"
            )
        from pilot.envs.navigation.geometry import MOVES

        self.env_id = env_id
        self.config = config if config is not None else AStarConfig()
        self._move = {m: i for i, m in enumerate(MOVES)}
        self._paths: dict[int, list[tuple[int, int]]] = {}
        self.step = 0

    @staticmethod
    def configure(env_id: str, overrides: dict[str, Any]) -> AStarConfig:
        return from_dict(AStarConfig, overrides)

    def act(self, obs: Any, deterministic: bool = True, envs: list | None = None) -> np.ndarray:
        """The first move of the shortest path, per env in ``envs``."""
        if envs is None:
            raise UserError("the A* agent plans on the live env's map: pass envs=[...]")
        actions = [self._next(env.unwrapped) for env in envs]
        self.step += len(envs)
        return np.asarray(actions, dtype=np.int64)

    def _next(self, env: Any) -> int:
        cell, goal = tuple(env.cell), tuple(env.goal_cell)
        path = self._paths.get(id(env))
        if self.config.replan or not path or path[0] != cell:
            found, _ = astar(env.grid.blocked, cell, goal)
            path = [tuple(int(v) for v in p) for p in found]
            self._paths[id(env)] = path
        if len(path) < 2:  # at the goal, or no path: any move (the env ends or times out)
            return 0
        (r0, c0), (r1, c1) = path[0], path[1]
        self._paths[id(env)] = path[1:]
        return self._move[(r1 - r0, c1 - c0)]

    def action_distribution(self, obs: Any) -> None:
        return None
