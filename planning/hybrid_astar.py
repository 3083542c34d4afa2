"""Hybrid A* for a car-like robot (kinematic bicycle, optional reversing) on a grid map.

After Dolgov, Thrun, Montemerlo & Diebel 2008 ("Practical search techniques in path
planning for autonomous driving"): A* over continuous poses ``(x, y, yaw)`` whose closed
set is a grid of (cell, heading bin); each expansion drives a few constant-curvature arcs
(curvature from ``-1/R`` to ``1/R``, forwards and, if allowed, backwards); the heuristic is
the larger of the straight-line distance and the obstacle-aware 2D distance from a
Dijkstra run on the inflated grid; and "analytic expansions" try to finish with a
collision-free Dubins path (Dubins 1957; word formulas as in Shkel & Lumelsky 2001), driven
forwards or backwards, to hit the goal pose exactly.

Every returned pose lies on an arc of curvature at most ``1/min_turning_radius``, so the
path is kinematically feasible for a bicycle with ``tan(max_steer) = wheelbase / R``.
World frame as in :mod:`pilot.planning.collision` (metres; x along columns, y along rows).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import time
from collections.abc import Sequence

import numpy as np

from pilot.config import field
from pilot.errors import UserError

from .collision import OccupancyChecker
from .grid import GridGraph
from .types import PlanInfo

TWO_PI = 2.0 * math.pi


@dataclasses.dataclass(frozen=True)
class HybridAStarConfig:
    """Vehicle limits and search settings (lengths in metres, angles in radians)."""

    min_turning_radius: float = field(3.0, "smallest radius the vehicle can turn on (m)")
    step: float = field(1.5, "arc length of one motion primitive (m); keep above a cell diagonal")
    n_steer: int = field(
        5, "curvatures per direction, evenly from -1/R to 1/R (odd: includes straight)"
    )
    heading_bins: int = field(72, "heading resolution of the closed set")
    allow_reverse: bool = field(True, "also drive backwards")
    reverse_cost: float = field(2.0, "multiplier on arc length driven backwards")
    switch_cost: float = field(4.0, "added per change between forwards and backwards (m)")
    steer_cost: float = field(0.2, "added per metre driven at full curvature (scaled by |κ|·R)")
    steer_change_cost: float = field(0.3, "added per change of curvature, in units of 1/R")
    clearance: float = field(0.5, "smallest distance from the robot's centre to an obstacle (m)")
    goal_tolerance: float = field(0.5, "position tolerance at the goal (m)")
    goal_heading_tolerance: float = field(math.radians(10.0), "heading tolerance at the goal (rad)")
    analytic_range: float = field(
        15.0, "try a Dubins shot every expansion within this distance (m)"
    )
    analytic_every: int = field(10, "farther out, try one every this many expansions")
    max_expansions: int = field(20000, "give up after this many expansions")


@dataclasses.dataclass
class _Node:
    x: float
    y: float
    yaw: float
    g: float
    parent: int
    direction: int
    kappa: float
    samples: np.ndarray  # (k, 4) poses driven from the parent, excluding the parent's pose


def wrap_angle(a: float | np.ndarray) -> float | np.ndarray:
    """Angle(s) in [-π, π)."""
    return (a + math.pi) % TWO_PI - math.pi


def drive(
    x: float,
    y: float,
    yaw: float,
    kappa: float,
    length: float,
    sample_step: float,
    direction: int = 1,
) -> np.ndarray:
    """Poses along an arc of curvature ``kappa`` and arc length ``length`` driven in
    ``direction`` (+1 forwards, -1 backwards): (n, 4) rows ``x, y, yaw, direction`` at most
    ``sample_step`` apart, the start excluded and the end included. Exact, not Euler."""
    n = max(1, int(math.ceil(abs(length) / sample_step)))
    s = direction * abs(length) * np.arange(1, n + 1) / n  # signed distance along heading
    if abs(kappa) < 1e-12:
        xs = x + s * math.cos(yaw)
        ys = y + s * math.sin(yaw)
        yaws = np.full(n, yaw)
    else:
        yaws = yaw + kappa * s
        xs = x + (np.sin(yaws) - math.sin(yaw)) / kappa
        ys = y - (np.cos(yaws) - math.cos(yaw)) / kappa
    return np.column_stack([xs, ys, wrap_angle(yaws), np.full(n, float(direction))])


# ------------------------------------------------------------------------------ Dubins
def _mod2pi(a: float) -> float:
    return a % TWO_PI


def dubins_words(
    start: Sequence[float], goal: Sequence[float], radius: float
) -> list[tuple[str, tuple[float, float, float]]]:
    """Candidate Dubins paths as (word, segment lengths in metres), shortest first.

    Words are over L (left, κ = +1/R), S (straight), R (right, κ = -1/R). The
    formulas work in a frame where the start-goal line is the x-axis and lengths are in
    units of the radius.
    """
    dx, dy = goal[0] - start[0], goal[1] - start[1]
    d = math.hypot(dx, dy) / radius
    phi = math.atan2(dy, dx)
    a, b = _mod2pi(start[2] - phi), _mod2pi(goal[2] - phi)
    sa, sb, ca, cb = math.sin(a), math.sin(b), math.cos(a), math.cos(b)
    cab = math.cos(a - b)
    out = []
    p2 = 2 + d * d - 2 * cab + 2 * d * (sa - sb)  # LSL
    if p2 >= 0:
        t1 = math.atan2(cb - ca, d + sa - sb)
        out.append(("LSL", (_mod2pi(t1 - a), math.sqrt(p2), _mod2pi(b - t1))))
    p2 = 2 + d * d - 2 * cab + 2 * d * (sb - sa)  # RSR
    if p2 >= 0:
        t1 = math.atan2(ca - cb, d - sa + sb)
        out.append(("RSR", (_mod2pi(a - t1), math.sqrt(p2), _mod2pi(t1 - b))))
    p2 = -2 + d * d + 2 * cab + 2 * d * (sa + sb)  # LSR
    if p2 >= 0:
        p = math.sqrt(p2)
        t1 = math.atan2(-ca - cb, d + sa + sb) - math.atan2(-2.0, p)
        out.append(("LSR", (_mod2pi(t1 - a), p, _mod2pi(t1 - b))))
    p2 = -2 + d * d + 2 * cab - 2 * d * (sa + sb)  # RSL
    if p2 >= 0:
        p = math.sqrt(p2)
        t1 = math.atan2(ca + cb, d - sa - sb) - math.atan2(2.0, p)
        out.append(("RSL", (_mod2pi(a - t1), p, _mod2pi(b - t1))))
    c = (6 - d * d + 2 * cab + 2 * d * (sa - sb)) / 8  # RLR
    if abs(c) <= 1:
        p = _mod2pi(TWO_PI - math.acos(c))
        t = _mod2pi(a - math.atan2(ca - cb, d - sa + sb) + p / 2)
        out.append(("RLR", (t, p, _mod2pi(a - b - t + p))))
    c = (6 - d * d + 2 * cab + 2 * d * (sb - sa)) / 8  # LRL
    if abs(c) <= 1:
        p = _mod2pi(TWO_PI - math.acos(c))
        t = _mod2pi(-a - math.atan2(ca - cb, d + sa - sb) + p / 2)
        out.append(("LRL", (t, p, _mod2pi(b - a - t + p))))
    out = [(w, tuple(radius * v for v in seg)) for w, seg in out]
    out.sort(key=lambda item: sum(item[1]))
    return out  # type: ignore[return-value]


def dubins_path(
    start: Sequence[float], goal: Sequence[float], radius: float, sample_step: float
) -> np.ndarray | None:
    """Samples (n, 4) of the shortest Dubins path whose end really is ``goal``, or None.

    Each candidate is driven and its end pose compared with the goal, so a word whose
    formula does not apply to this configuration is skipped rather than trusted.
    """
    scale = max(radius, 1.0)
    for word, lengths in dubins_words(start, goal, radius):
        x, y, yaw = start[0], start[1], start[2]
        parts = []
        for letter, length in zip(word, lengths, strict=True):
            if length < 1e-9:
                continue
            kappa = {"L": 1.0 / radius, "S": 0.0, "R": -1.0 / radius}[letter]
            seg = drive(x, y, yaw, kappa, length, sample_step)
            parts.append(seg)
            x, y, yaw = seg[-1, :3]
        if not parts:
            return np.array([[goal[0], goal[1], wrap_angle(goal[2]), 1.0]])
        if (
            math.hypot(x - goal[0], y - goal[1]) < 1e-6 * scale
            and abs(wrap_angle(yaw - goal[2])) < 1e-6
        ):
            out = np.concatenate(parts)
            out[-1, :3] = (goal[0], goal[1], wrap_angle(goal[2]))
            return out
    return None


def _dubins_any_direction(
    start: Sequence[float], goal: Sequence[float], radius: float, step: float, reverse: bool
) -> list[np.ndarray]:
    out = []
    fwd = dubins_path(start, goal, radius, step)
    if fwd is not None:
        out.append(fwd)
    if reverse:  # backwards = forwards with both headings turned around
        flip = (start[0], start[1], start[2] + math.pi)
        back = dubins_path(flip, (goal[0], goal[1], goal[2] + math.pi), radius, step)
        if back is not None:
            back[:, 2] = wrap_angle(back[:, 2] - math.pi)
            back[:, 3] = -1.0
            out.append(back)
    return out


# --------------------------------------------------------------------------- the search
def plan(
    blocked: np.ndarray,
    start: Sequence[float],
    goal: Sequence[float],
    resolution: float = 1.0,
    config: HybridAStarConfig | None = None,
) -> tuple[np.ndarray, PlanInfo]:
    """Drive from pose ``start`` to pose ``goal`` (``x, y, yaw`` in metres and radians).

    Returns ``path`` (N, 4) with rows ``x, y, yaw, direction`` (direction +1 forwards,
    -1 backwards, for the motion that arrives at that pose; the first row is the start),
    at most ``resolution / 4`` apart, and a :class:`PlanInfo` whose ``cost`` is the path's
    length in metres and whose ``extras`` hold ``search_cost`` (with penalties),
    ``direction_switches`` and ``analytic`` (whether a Dubins shot finished it).
    A start or goal in collision or an unreachable goal gives ``success=False``.
    """
    cfg = config or HybridAStarConfig()
    t0 = time.perf_counter()
    if cfg.min_turning_radius <= 0 or cfg.step <= 0 or cfg.n_steer < 1 or cfg.heading_bins < 4:
        raise UserError(
            "hybrid A*: radius and step must be positive, n_steer ≥ 1, heading_bins ≥ 4"
        )
    checker = OccupancyChecker(blocked, resolution, cfg.clearance, sample_step=resolution / 4)
    start = tuple(float(v) for v in start)
    goal = tuple(float(v) for v in goal)
    if len(start) != 3 or len(goal) != 3:
        raise UserError("hybrid A*: start and goal are (x, y, yaw) poses")
    step_s = checker.sample_step

    def fail(message: str, expansions: int = 0) -> tuple[np.ndarray, PlanInfo]:
        return np.zeros((0, 4)), PlanInfo(
            False, math.inf, expansions, time.perf_counter() - t0, message
        )

    for label, pose in (("start", start), ("goal", goal)):
        if not checker.all_free(np.array([pose[:2]])):
            return fail(
                f"{label} pose ({pose[0]:.2f}, {pose[1]:.2f}) is in collision or off the map"
            )

    # Obstacle-aware 2D heuristic: grid distances to the goal cell on the inflated grid.
    rows, cols, _ = checker.cells(np.array([goal[:2], start[:2]]))
    holo = GridGraph(checker.unsafe).distance_field((int(rows[0]), int(cols[0]))) * resolution
    if not math.isfinite(holo[rows[1], cols[1]]):
        return fail("goal is unreachable: no corridor wide enough for the clearance")

    radius = cfg.min_turning_radius
    kappas = (
        np.linspace(-1.0 / radius, 1.0 / radius, cfg.n_steer) if cfg.n_steer > 1 else np.zeros(1)
    )
    directions = (1, -1) if cfg.allow_reverse else (1,)
    bin_width = TWO_PI / cfg.heading_bins

    def key(x: float, y: float, yaw: float) -> tuple[int, int, int]:
        b = int(math.floor((yaw % TWO_PI) / bin_width)) % cfg.heading_bins
        return int(y // resolution), int(x // resolution), b

    def heuristic(x: float, y: float) -> float:
        r, c = int(y // resolution), int(x // resolution)
        return max(math.hypot(goal[0] - x, goal[1] - y), float(holo[r, c]))

    def at_goal(x: float, y: float, yaw: float) -> bool:
        return (
            math.hypot(x - goal[0], y - goal[1]) <= cfg.goal_tolerance
            and abs(wrap_angle(yaw - goal[2])) <= cfg.goal_heading_tolerance
        )

    nodes = [_Node(*start, 0.0, -1, 1, 0.0, np.zeros((0, 4)))]
    best_g = {key(*start): 0.0}
    closed: set[tuple[int, int, int]] = set()
    heap = [(heuristic(*start[:2]), 0)]
    expansions = 0
    finish: tuple[int, np.ndarray | None] | None = None  # (node, analytic tail)
    if at_goal(*start):
        finish = (0, None)
    while heap and finish is None:
        _, i = heapq.heappop(heap)
        node = nodes[i]
        k = key(node.x, node.y, node.yaw)
        if k in closed:
            continue
        closed.add(k)
        expansions += 1
        if expansions > cfg.max_expansions:
            return fail(f"gave up after {cfg.max_expansions} expansions", expansions - 1)
        dist = math.hypot(goal[0] - node.x, goal[1] - node.y)
        if dist <= cfg.analytic_range or expansions % cfg.analytic_every == 0:
            for tail in _dubins_any_direction(
                (node.x, node.y, node.yaw), goal, radius, step_s, cfg.allow_reverse
            ):
                if checker.all_free(tail[:, :2]):
                    finish = (i, tail)
                    break
            if finish is not None:
                break
        for d in directions:
            for kappa in kappas:
                samples = drive(node.x, node.y, node.yaw, kappa, cfg.step, step_s, d)
                if not checker.all_free(samples[:, :2]):
                    continue
                x, y, yaw = (float(v) for v in samples[-1, :3])
                nk = key(x, y, yaw)
                if nk in closed:
                    continue
                cost = cfg.step * (cfg.reverse_cost if d < 0 else 1.0)
                cost += cfg.steer_cost * cfg.step * abs(kappa) * radius
                cost += cfg.steer_change_cost * abs(kappa - node.kappa) * radius
                if i != 0 and d != node.direction:
                    cost += cfg.switch_cost
                g = node.g + cost
                if g >= best_g.get(nk, math.inf):
                    continue
                best_g[nk] = g
                nodes.append(_Node(x, y, yaw, g, i, d, float(kappa), samples))
                j = len(nodes) - 1
                if at_goal(x, y, yaw):
                    finish = (j, None)
                    break
                heapq.heappush(heap, (g + heuristic(x, y), j))
            if finish is not None:
                break
    if finish is None:
        return fail("goal is unreachable for this vehicle (search space exhausted)", expansions)

    chain = []
    j = finish[0]
    while j != -1:
        chain.append(nodes[j])
        j = nodes[j].parent
    chain.reverse()
    first_dir = (
        chain[1].direction
        if len(chain) > 1
        else (finish[1][0, 3] if finish[1] is not None else 1.0)
    )
    parts = [np.array([[start[0], start[1], wrap_angle(start[2]), first_dir]])]
    parts += [n.samples for n in chain[1:]]
    if finish[1] is not None:
        parts.append(finish[1])
    path = np.concatenate(parts)
    length = float(np.sum(np.hypot(*np.diff(path[:, :2], axis=0).T)))
    switches = int(np.sum(path[1:, 3] != path[:-1, 3])) if len(path) > 1 else 0
    info = PlanInfo(
        True,
        length,
        expansions,
        time.perf_counter() - t0,
        extras={
            "search_cost": float(chain[-1].g),
            "direction_switches": switches,
            "analytic": finish[1] is not None,
        },
    )
    return path, info
