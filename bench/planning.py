"""Grid search benchmark: pilot vs networkx vs the ``pathfinding`` package, one run.

All of them search the same graph with the same queries: 8-connected, straight moves 1,
diagonal moves √2, no corner cutting (Moving AI's rules), octile heuristic.

* pilot A*: ``GridGraph.astar`` (a graph prepared once per map, like the peers' graphs),
  its search loop compiled by numba; loading (or the first time, compiling) it is timed
  apart, before the queries.
* pilot A* (Python loop): the same search in plain CPython, ``GridGraph(...,
  compiled=False)``, the fallback used without numba; same expansions, same paths.
* pilot JPS: ``GridGraph.jps``, jump point search: A* that expands only jump points;
  optimal, same lengths, shown apart because it is a different search than plain A*.
* networkx: ``nx.astar_path`` on a ``Graph`` whose edges carry ``weight`` 1 or √2,
  heuristic = octile distance; length from ``nx.path_weight``.
* pathfinding (PyPI, a port of PathFinding.js): ``AStarFinder`` with
  ``DiagonalMovement.only_when_no_obstacle`` (exactly "no corner cutting") and its
  default octile heuristic for diagonal moves; ``grid.cleanup()`` before each query, as
  it requires when a grid is reused (counted in its time).

Maps (512×512): random obstacles at 10% and 25% (Moving AI's random512-10 / -25 kind),
rooms of 32 cells (like 32room_*) and a maze with corridors 8 wide (like maze512-8-*).
Queries are random pairs of mutually reachable cells. Building graphs and tables is
timed apart and not counted in queries/s. All lengths must agree to 1e-6.

    pip install -e ".[bench]"
    python bench/planning.py                      # 20 queries per map, everything
    python bench/planning.py --queries 5 --maps random25 --no-pathfinding

Machines are shared and noisy: compare the ratios of one run, not absolute numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

from pilot.envs.navigation import maps
from pilot.planning import _fast
from pilot.planning.grid import SQRT2, GridGraph, move_masks


def octile_rc(a: tuple[int, int], b: tuple[int, int]) -> float:
    dy, dx = abs(a[0] - b[0]), abs(a[1] - b[1])
    return max(dx, dy) + (SQRT2 - 1.0) * min(dx, dy)


def build_networkx(blocked: np.ndarray):
    """The same graph as pilot's, as a networkx Graph with edge weights (1 or √2)."""
    import networkx as nx

    masks = move_masks(blocked)
    g = nx.Graph()
    g.add_nodes_from(map(tuple, np.argwhere(~blocked).tolist()))
    # moves 1 (east), 2 (south), 5 (south-east), 6 (south-west) cover each edge once
    for bit, (dr, dc) in ((1, (0, 1)), (2, (1, 0)), (5, (1, 1)), (6, (1, -1))):
        rows, cols = np.nonzero(masks >> bit & 1)
        w = SQRT2 if dr and dc else 1.0
        g.add_weighted_edges_from(
            ((r, c), (r + dr, c + dc), w) for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
        )
    return g


def pick_queries(graph: GridGraph, n: int, rng: np.random.Generator) -> list:
    """``n`` random (start, goal) pairs inside the largest region reachable from a free cell."""
    free = np.argwhere(~graph.blocked)
    best = None
    for _ in range(5):
        src = tuple(int(v) for v in free[rng.integers(len(free))])
        reach = np.argwhere(np.isfinite(graph.distance_field(src)))
        if best is None or len(reach) > len(best):
            best = reach
        if len(best) > 0.5 * len(free):
            break
    idx = rng.integers(len(best), size=(n, 2))
    return [(tuple(map(int, best[i])), tuple(map(int, best[j]))) for i, j in idx]


