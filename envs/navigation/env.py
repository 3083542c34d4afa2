"""Robot navigation worlds on occupancy grids: a grid robot and a unicycle robot.

Both envs share the map handling (a fresh seeded map per episode, or a fixed Moving AI
``.map`` with optional ``.scen`` queries), the start/goal sampling, the shortest-path
distance field that drives the progress reward, the named reward terms and the drawing.
They differ in how the robot moves and senses:

* :class:`GridNavEnv` (``pilot/Nav-Grid-v0``): 8 discrete moves under the Moving AI rules,
  an egocentric occupancy window and a goal vector;
* :class:`ContinuousNavEnv` (``pilot/Nav-Continuous-v0``): a disc-shaped differential
  drive robot with velocity commands, a simulated range finder and the goal in its frame.

Coordinates: cells are ``(row, col)``; the continuous frame is metres with one cell = 1 m,
``x`` along the columns and ``y`` along the rows, headings from +x towards +y (the frame of
:mod:`pilot.planning`'s continuous planners).
"""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from pilot.config import field, from_dict
from pilot.errors import UserError

from ..rendering import warn_no_render_mode
from . import maps
from .geometry import (
    MOVES,
    SQRT2,
    can_move,
    disc_collides,
    distance_field,
    wrap_angle,
)
from .maps import GridMap, Scenario
from .sensors import (
    GoalVector,
    GridState,
    OccupancyWindow,
    Odometry,
    PoseState,
    RangeSensor,
    RelativeGoal,
    VisitWindow,
)

#: Names of the reward terms, in the order they are summed.
REWARD_TERMS = ("goal", "progress", "step", "collision")


# ------------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class RewardWeights:
    """Weights of the named reward terms. Each term is ``weight × raw value``; the raw
    values are +1 on reaching the goal, the shortest-path distance gained this step
    (cells or metres; negative when moving away), −1 per step and −1 per collision."""

    goal: float = field(1.0, "reward for reaching the goal")
    progress: float = field(
        0.1, "reward per cell (metre) of shortest-path distance gained towards the goal"
    )
    step: float = field(0.01, "cost of every step, so shorter routes pay more")
    collision: float = field(
        0.1, "cost of a collision (grid: a move into a wall; continuous: touching one)"
    )


@dataclasses.dataclass(frozen=True)
class NavConfig:
    """Map, episode and reward settings shared by both navigation envs."""

    map_kind: Literal["random", "rooms", "maze"] = field(
        "random", "generator of the per-episode maps: random obstacles, rooms or a maze"
    )
    size: tuple[int, int] = field((12, 12), "height and width of generated maps (cells)")
    density: float = field(0.2, "random maps: probability that a cell is blocked")
    room_size: int = field(5, "rooms maps: inner side of a room (cells)")
    corridor_width: int = field(1, "maze maps: corridor width (cells)")
    map_file: str | None = field(None, "a Moving AI .map file to use instead of generated maps")
    scen_file: str | None = field(
        None, "a Moving AI .scen file for map_file: episodes use its start/goal pairs"
    )
    min_distance: float = field(
        4.0, "sampled start/goal pairs are at least this shortest-path distance apart (cells)"
    )
    reward: Literal["shaped", "sparse"] = field(
        "shaped", "shaped: every weighted term; sparse: only the goal term"
    )
    weights: RewardWeights = field(RewardWeights(), "weights of the reward terms")
    observation: Literal["flat", "dict"] = field(
        "flat", "flat: the sensors concatenated into one Box; dict: a Dict of the sensors"
    )

    def __post_init__(self) -> None:
        if min(self.size) < 1:
            raise ValueError(f"size must be positive, got {self.size}")
        if self.scen_file is not None and self.map_file is None:
            raise ValueError("scen_file needs map_file")
        if self.min_distance < 0:
            raise ValueError("min_distance must not be negative")


