"""`pilot plan`: run a Moving AI scenario file with one of the grid planners.

    pilot plan --map arena.map --scen arena.map.scen [--planner astar] [--limit N]

Planners: ``astar`` (default), ``dijkstra``, ``jps`` (jump point search; optimal like
A*) and ``theta`` (any-angle Theta*). Prints the success rate, mean path length /
optimal length (1.000 for the optimal planners; below 1 is possible for Theta*), mean
expansions and mean time per query. A malformed map or scenario file, or a scenario that does not fit the map, is
a user error (one line, exit code 2). A query the planner cannot solve counts as a
failure and is listed, not raised.
"""

from __future__ import annotations

import argparse
import math
import sys

from pilot.errors import UserError

PLANNERS = ("astar", "dijkstra", "theta", "jps")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``plan`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "plan", help="run a Moving AI .scen file with a grid planner (A*, Dijkstra, Theta*, JPS)"
    )
    p.add_argument("--map", required=True, metavar="FILE.map", help="Moving AI .map file")
    p.add_argument("--scen", required=True, metavar="FILE.scen", help="Moving AI .scen file")
    p.add_argument(
        "--planner", default="astar", choices=PLANNERS, help="grid planner (default: astar)"
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N queries only")
    return p


def run(args: argparse.Namespace) -> int:
    """Run the scenarios and print the summary; raises :class:`UserError` for bad input."""
    from pilot.envs.navigation.maps import check_scenarios, load_map, load_scen
    from pilot.planning.grid import GridGraph

    if args.limit is not None and args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.planner not in PLANNERS:
        raise UserError(f"unknown planner '{args.planner}'; choose from {', '.join(PLANNERS)}")
    grid_map = load_map(args.map)
    scenarios = load_scen(args.scen)
    if not scenarios:
        raise UserError(f"scenario file {args.scen} holds no queries")
    check_scenarios(grid_map, scenarios, str(args.scen))
    total = len(scenarios)
    if args.limit is not None:
        scenarios = scenarios[: args.limit]

    graph = GridGraph(grid_map.blocked)
    plan = {
        "astar": graph.astar,
        "dijkstra": graph.dijkstra,
        "theta": graph.theta_star,
        "jps": graph.jps,
    }[args.planner]
    ratios, expansions, times, failures = [], [], [], []
    for s in scenarios:
        _, info = plan(s.start, s.goal)
        expansions.append(info.expansions)
        times.append(info.time_s)
        if not info.success:
            failures.append((s, info.message))
            continue
        if s.optimal_length > 0:
            ratios.append(info.cost / s.optimal_length)
        else:
            ratios.append(1.0 if info.cost == 0 else math.inf)

    n = len(scenarios)
    shown = f"{n} of {total}" if n < total else f"{n}"
    print(
        f"{grid_map.name} ({grid_map.width}×{grid_map.height}), {shown} scenarios from "
        f"{args.scen}, planner {args.planner}"
    )
    print(f"  success rate      {100.0 * (n - len(failures)) / n:.1f}% ({n - len(failures)}/{n})")
    if ratios:
        mean_ratio = sum(ratios) / len(ratios)
        print(f"  length / optimal  {mean_ratio:.6f} mean, {max(ratios):.6f} max")
    else:
        print("  length / optimal  n/a (no query solved)")
    print(f"  expansions        {sum(expansions) / n:.1f} per query (mean)")
    print(f"  time              {1e3 * sum(times) / n:.3f} ms per query (mean)")
    for s, why in failures[:5]:
        print(f"  failed: line {s.line}: {why}")
    if len(failures) > 5:
        print(f"  ... and {len(failures) - 5} more failures")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m pilot.plan_cmd ...``) with the CLI's error handling."""
    parser = argparse.ArgumentParser(prog="pilot")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["plan", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run(args)
    except UserError as exc:
        print(f"pilot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