def run_map(grid_map: maps.GridMap, n: int, rng: np.random.Generator, use_pf: bool) -> dict:
    print(
        f"\n== {grid_map.name}: {grid_map.height}×{grid_map.width}, "
        f"{grid_map.blocked.mean():.0%} blocked, {n} queries"
    )
    t = time.perf_counter()
    graph = GridGraph(grid_map.blocked)
    prep_ours = time.perf_counter() - t
    t = time.perf_counter()
    cell = tuple(int(v) for v in np.argwhere(~grid_map.blocked)[0])
    graph.astar(cell, cell)  # loads (or compiles) the compiled loop; timed apart here
    prep_jit = time.perf_counter() - t
    graph_py = GridGraph(grid_map.blocked, compiled=False)
    t = time.perf_counter()
    graph._jump_tables()  # JPS's per-map tables, built on first use; timed apart here
    prep_jps = time.perf_counter() - t
    queries = pick_queries(graph, n, rng)
    row: dict = {"map": grid_map.name, "queries": n}
    lengths: dict[str, list[float]] = {}

    for name, plan in (("astar", graph.astar), ("astar_py", graph_py.astar), ("jps", graph.jps)):
        out, elapsed, expansions = [], 0.0, 0
        for s, g in queries:
            t = time.perf_counter()
            _, info = plan(s, g)
            elapsed += time.perf_counter() - t
            out.append(info.cost)
            expansions += info.expansions
        lengths[name] = out
        row[f"{name}_s"] = elapsed
        row[f"{name}_exp"] = expansions / n

    import networkx as nx

    t = time.perf_counter()
    nxg = build_networkx(grid_map.blocked)
    prep_nx = time.perf_counter() - t
    out, elapsed = [], 0.0
    for s, g in queries:
        t = time.perf_counter()
        path = nx.astar_path(nxg, s, g, heuristic=octile_rc, weight="weight")
        elapsed += time.perf_counter() - t
        out.append(nx.path_weight(nxg, path, "weight"))
    del nxg
    lengths["networkx"], row["networkx_s"] = out, elapsed

    if use_pf:
        from pathfinding.core.diagonal_movement import DiagonalMovement
        from pathfinding.core.grid import Grid
        from pathfinding.finder.a_star import AStarFinder

        t = time.perf_counter()
        pf_grid = Grid(matrix=(~grid_map.blocked).astype(int).tolist())
        prep_pf = time.perf_counter() - t
        finder = AStarFinder(diagonal_movement=DiagonalMovement.only_when_no_obstacle)
        out, elapsed = [], 0.0
        for s, g in queries:
            t = time.perf_counter()
            pf_grid.cleanup()
            path, _ = finder.find_path(pf_grid.node(s[1], s[0]), pf_grid.node(g[1], g[0]), pf_grid)
            elapsed += time.perf_counter() - t
            pts = np.array([(p.y, p.x) for p in path], dtype=float)
            out.append(float(np.sum(np.hypot(*np.diff(pts, axis=0).T))) if len(pts) else math.inf)
        lengths["pathfinding"], row["pathfinding_s"] = out, elapsed

    ref = lengths["astar"]
    row["maxdiff"] = max(
        abs(a - b) for other in lengths.values() for a, b in zip(ref, other, strict=True)
    )
    pf_build = f", pathfinding grid {prep_pf:.1f} s" if use_pf else ""
    jit = f" + loading the compiled loop {prep_jit:.2f} s" if graph.compiled else ""
    print(
        f"  build (not in queries/s): pilot {prep_ours * 1e3:.0f} ms{jit} + JPS tables "
        f"{prep_jps * 1e3:.0f} ms, networkx graph {prep_nx:.1f} s{pf_build}"
    )
    same = row["astar_exp"] == row["astar_py_exp"]
    print(f"  compiled and Python A* expand the same nodes: {'yes' if same else 'NO'}")
    print(f"  mean optimal length {np.mean(ref):.1f}; max |length difference| {row['maxdiff']:.1e}")
    for name in ("astar", "astar_py", "jps", "networkx", "pathfinding"):
        if f"{name}_s" not in row:
            continue
        qps = n / row[f"{name}_s"]
        row[f"{name}_qps"] = qps
        extra = f", {row[f'{name}_exp']:.0f} expansions/query" if f"{name}_exp" in row else ""
        print(f"  {LABELS[name]:<22} {qps:8.2f} queries/s{extra}")
    return row


LABELS = {
    "astar": "pilot A*" if _fast.AVAILABLE else "pilot A* (no numba!)",
    "astar_py": "pilot A* (Python loop)",
    "jps": "pilot JPS",
    "networkx": "networkx astar_path",
    "pathfinding": "pathfinding AStarFinder",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--queries", type=int, default=20, help="queries per map")
    p.add_argument(
        "--maps",
        nargs="+",
        default=["random10", "random25", "rooms", "maze"],
        choices=["random10", "random25", "rooms", "maze"],
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-pathfinding", action="store_true")
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    n = args.size
    makers = {
        "random10": lambda: maps.random_obstacles(n, n, 0.10, rng),
        "random25": lambda: maps.random_obstacles(n, n, 0.25, rng),
        "rooms": lambda: maps.rooms(n, n, 32, rng),
        "maze": lambda: maps.maze(n, n, 8, rng),
    }
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs (shared machine: compare ratios, not absolute numbers)"
    )
    rows = [
        run_map(makers[name](), args.queries, rng, not args.no_pathfinding) for name in args.maps
    ]

    print(
        "\n| map | pilot A* q/s | A* Python loop q/s | pilot JPS q/s | networkx q/s | "
        "pathfinding q/s | A* ÷ networkx | Python loop ÷ networkx | JPS ÷ networkx | "
        "A* ÷ pathfinding | lengths identical |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        pf_qps = r.get("pathfinding_qps")
        pf = f"{pf_qps:.2f}" if pf_qps else "–"
        pf_ratio = f"{r['astar_qps'] / pf_qps:.1f}×" if pf_qps else "–"
        print(
            f"| {r['map']} | {r['astar_qps']:.2f} | {r['astar_py_qps']:.2f} | "
            f"{r['jps_qps']:.2f} | {r['networkx_qps']:.2f} | {pf} | "
            f"{r['astar_qps'] / r['networkx_qps']:.1f}× | "
            f"{r['astar_py_qps'] / r['networkx_qps']:.1f}× | "
            f"{r['jps_qps'] / r['networkx_qps']:.1f}× | {pf_ratio} | "
            f"{'yes' if r['maxdiff'] < 1e-6 else 'NO'} ({r['maxdiff']:.0e}) |"
        )


if __name__ == "__main__":
    main()
