"""RRT* for a disc robot in the continuous plane over an occupancy grid.

After Karaman & Frazzoli 2011 ("Sampling-based algorithms for optimal motion
planning"): grow a tree by steering from the nearest node towards a random sample; give
each new node the cheapest collision-free parent among its neighbours within
``r_n = min(γ (log n / n)^{1/2}, step)``; then rewire those neighbours through the new
node when that is cheaper. The best cost to the goal never increases from one iteration
to the next, so with the same random generator more iterations never give a worse path.

World frame as in :mod:`pilot.planning.collision` (metres; x along columns, y along rows).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import numpy as np

from pilot.config import field
from pilot.errors import UserError

from .collision import OccupancyChecker
from .types import PlanInfo


@dataclasses.dataclass(frozen=True)
class RRTStarConfig:
    """Sampling and rewiring settings (lengths in metres)."""

    iterations: int = field(2000, "samples drawn; the search always runs all of them")
    step: float = field(2.0, "longest edge made by steering towards a sample (m)")
    goal_bias: float = field(0.05, "probability of sampling the goal itself")
    gamma: float = field(0.0, "rewiring radius constant; 0 = 1.1 × Karaman & Frazzoli's bound")
    clearance: float = field(0.3, "smallest distance from the robot's centre to an obstacle (m)")


def plan(
    blocked: np.ndarray,
    start: Sequence[float],
    goal: Sequence[float],
    rng: np.random.Generator,
    resolution: float = 1.0,
    config: RRTStarConfig | None = None,
) -> tuple[np.ndarray, PlanInfo]:
    """Path (N, 2) of ``x, y`` points from ``start`` to exactly ``goal``.

    ``info.expansions`` counts iterations; ``info.extras`` holds ``cost_history`` (best
    cost after each iteration, ``inf`` before the first solution), ``first_solution``
    (iteration, cost) and ``nodes``. A start or goal in collision gives ``success=False``
    at once; a goal not reached within the iterations gives ``success=False``.
    """
    cfg = config or RRTStarConfig()
    t0 = time.perf_counter()
    if cfg.iterations < 1 or cfg.step <= 0 or not 0 <= cfg.goal_bias <= 1:
        raise UserError("RRT*: iterations ≥ 1, step > 0 and goal_bias in [0, 1] are required")
    checker = OccupancyChecker(blocked, resolution, cfg.clearance)
    s = np.array(start, dtype=float)[:2]
    g = np.array(goal, dtype=float)[:2]
    for label, p in (("start", s), ("goal", g)):
        if not checker.all_free(p[None]):
            return np.zeros((0, 2)), PlanInfo(
                False,
                math.inf,
                0,
                time.perf_counter() - t0,
                f"{label} ({p[0]:.2f}, {p[1]:.2f}) is in collision or off the map",
            )
    width, height = checker.size
    gamma = cfg.gamma
    if gamma <= 0:  # γ > γ* = 2 (1 + 1/d)^{1/d} (μ(X_free) / ζ_d)^{1/d}, d = 2, ζ_2 = π
        free_area = float((~checker.unsafe).sum()) * resolution**2
        gamma = 1.1 * 2.0 * math.sqrt(1.5) * math.sqrt(free_area / math.pi)

    cap = cfg.iterations + 1
    xy = np.empty((cap, 2))
    cost = np.empty(cap)
    parent = np.full(cap, -1, dtype=np.int64)
    children: list[list[int]] = [[]]
    xy[0], cost[0], n = s, 0.0, 1
    goal_links: list[int] = []  # nodes with a free straight segment to the goal
    history = np.full(cfg.iterations, math.inf)
    best, best_node, first = math.inf, -1, None

    for it in range(cfg.iterations):
        sample = g if rng.random() < cfg.goal_bias else rng.random(2) * (width, height)
        d2 = np.sum((xy[:n] - sample) ** 2, axis=1)
        near_i = int(np.argmin(d2))
        dist = math.sqrt(float(d2[near_i]))
        if dist < 1e-9:
            history[it] = best
            continue
        new = xy[near_i] + (sample - xy[near_i]) * min(1.0, cfg.step / dist)
        if not checker.segment_free(xy[near_i], new):
            history[it] = best
            continue
        radius = min(gamma * math.sqrt(math.log(n + 1) / (n + 1)), cfg.step)
        dn = np.sqrt(np.sum((xy[:n] - new) ** 2, axis=1))
        near = np.nonzero(dn <= radius)[0]
        # choose the cheapest collision-free parent (the nearest node is always valid)
        best_parent, best_cost = near_i, cost[near_i] + float(dn[near_i])
        for j in near[np.argsort(cost[near] + dn[near])]:
            c = cost[j] + dn[j]
            if c >= best_cost:
                break
            if checker.segment_free(xy[j], new):
                best_parent, best_cost = int(j), float(c)
                break
        k = n
        xy[k], cost[k], parent[k] = new, best_cost, best_parent
        children.append([])
        children[best_parent].append(k)
        n += 1
        # rewire the neighbours through the new node where that is cheaper
        for j in near:
            j = int(j)
            c = best_cost + float(dn[j])
            if j == best_parent or c >= cost[j] - 1e-12:
                continue
            if not checker.segment_free(new, xy[j]):
                continue
            children[parent[j]].remove(j)
            parent[j] = k
            children[k].append(j)
            delta = c - cost[j]
            stack = [j]
            while stack:  # the whole subtree gets cheaper by the same amount
                m = stack.pop()
                cost[m] += delta
                stack.extend(children[m])
        if float(np.hypot(*(g - new))) <= cfg.step and checker.segment_free(new, g):
            goal_links.append(k)
        if goal_links:
            links = np.asarray(goal_links)
            total = cost[links] + np.sqrt(np.sum((xy[links] - g) ** 2, axis=1))
            i = int(np.argmin(total))
            if total[i] < best:
                best, best_node = float(total[i]), int(links[i])
                if first is None:
                    first = (it, best)
        history[it] = best

    elapsed = time.perf_counter() - t0
    extras = {"cost_history": history, "first_solution": first, "nodes": n}
    if best_node < 0:
        return np.zeros((0, 2)), PlanInfo(
            False,
            math.inf,
            cfg.iterations,
            elapsed,
            f"goal not reached in {cfg.iterations} iterations",
            extras,
        )
    chain = [best_node]
    while parent[chain[-1]] != -1:
        chain.append(int(parent[chain[-1]]))
    path = np.vstack([xy[chain[::-1]], g[None]])
    if np.allclose(path[-2], g):
        path = path[:-1]  # the goal itself was a node
    return path, PlanInfo(True, best, cfg.iterations, elapsed, extras=extras)