@dataclasses.dataclass(frozen=True)
class GridNavConfig(NavConfig):
    """Settings of :class:`GridNavEnv`."""

    view_radius: int = field(2, "the occupancy windows span 2r+1 cells on a side")
    visits: bool = field(
        True, "add a window of how often each cell was visited this episode (memory)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.view_radius < 1:
            raise ValueError("view_radius must be at least 1")


@dataclasses.dataclass(frozen=True)
class ContinuousNavConfig(NavConfig):
    """Settings of :class:`ContinuousNavEnv` (lengths in metres, one cell = 1 m)."""

    # A full-speed step covers 0.2 m, a fifth of a grid move, so progress is worth more per
    # metre and a step costs less than on the grid: per step the terms weigh about what
    # they weigh there. With the grid's weights PPO's greedy success on held-out maps was
    # 0.22 after 150k steps, with these 0.48 (0.79 once the odometry sensor was added).
    weights: RewardWeights = field(
        RewardWeights(goal=1.0, progress=0.5, step=0.005, collision=0.05),
        "weights of the reward terms",
    )
    robot_radius: float = field(0.25, "radius of the disc-shaped robot")
    max_speed: float = field(1.0, "linear speed at action[0] = ±1 (m/s)")
    max_turn_rate: float = field(2.0, "turn rate at action[1] = ±1 (rad/s)")
    dt: float = field(0.2, "seconds per step")
    goal_radius: float = field(0.5, "the goal is reached when the centre is this close")
    n_rays: int = field(16, "range sensor: number of rays")
    max_range: float = field(4.0, "range sensor: maximum range")
    fov_deg: float = field(360.0, "range sensor: field of view, centred on the heading")

    def __post_init__(self) -> None:
        super().__post_init__()
        positive = ("robot_radius", "max_speed", "max_turn_rate", "dt", "goal_radius")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.robot_radius >= 0.5:
            raise ValueError("robot_radius must be below 0.5 so the robot fits in a cell")
        if self.n_rays < 1 or self.max_range <= 0 or not 0 < self.fov_deg <= 360:
            raise ValueError("need n_rays >= 1, max_range > 0 and 0 < fov_deg <= 360")


def _build_config(cls: type, config: Any, overrides: dict[str, Any]) -> Any:
    """``cls`` from a config instance and/or keyword overrides (as ``gym.make`` passes
    them). Unknown keys and wrong types are a :class:`UserError` naming close matches."""
    values: dict[str, Any] = {}
    if config is not None:
        if not isinstance(config, cls):
            raise UserError(f"config must be a {cls.__name__}, got {type(config).__name__}")
        values = {f.name: getattr(config, f.name) for f in dataclasses.fields(cls)}
    base = values.get("weights", {f.name: f for f in dataclasses.fields(cls)}["weights"].default)
    values.update(overrides)
    if isinstance(values.get("size"), int):
        values["size"] = (values["size"], values["size"])
    weights = values.get("weights")
    if isinstance(weights, RewardWeights):
        values["weights"] = dataclasses.asdict(weights)
    elif isinstance(weights, Mapping):  # a partial mapping overrides this env's defaults
        values["weights"] = {**dataclasses.asdict(base), **weights}
    for key in ("map_file", "scen_file"):
        if isinstance(values.get(key), Path):
            values[key] = str(values[key])
    return from_dict(cls, values)


# ------------------------------------------------------------------------------- base class
class _NavEnv(gym.Env, abc.ABC):
    """Map handling, episode sampling, reward bookkeeping and drawing of both envs."""

    config: NavConfig

    def __init__(self, config: NavConfig, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise UserError(
                f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.config = config
        self.fixed_map: GridMap | None = None
        self.scenarios: list[Scenario] = []
        if config.map_file is not None:
            self.fixed_map = maps.load_map(config.map_file)
            if config.scen_file is not None:
                self.scenarios = maps.load_scen(config.scen_file)
                if not self.scenarios:
                    raise UserError(f"scenario file {config.scen_file} holds no queries")
                maps.check_scenarios(self.fixed_map, self.scenarios, config.scen_file)
        h, w = (
            (self.fixed_map.height, self.fixed_map.width)
            if self.fixed_map is not None
            else config.size
        )
        #: Distances in observations are divided by this (the larger map side).
        self.scale = float(max(h, w))
        self._fields: dict[tuple[int, int], np.ndarray] = {}  # fixed map: goal -> distances
        #: A planned path to draw over the map (set by a caller, or by ``options["path"]``).
        self.overlay_path: np.ndarray | None = None
        self.grid: GridMap | None = None
        self.dist = np.zeros((1, 1))
        self.start_cell = (0, 0)
        self.goal_cell = (0, 0)
        self.optimal_length = 0.0
        self.path_length = 0.0
        self.trail: list[tuple[float, float]] = []  # travelled (x, y) in metres
        self.sensors: dict[str, Any] = {}

    # --- observations ---------------------------------------------------------------------
    # Windows are flattened row-major in both layouts: Stable-Baselines3's policies take
    # 1-D vectors or uint8 images, and a 5 x 5 float patch is neither an image nor worth
    # a convolution.
    def _observation_space(self) -> spaces.Space:
        parts = {
            name: spaces.Box(s.space().low.ravel(), s.space().high.ravel(), dtype=np.float32)
            for name, s in self.sensors.items()
        }
        if self.config.observation == "dict":
            return spaces.Dict(parts)
        low = np.concatenate([p.low for p in parts.values()])
        high = np.concatenate([p.high for p in parts.values()])
        return spaces.Box(low, high, dtype=np.float32)

    def _observe(self, state: Any) -> np.ndarray | dict[str, np.ndarray]:
        parts = {name: s.observe(state).ravel() for name, s in self.sensors.items()}
        if self.config.observation == "dict":
            return parts
        return np.concatenate(list(parts.values()))

    # --- maps and episodes ------------------------------------------------------------------
    def _generate_map(self) -> GridMap:
        cfg, rng = self.config, self.np_random
        h, w = cfg.size
        if cfg.map_kind == "rooms":
            return maps.rooms(h, w, cfg.room_size, rng)
        if cfg.map_kind == "maze":
            return maps.maze(h, w, cfg.corridor_width, rng)
        return maps.random_obstacles(h, w, cfg.density, rng)

    def _distance_field(self, grid: GridMap, goal: tuple[int, int]) -> np.ndarray:
        if grid is not self.fixed_map:
            return distance_field(grid.blocked, goal)
        if goal not in self._fields:  # a fixed map reuses fields; big maps make them costly
            if len(self._fields) >= 64:
                self._fields.pop(next(iter(self._fields)))
            self._fields[goal] = distance_field(grid.blocked, goal)
        return self._fields[goal]

    def _begin_episode(self, options: Mapping[str, Any]) -> None:
        """Choose the map, start and goal cells, and compute the distance field."""
        grid = options.get("map")
        if grid is not None and not isinstance(grid, GridMap):
            grid = GridMap(np.asarray(grid, dtype=bool), "options")
        start, goal = options.get("start_cell"), options.get("goal_cell")
        if start is not None or goal is not None:
            if start is None or goal is None:
                raise UserError("reset options must give both a start and a goal")
            if grid is None:
                grid = self.fixed_map if self.fixed_map is not None else self._generate_map()
            self._set_episode(grid, _cell(start), _cell(goal), check=True)
            return
        if "scenario" in options or (grid is None and self.scenarios):
            if not self.scenarios:
                raise UserError("reset option 'scenario' needs an env made with scen_file")
            k = options.get("scenario")
            k = int(self.np_random.integers(len(self.scenarios))) if k is None else int(k)
            if not 0 <= k < len(self.scenarios):
                raise UserError(f"scenario {k} is out of range (0..{len(self.scenarios) - 1})")
            s = self.scenarios[k]
            self._set_episode(self.fixed_map, s.start, s.goal, check=True)
            return
        fixed = grid if grid is not None else self.fixed_map
        for _ in range(100):
            g = fixed if fixed is not None else self._generate_map()
            pair = self._sample_pair(g)
            if pair is not None:
                self._set_episode(g, pair[0], pair[1], dist=pair[2])
                return
        where = fixed.name if fixed is not None else f"generated {self.config.map_kind} maps"
        raise UserError(
            f"found no start/goal pair at least min_distance={self.config.min_distance} "
            f"apart on {where}"
        )

    def _sample_pair(self, grid: GridMap):
        """A goal uniformly among free cells, then a start uniformly among the cells that
        reach it at a shortest-path distance of at least ``min_distance`` (None if none)."""
        free = grid.free_cells()
        if len(free) < 2:
            return None
        goal = tuple(int(v) for v in free[self.np_random.integers(len(free))])
        dist = self._distance_field(grid, goal)
        ok = np.isfinite(dist) & (dist > 0) & (dist >= self.config.min_distance)
        starts = np.argwhere(ok)
        if len(starts) == 0:
            return None
        start = tuple(int(v) for v in starts[self.np_random.integers(len(starts))])
        return start, goal, dist

    def _set_episode(
        self,
        grid: GridMap,
        start: tuple[int, int],
        goal: tuple[int, int],
        dist: np.ndarray | None = None,
        check: bool = False,
    ) -> None:
        if check:
            for label, cell in (("start", start), ("goal", goal)):
                if not grid.is_free(cell):
                    raise UserError(f"the {label} cell {cell} is blocked or off the map")
        dist = self._distance_field(grid, goal) if dist is None else dist
        if check and not np.isfinite(dist[start]):
            raise UserError(f"the goal {goal} cannot be reached from the start {start}")
        self.grid, self.start_cell, self.goal_cell, self.dist = grid, start, goal, dist
        self.optimal_length = float(dist[start])
        self.path_length = 0.0

    # --- snapshots (planning through the simulator) -------------------------------------------
    _EPISODE = ("grid", "start_cell", "goal_cell", "dist", "optimal_length", "path_length")

    def get_state(self) -> dict[str, Any]:
        """Everything :meth:`step` reads and writes, so a search can plan through the true
        simulator: restore with :meth:`set_state`, step, snapshot again. Maps and distance
        fields are shared (never written during an episode); mutable parts are copied."""
        state = {name: getattr(self, name) for name in self._EPISODE + self._ROBOT}
        state["trail"] = list(self.trail)
        for name in self._ARRAYS:
            state[name] = state[name].copy()
        return state

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`get_state` snapshot (taken from this env or one made alike)."""
        for name in self._EPISODE + self._ROBOT:
            value = state[name]
            setattr(self, name, value.copy() if name in self._ARRAYS else value)
        self.trail = list(state["trail"])
        self._after_restore()

    def observation(self) -> np.ndarray | dict[str, np.ndarray]:
        """The current observation, e.g. after :meth:`set_state`."""
        return self._observe(self._state())

    _ROBOT: tuple[str, ...] = ()
    _ARRAYS: tuple[str, ...] = ()

    def _after_restore(self) -> None:
        """Rebuild caches derived from the restored state."""

    # --- rewards ------------------------------------------------------------------------------
    def _reward(self, raw: dict[str, float]) -> tuple[float, dict[str, float]]:
        """Weighted terms and their sum; ``sparse`` keeps only the goal term."""
        w = self.config.weights
        sparse = self.config.reward == "sparse"
        terms = {
            name: (0.0 if sparse and name != "goal" else getattr(w, name) * raw[name])
            for name in REWARD_TERMS
        }
        return float(sum(terms.values())), terms

    # --- drawing --------------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            warn_no_render_mode(self)
            return None
        return self._draw()

    def _draw(self) -> np.ndarray:
        """The map (free light, blocked dark), the travelled trail (blue), the overlay path
        (orange), the goal (green) and the robot (red), at least 256 px on the long side."""
        import cv2

        grid = self.grid
        h, w = grid.height, grid.width
        px = max(2, math.ceil(256 / max(h, w)))
        self._px = px
        cells = np.where(grid.blocked, 60, 235).astype(np.uint8)
        img = np.repeat(np.repeat(cells, px, axis=0), px, axis=1)
        img = np.ascontiguousarray(np.stack([img] * 3, axis=-1))
        if px >= 8:  # faint cell borders help count cells
            img[::px, :] = (img[::px, :] * 0.85).astype(np.uint8)
            img[:, ::px] = (img[:, ::px] * 0.85).astype(np.uint8)

        def to_px(points: np.ndarray) -> np.ndarray:
            return np.round(np.asarray(points, dtype=float) * px).astype(np.int32)

        gx, gy = self._goal_xy()
        radius = max(2, int(px * 0.35))
        cv2.circle(img, tuple(to_px([gx, gy]).tolist()), radius, (40, 170, 40), -1, cv2.LINE_AA)
        if self.overlay_path is not None and len(self.overlay_path) > 1:
            pts = to_px(self._overlay_xy(np.asarray(self.overlay_path, dtype=float)))
            thick = max(1, px // 6)
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, (240, 140, 20), thick, cv2.LINE_AA)
        if len(self.trail) > 1:
            pts = to_px(np.array(self.trail))
            thick = max(1, px // 8)
            cv2.polylines(img, [pts.reshape(-1, 1, 2)], False, (40, 90, 220), thick, cv2.LINE_AA)
        self._draw_robot(img, to_px)
        return img

    def _goal_xy(self) -> tuple[float, float]:
        return self.goal_cell[1] + 0.5, self.goal_cell[0] + 0.5

    @abc.abstractmethod
    def _overlay_xy(self, path: np.ndarray) -> np.ndarray:
        """A caller's overlay path in the env's units → (x, y) map coordinates."""

    @abc.abstractmethod
    def _draw_robot(self, img: np.ndarray, to_px) -> None:
        """Draw the robot onto the frame."""

    def _set_overlay(self, options: Mapping[str, Any]) -> None:
        if "path" in options:
            path = options["path"]
            self.overlay_path = None if path is None else np.asarray(path, dtype=float)


def _cell(value: Sequence[int]) -> tuple[int, int]:
    return int(value[0]), int(value[1])


# ------------------------------------------------------------------------------- grid robot
class GridNavEnv(_NavEnv):
    """
    ## Description

    A robot on an occupancy grid must reach a goal cell. It moves one cell at a time to
    one of its 8 neighbours under the Moving AI benchmark's rules: a diagonal move is
    allowed only when both orthogonal neighbours it squeezes between are free (no corner
    cutting), and a move into a blocked cell or off the map leaves the robot where it was
    (a "bump"). Every episode draws a new map from a seeded generator (random obstacles,
    rooms or a maze) or uses a fixed Moving AI ``.map`` file, with start/goal pairs drawn
    at random or read from a ``.scen`` file.

    ## Action Space

    ``Discrete(8)``: 0 N (row − 1), 1 NE, 2 E (col + 1), 3 SE, 4 S, 5 SW, 6 W, 7 NW.

    ## Observation Space

    Three sensors, concatenated into one ``Box`` of ``2(2r+1)² + 5`` float32 values
    (``observation="dict"`` gives them as a ``Dict`` of 1-D vectors instead); windows are
    flattened row-major:

    * ``window``: the ``(2r+1) × (2r+1)`` occupancy grid around the robot, north up,
      1 = blocked or off the map, 0 = free;
    * ``visits``: the same window counting the steps spent in each cell this episode,
      ``min(count / 4, 1)`` (``visits=False`` drops it). A memoryless observation is a
      function of the cell on a fixed map, so a deterministic policy that bumps into a
      wall or steps back once loops until the time limit; the counts change every step
      and let the policy break such loops (when tuning, with 7 × 7 windows, greedy
      success on held-out maps was 0.46 for DQN and 0.77 for PPO without them, 0.84 and
      0.95 with them);
    * ``goal``: ``[drow/d, dcol/d, min(d/scale, 1), clip(drow/r), clip(dcol/r)]``, the
      unit direction to the goal, its straight-line distance ``d`` over the larger map
      side, and its offset while within ``r`` cells.

    Both are local and size-free, so a policy trained on small random maps runs unchanged
    on held-out maps (and on maps of other sizes).

    ## Rewards

    ``info["reward_terms"]`` holds each weighted term (``weights``); the reward is their sum:

    * ``goal``: +1 on reaching the goal;
    * ``progress``: the decrease of the shortest-path (octile) distance to the goal this
      step, from a Dijkstra distance field computed once per episode; potential-based
      shaping (Ng, Harada & Russell 1999), so it leaves the optimal policy unchanged;
    * ``step``: −1 every step;
    * ``collision``: −1 for a bump.

    ``reward="sparse"`` keeps only the goal term.

    ## Starting State

    A goal uniformly among the free cells, then a start uniformly among the cells that
    reach it at a shortest-path distance of at least ``min_distance``; or a ``.scen``
    query. ``reset(options=...)`` accepts ``map`` (a :class:`GridMap` or boolean array),
    ``start_cell`` / ``goal_cell`` (``(row, col)``), ``scenario`` (an index into the
    ``.scen`` queries) and ``path`` (a planned path of ``(row, col)`` cells to draw).

    ## Episode End

    Terminated when the robot reaches the goal cell. Truncated by the time limit
    (``max_episode_steps=100`` as registered, enough for 12 × 12 maps; pass
    ``max_episode_steps`` to ``gym.make`` for bigger maps).

    ## Arguments

    ``gym.make("pilot/Nav-Grid-v0", render_mode=None, **kwargs)`` with the fields of
    :class:`GridNavConfig` as keywords (or ``config=GridNavConfig(...)``): ``map_kind``
    ("random", "rooms", "maze"), ``size`` (height, width), ``density``, ``room_size``,
    ``corridor_width``, ``map_file``, ``scen_file``, ``min_distance``, ``reward``
    ("shaped", "sparse"), ``weights`` (a :class:`RewardWeights` or a mapping),
    ``observation`` ("flat", "dict"), ``view_radius`` (default 2: 5 × 5 windows, which
    learned faster than 7 × 7 or 11 × 11 ones on 12 × 12 maps) and ``visits``.
    ``render_mode="rgb_array"``
    draws the map, the trail, the goal, the robot and ``env.unwrapped.overlay_path``.
    ``info`` carries ``reward_terms``, ``cell``, ``goal``, ``distance`` (shortest-path
    distance left), ``optimal_length``, ``path_length`` (travelled, diagonal √2),
    ``success`` and ``collision``.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        render_mode: str | None = None,
        config: GridNavConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(_build_config(GridNavConfig, config, kwargs), render_mode)
        r = self.config.view_radius
        self.sensors = {"window": OccupancyWindow(r)}
        if self.config.visits:
            self.sensors["visits"] = VisitWindow(r)
        self.sensors["goal"] = GoalVector(r, self.scale)
        self.observation_space = self._observation_space()
        self.action_space = spaces.Discrete(len(MOVES))
        self.cell = (0, 0)
        self.visits = np.zeros((1, 1), dtype=np.float32)

    _ROBOT = ("cell", "visits")
    _ARRAYS = ("visits",)

    def _state(self) -> GridState:
        return GridState(self.grid, self.cell, self.goal_cell, self.visits)

    def _info(self, terms: dict[str, float] | None = None, bumped: bool = False) -> dict:
        info = {
            "cell": self.cell,
            "goal": self.goal_cell,
            "distance": float(self.dist[self.cell]),
            "optimal_length": self.optimal_length,
            "path_length": self.path_length,
            "success": self.cell == self.goal_cell,
            "collision": bumped,
        }
        if terms is not None:
            info["reward_terms"] = terms
        return info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        self._begin_episode(options)
        self._set_overlay(options)
        self.cell = self.start_cell
        self.visits = np.zeros(self.grid.blocked.shape, dtype=np.float32)
        self.visits[self.cell] = 1.0
        self.trail = [(self.cell[1] + 0.5, self.cell[0] + 0.5)]
        return self._observe(self._state()), self._info()

    def step(self, action: int):
        if self.grid is None:
            raise RuntimeError("call reset() before step()")
        a = int(action)
        if not 0 <= a < len(MOVES):
            raise ValueError(f"action must be in 0..{len(MOVES) - 1}, got {action!r}")
        dr, dc = MOVES[a]
        row, col = self.cell
        before = float(self.dist[self.cell])
        moved = can_move(self.grid.blocked, row, col, dr, dc)
        if moved:
            self.cell = (row + dr, col + dc)
            self.path_length += SQRT2 if dr and dc else 1.0
            self.trail.append((self.cell[1] + 0.5, self.cell[0] + 0.5))
        self.visits[self.cell] += 1.0
        reached = self.cell == self.goal_cell
        raw = {
            "goal": float(reached),
            "progress": before - float(self.dist[self.cell]),
            "step": -1.0,
            "collision": -float(not moved),
        }
        reward, terms = self._reward(raw)
        obs = self._observe(self._state())
        return obs, reward, reached, False, self._info(terms, bumped=not moved)

    def _overlay_xy(self, path: np.ndarray) -> np.ndarray:
        return path[:, [1, 0]] + 0.5  # (row, col) cells -> (x, y) of their centres

    def _draw_robot(self, img: np.ndarray, to_px) -> None:
        import cv2

        px = self._px
        centre = tuple(to_px([self.cell[1] + 0.5, self.cell[0] + 0.5]).tolist())
        cv2.circle(img, centre, max(2, int(px * 0.38)), (210, 40, 40), -1, cv2.LINE_AA)


# --------------------------------------------------------------------------- unicycle robot
class ContinuousNavEnv(_NavEnv):
    """
    ## Description

    A disc-shaped differential-drive robot (a unicycle: it drives along its heading and
    turns in place) must reach a goal on the same maps as ``pilot/Nav-Grid-v0``, now in
    continuous coordinates with one cell = 1 m. Each step integrates the commanded speeds
    over ``dt`` exactly (circular arcs) in sub-steps of at most 5 cm; the first sub-step
    whose disc would overlap a blocked cell or leave the map stops the robot at the last
    free position (a collision), while the turn still completes, since a disc turning in
    place touches nothing new.

    ## Action Space

    ``Box(-1, 1, (2,), float32)``: linear speed ``action[0] × max_speed`` (negative drives
    backwards) and turn rate ``action[1] × max_turn_rate`` (positive turns towards +y).
    Actions are clipped to the box.

    ## Observation Space

    Three sensors, concatenated into one ``Box`` of ``n_rays + 6`` float32 values
    (``observation="dict"`` gives them as a ``Dict``):

    * ``ranges``: a :class:`~pilot.envs.navigation.sensors.RangeSensor`, ``n_rays`` exact
      ray casts on the grid over ``fov_deg`` centred on the heading, divided by
      ``max_range`` (1 = nothing in range);
    * ``goal``: ``[cos β, sin β, min(d/scale, 1)]``, the goal's bearing β in the robot's
      frame and its distance ``d`` over the larger map side;
    * ``odometry``: the last clipped action and whether that step collided (zeros after
      reset), so a deterministic policy can tell that pushing on did not move it.

    ## Rewards

    The named terms of ``pilot/Nav-Grid-v0``, in metres: ``goal`` (+1 on arrival),
    ``progress`` (decrease of the shortest-path distance to the goal, interpolated between
    cell centres from the Dijkstra field of the episode), ``step`` (−1 per step) and
    ``collision`` (−1 per step that ended in a collision), weighted by ``weights``
    (defaults 1, 0.5, 0.005 and 0.05: a step covers at most ``max_speed × dt`` = 0.2 m,
    so per step the terms weigh about what the grid's do); ``reward="sparse"`` keeps only
    the goal term.

    ## Starting State

    Start and goal cells drawn as in ``pilot/Nav-Grid-v0``; the robot starts at the centre
    of its cell with a uniformly random heading, and the goal is the centre of its cell.
    ``reset(options=...)`` accepts ``map``, ``start_cell`` / ``goal_cell`` (``(row, col)``),
    ``start_pose`` (``(x, y, yaw)``, metres, overriding the start cell's centre and random
    heading), ``scenario`` and ``path`` (a planned path of ``(x, y[, yaw])`` in metres).

    ## Episode End

    Terminated when the robot's centre is within ``goal_radius`` of the goal. Truncated by
    the time limit (``max_episode_steps=400`` as registered).

    ## Arguments

    ``gym.make("pilot/Nav-Continuous-v0", render_mode=None, **kwargs)`` with the fields of
    :class:`ContinuousNavConfig`: the map, reward and observation fields of ``Nav-Grid``
    plus ``robot_radius``, ``max_speed``, ``max_turn_rate``, ``dt``, ``goal_radius``,
    ``n_rays``, ``max_range`` and ``fov_deg``. ``info["pose"]`` is the pose
    ``[x, y, yaw]`` (for trackers), ``info["goal"]`` the goal ``(x, y)``; ``distance``,
    ``optimal_length``, ``path_length``, ``success``, ``collision`` and ``reward_terms``
    as in ``Nav-Grid``. ``render_mode="rgb_array"`` also draws the range rays.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 5}

    #: Longest sub-step of the motion integration (metres): collisions are checked at
    #: least this often, far below the 0.5 m a disc needs to cross a cell's free space.
    SUBSTEP = 0.05

    def __init__(
        self,
        render_mode: str | None = None,
        config: ContinuousNavConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(_build_config(ContinuousNavConfig, config, kwargs), render_mode)
        cfg: ContinuousNavConfig = self.config
        self.sensors = {
            "ranges": RangeSensor(cfg.n_rays, cfg.max_range, math.radians(cfg.fov_deg)),
            "goal": RelativeGoal(self.scale),
            "odometry": Odometry(),
        }
        self.observation_space = self._observation_space()
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pose = np.zeros(3)
        self.goal_xy = (0.5, 0.5)
        self._phi = 0.0  # shortest-path distance to the goal from the current pose
        self._last = (0.0, 0.0, 0.0)  # last clipped action and collision flag
        self._rows: list[list[bool]] = []
        self._dist_rows: list[list[float]] = []
        self._for: tuple | None = None  # the (map, distances) _rows/_dist_rows come from

    _ROBOT = ("pose", "goal_xy", "_phi", "_last")
    _ARRAYS = ("pose",)

    def _state(self) -> PoseState:
        return PoseState(self.grid, tuple(self.pose.tolist()), self.goal_xy, self._last)

    def _after_restore(self) -> None:
        made_for = self._for
        if made_for is None or made_for[0] is not self.grid or made_for[1] is not self.dist:
            self._rows, self._dist_rows = self.grid.blocked.tolist(), self.dist.tolist()
            self._for = (self.grid, self.dist)

    def _potential(self, x: float, y: float) -> float:
        """Shortest-path distance to the goal from ``(x, y)``: the best of the cell's own
        and its reachable neighbours' distances plus the straight line to their centres."""
        row, col = math.floor(y), math.floor(x)
        blocked, dist = self._rows, self._dist_rows
        best = math.inf
        for dr, dc in ((0, 0), *MOVES):
            if (dr or dc) and not can_move(blocked, row, col, dr, dc):
                continue
            d = dist[row + dr][col + dc]
            if d < math.inf:
                best = min(best, d + math.hypot(x - (col + dc + 0.5), y - (row + dr + 0.5)))
        return best

    def _info(self, terms: dict[str, float] | None = None, collided: bool = False) -> dict:
        info = {
            "pose": self.pose.copy(),
            "goal": self.goal_xy,
            "distance": self._phi,
            "optimal_length": self.optimal_length,
            "path_length": self.path_length,
            "success": self._reached(),
            "collision": collided,
        }
        if terms is not None:
            info["reward_terms"] = terms
        return info

    def _reached(self) -> bool:
        x, y, _ = self.pose
        return math.hypot(x - self.goal_xy[0], y - self.goal_xy[1]) <= self.config.goal_radius

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        self._begin_episode(options)
        self._set_overlay(options)
        # Python lists index faster than numpy in the per-step geometry loops.
        self._rows, self._dist_rows = self.grid.blocked.tolist(), self.dist.tolist()
        self._for = (self.grid, self.dist)
        row, col = self.start_cell
        self.goal_xy = (self.goal_cell[1] + 0.5, self.goal_cell[0] + 0.5)
        yaw = float(self.np_random.uniform(-math.pi, math.pi))
        self.pose = np.array([col + 0.5, row + 0.5, yaw])
        if options.get("start_pose") is not None:
            pose = np.asarray(options["start_pose"], dtype=float).ravel()
            x, y = float(pose[0]), float(pose[1])
            yaw = float(pose[2]) if len(pose) > 2 else yaw
            if disc_collides(self.grid.blocked, x, y, self.config.robot_radius):
                raise UserError(f"the start pose ({x}, {y}) collides with the map")
            self.pose = np.array([x, y, wrap_angle(yaw)])
        self.trail = [(float(self.pose[0]), float(self.pose[1]))]
        self._last = (0.0, 0.0, 0.0)
        self._phi = self._potential(self.pose[0], self.pose[1])
        if not math.isfinite(self._phi):
            raise UserError(f"the goal {self.goal_xy} cannot be reached from {self.pose[:2]}")
        self.optimal_length = self._phi
        return self._observe(self._state()), self._info()

    def step(self, action: np.ndarray):
        if self.grid is None:
            raise RuntimeError("call reset() before step()")
        cfg: ContinuousNavConfig = self.config
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action must be 2 finite numbers, got {action!r}")
        a = np.clip(a, -1.0, 1.0)
        speed, omega = a[0] * cfg.max_speed, a[1] * cfg.max_turn_rate
        x, y, yaw = (float(v) for v in self.pose)
        before = self._phi
        n = max(1, math.ceil(abs(speed) * cfg.dt / self.SUBSTEP))
        h = cfg.dt / n
        collided = False
        for _ in range(n):
            nx, ny, nyaw = _unicycle(x, y, yaw, speed, omega, h)
            if disc_collides(self._rows, nx, ny, cfg.robot_radius):
                collided = True
                break
            self.path_length += math.hypot(nx - x, ny - y)
            x, y, yaw = nx, ny, nyaw
        yaw = wrap_angle(float(self.pose[2]) + omega * cfg.dt)
        self.pose = np.array([x, y, yaw])
        self.trail.append((x, y))
        self._last = (float(a[0]), float(a[1]), float(collided))
        reached = self._reached()
        self._phi = self._potential(x, y)
        raw = {
            "goal": float(reached),
            "progress": before - self._phi,
            "step": -1.0,
            "collision": -float(collided),
        }
        reward, terms = self._reward(raw)
        obs = self._observe(self._state())
        return obs, reward, reached, False, self._info(terms, collided)

    def _goal_xy(self) -> tuple[float, float]:
        return self.goal_xy

    def _overlay_xy(self, path: np.ndarray) -> np.ndarray:
        return path[:, :2]

    def _draw_robot(self, img: np.ndarray, to_px) -> None:
        import cv2

        px = self._px
        x, y, yaw = (float(v) for v in self.pose)
        centre = to_px([x, y])
        sensor: RangeSensor = self.sensors["ranges"]
        for a, r in zip(sensor.angles.tolist(), sensor.ranges(self._state()).tolist(), strict=True):
            end = to_px([x + r * math.cos(yaw + a), y + r * math.sin(yaw + a)])
            cv2.line(
                img, tuple(centre.tolist()), tuple(end.tolist()), (235, 150, 150), 1, cv2.LINE_AA
            )
        radius = max(2, round(self.config.robot_radius * px))
        cv2.circle(img, tuple(centre.tolist()), radius, (210, 40, 40), -1, cv2.LINE_AA)
        reach = 1.6 * self.config.robot_radius
        nose = to_px([x + reach * math.cos(yaw), y + reach * math.sin(yaw)])
        cv2.line(
            img,
            tuple(centre.tolist()),
            tuple(nose.tolist()),
            (90, 0, 0),
            max(1, px // 10),
            cv2.LINE_AA,
        )


def _unicycle(
    x: float, y: float, yaw: float, speed: float, omega: float, dt: float
) -> tuple[float, float, float]:
    """Exact unicycle motion over ``dt``: a straight line, or an arc of radius speed/omega."""
    if abs(omega) < 1e-9:
        return x + speed * dt * math.cos(yaw), y + speed * dt * math.sin(yaw), yaw
    new_yaw = yaw + omega * dt
    r = speed / omega
    return (
        x + r * (math.sin(new_yaw) - math.sin(yaw)),
        y - r * (math.cos(new_yaw) - math.cos(yaw)),
        new_yaw,
    )
