"""`pilot plan`: run a Moving AI scenario file with one of the grid planners, or make one.

    pilot plan --map arena.map --scen arena.map.scen [--planner astar] [--limit N]
    pilot plan --generate maze --size 64 --seed 1 --out maze64.map

Planners: ``astar`` (default), ``dijkstra``, ``jps`` (jump point search; optimal like
A*) and ``theta`` (any-angle Theta*). Prints the success rate, mean path length /
optimal length (1.000 for the optimal planners; below 1 is possible for Theta*), mean
expansions and mean time per query. The first call's extra time (loading the compiled
search, building a planner's tables) is measured apart and printed as the warm-up, so the
mean is what a query costs. Rows whose start or goal is on a blocked cell are skipped and
listed; a file with no usable row, a malformed map or scenario file, or a scenario for a
map of another size is a user error (one line, exit code 2). A query the planner cannot
solve counts as a failure and is listed, not raised.

``--generate`` writes a seeded map (``random``, ``rooms`` or ``maze``) and a matching
``.scen`` beside it whose optimal lengths come from our Dijkstra distance field.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

from pilot.errors import UserError

PLANNERS = ("astar", "dijkstra", "theta", "jps")
KINDS = ("random", "rooms", "maze")
WARMUP = "loading the compiled search, building the planner's tables"
SHOWN = 5  # skipped rows and failures listed one by one before a count
MAX_SIZE = 4096
DEFAULTS = {"size": 64, "seed": 0, "density": 0.2, "queries": 100}

EXAMPLES = """examples:
  pilot plan --generate maze --size 64 --seed 1 --out maze64.map
  pilot plan --map maze64.map --scen maze64.map.scen --planner jps
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``plan`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "plan",
        help="run a Moving AI .scen file with a grid planner (A*, Dijkstra, Theta*, JPS), "
        "or generate a map and its .scen",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--map", metavar="FILE.map", help="Moving AI .map file")
    p.add_argument("--scen", metavar="FILE.scen", help="Moving AI .scen file")
    p.add_argument("--planner", choices=PLANNERS, help="grid planner (default: astar)")
    p.add_argument("--limit", type=int, metavar="N", help="first N usable queries only")
    g = p.add_argument_group("making a map (instead of --map and --scen)")
    g.add_argument(
        "--generate",
        choices=KINDS,
        metavar="KIND",
        help="random, rooms (of N/8 cells) or maze (corridors N/32 wide)",
    )
    g.add_argument("--size", type=int, metavar="N", help=f"N×N cells, 4..{MAX_SIZE} (default: 64)")
    g.add_argument("--seed", type=int, metavar="S", help="generator seed, >= 0 (default: 0)")
    g.add_argument(
        "--density", type=float, metavar="D", help="random: obstacle fraction (default: 0.2)"
    )
    g.add_argument("--queries", type=int, metavar="N", help="queries in the .scen (default: 100)")
    g.add_argument("--out", metavar="FILE.map", help="map to write; the .scen is FILE.map.scen")
    return p


def run(args: argparse.Namespace) -> int:
    """Plan a scenario file, or generate a map; raises :class:`UserError` for bad input."""
    making = ("size", "seed", "density", "queries", "out")
    planning = ("map", "scen", "planner", "limit")
    if args.generate:
        given = [f"--{k}" for k in planning if getattr(args, k) is not None]
        if given:
            raise UserError(
                f"--generate makes a map; plan on it in a second command (drop {', '.join(given)})"
            )
        return generate(args)
    given = [f"--{k}" for k in making if getattr(args, k) is not None]
    if given:
        verb = "goes" if len(given) == 1 else "go"
        raise UserError(f"{', '.join(given)} {verb} with --generate KIND")
    if not args.map or not args.scen:
        raise UserError("plan needs --map FILE.map and --scen FILE.scen (or --generate KIND)")
    return plan_file(args)


def plan_file(args: argparse.Namespace) -> int:
    """Run the scenarios and print the summary."""
    from pilot.envs.navigation.maps import blocked_endpoints, load_map, load_scen
    from pilot.planning.grid import GridGraph

    planner = args.planner or "astar"
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    grid_map = load_map(args.map)
    scenarios = load_scen(args.scen)
    if not scenarios:
        raise UserError(f"scenario file {args.scen} holds no queries")
    skipped = blocked_endpoints(grid_map, scenarios, str(args.scen))
    if len(skipped) == len(scenarios):
        s, why = skipped[0]
        raise UserError(
            f"no usable query in {args.scen}: every row has a start or goal on a blocked "
            f"cell (line {s.line}: {why}); is it the scenario file of {grid_map.name}?"
        )
    bad_lines = {s.line for s, _ in skipped}
    scenarios = [s for s in scenarios if s.line not in bad_lines]
    total = len(scenarios)
    if args.limit is not None:
        scenarios = scenarios[: args.limit]

    graph = GridGraph(grid_map.blocked)
    plan = {
        "astar": graph.astar,
        "dijkstra": graph.dijkstra,
        "theta": graph.theta_star,
        "jps": graph.jps,
    }[planner]
    first = scenarios[0]
    t0 = time.perf_counter()
    plan(first.start, first.goal)
    first_call = time.perf_counter() - t0

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
    warmup = max(0.0, first_call - times[0])

    n = len(scenarios)
    shown = f"{n} of {total} scenarios" if n < total else _count(n, "scenario")
    print(
        f"{grid_map.name} ({grid_map.width}×{grid_map.height}), {shown} from "
        f"{args.scen}, planner {planner}"
    )
    named = {Path(s.map_name.replace("\\", "/")).name for s in scenarios}
    if named and Path(args.map).name not in named:
        print(
            f"  note              the scenarios name {', '.join(sorted(named)[:3])}, not {Path(args.map).name}"
        )
    if skipped:
        print(f"  skipped           {_count(len(skipped), 'row')}: start or goal on a blocked cell")
        for s, why in skipped[:SHOWN]:
            print(f"    line {s.line}: {why}")
        if len(skipped) > SHOWN:
            print(f"    ... and {len(skipped) - SHOWN} more")
    print(f"  success rate      {100.0 * (n - len(failures)) / n:.1f}% ({n - len(failures)}/{n})")
    if ratios:
        mean_ratio = sum(ratios) / len(ratios)
        print(f"  length / optimal  {mean_ratio:.6f} mean, {max(ratios):.6f} max")
    else:
        print("  length / optimal  n/a (no query solved)")
    print(f"  expansions        {sum(expansions) / n:.1f} per query (mean)")
    print(f"  time              {1e3 * sum(times) / n:.3f} ms per query (mean)")
    print(f"  warm-up           {1e3 * warmup:.1f} ms once, not in the mean ({WARMUP})")
    for s, why in failures[:SHOWN]:
        print(f"  failed: line {s.line}: {why}")
    if len(failures) > SHOWN:
        print(f"  ... and {_count(len(failures) - SHOWN, 'more failure')}")
    return 0


def generate(args: argparse.Namespace) -> int:
    """Write a seeded map and its ``.scen`` (optimal lengths from the distance field)."""
    import numpy as np

    from pilot.envs.navigation import maps
    from pilot.planning.grid import distance_field

    size, seed = _value(args, "size"), _value(args, "seed")
    density, queries = _value(args, "density"), _value(args, "queries")
    if not 4 <= size <= MAX_SIZE:
        raise UserError(f"--size must lie in 4..{MAX_SIZE}, got {size}")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    if not 1 <= queries <= 100_000:
        raise UserError(f"--queries must lie in 1..100000, got {queries}")
    if args.density is not None and args.generate != "random":
        raise UserError(f"--density applies to --generate random, not {args.generate}")
    if not 0.0 <= density < 1.0:  # also refuses nan
        raise UserError(f"--density must lie in [0, 1), got {density}")
    if not args.out:
        raise UserError("--generate needs --out FILE.map")
    out = Path(args.out)
    scen_out = out.with_name(out.name + ".scen")
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'a.map'}")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")

    rng = np.random.default_rng(seed)
    name = out.stem
    if args.generate == "random":
        grid_map = maps.random_obstacles(size, size, density, rng, name=name)
        detail = f"{density:.0%} obstacles"
    elif args.generate == "rooms":
        room = max(3, size // 8)
        grid_map = maps.rooms(size, size, room, rng, name=name)
        detail = f"rooms of {room} cells"
    else:
        corridor = max(1, size // 32)
        grid_map = maps.maze(size, size, corridor, rng, name=name)
        detail = f"corridors {corridor} wide"
    # several goals share one distance field: one Dijkstra sweep serves ten queries
    scenarios = maps.generate_scenarios(
        grid_map, queries, rng, distance_field, out.name, goals_per_start=min(10, queries)
    )
    try:
        maps.save_map(grid_map, out)
        maps.save_scen(scenarios, scen_out)
    except OSError as exc:
        raise UserError(f"cannot write {exc.filename or out}: {exc.strerror or exc}") from None
    print(
        f"wrote {out} ({args.generate} {size}×{size}, {detail}, seed {seed}) and {scen_out} "
        f"({_count(len(scenarios), 'query', 'queries')}, optimal lengths by Dijkstra)"
    )
    print(
        f"plan on it: pilot plan --map {shlex.quote(str(out))} --scen {shlex.quote(str(scen_out))}"
    )
    return 0


def _count(n: int, word: str, plural: str = "") -> str:
    """'1 row', '2 rows': a count with its noun in the right number."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _value(args: argparse.Namespace, key: str):
    value = getattr(args, key)
    return DEFAULTS[key] if value is None else value


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m pilot.plan_cmd ...``): the CLI's ``plan``."""
    from pilot.cli import main as cli_main

    return cli_main(["plan", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
