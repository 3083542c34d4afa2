"""`pilot leaderboard`: evaluate a grid of entries × tracks × seeds and report it.

    pilot leaderboard run SPEC.yaml [--out RESULTS] [--backend local|ray] [--address A]
    pilot leaderboard report RESULTS [--out DIR]

``run`` plays every (entry, track, seed) cell of the spec that has no valid record yet,
writes each record once (atomically, with its provenance), then writes the report;
run it again after an interruption and it plays only what is missing. ``report`` writes
Markdown, CSV, JSON and a self-contained HTML page from the records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pilot.errors import UserError

EXAMPLES = """examples:
  pilot leaderboard run driving                  # a shipped spec (eval/leaderboards/*.yaml)
  pilot leaderboard run my_spec.yaml --out results/my_board
  pilot leaderboard run driving --backend ray    # cells as Ray tasks (pip install -e ".[ray]")
  pilot leaderboard report runs/leaderboards/driving
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``leaderboard`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "leaderboard",
        help="evaluate entries × tracks × seeds from a spec; tables, plots, HTML report",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    r = sub.add_parser("run", help="play every cell of a spec that has no valid record yet")
    r.add_argument("spec", metavar="SPEC", help="a spec file, or a shipped spec's name")
    r.add_argument("--out", help="results folder (default: runs/leaderboards/<spec name>)")
    r.add_argument("--backend", choices=["local", "ray"], default="local")
    r.add_argument("--address", help="ray: join this cluster (auto or ray://host:port)")
    r.add_argument("--num-cpus", type=int, help="ray: CPUs of the local Ray (default: all)")
    r.add_argument(
        "--threads",
        type=int,
        help="local: torch CPU threads for the cells played here (default: the cores idle "
        "when the grid starts; give 1 to each of several runs sharing a machine); a Ray "
        "task takes one CPU and one thread",
    )
    r.add_argument("--no-report", action="store_true", help="play only; no report at the end")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    rep = sub.add_parser("report", help="write the report of a results folder")
    rep.add_argument("results", metavar="RESULTS")
    rep.add_argument("--out", help="report folder (default: RESULTS/report)")
    return p


def run(args: argparse.Namespace) -> int:
    if args.action == "run":
        return _run(args)
    if args.action == "report":
        return _report(Path(args.results), Path(args.out) if args.out else None)
    raise UserError("missing ACTION: run or report (see `pilot leaderboard --help`)")


def _run(args: argparse.Namespace) -> int:
    from pilot.eval.leaderboards.spec import load_spec
    from pilot.playing import check_writable

    if args.address and args.backend != "ray":
        raise UserError("--address joins a Ray cluster; add --backend ray")
    if args.num_cpus is not None and args.num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, got {args.num_cpus}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if args.threads is not None and args.backend != "local":
        raise UserError(
            "--threads is for the local backend; a Ray task takes one CPU and one thread"
        )
    spec = load_spec(args.spec)
    results = Path(args.out) if args.out else Path("runs") / "leaderboards" / spec.name
    if results.exists() and not results.is_dir():
        raise UserError(f"--out {results} is a file; give a folder for the records")
    check_writable(results / "leaderboard.json", "--out")
    if args.backend == "ray":
        from pilot.ray_backend import require_ray

        require_ray()  # before any work: the one-line install hint

    from pilot.eval.leaderboards.run import plan_grid, supersede

    plan = plan_grid(spec, results)
    where = args.backend
    if args.backend == "local":
        # a network played at batch 1 wants cores nobody else uses (README: two runs on
        # 2 cores, 2 threads each, 25.5 s for a pair of cells; 1 thread each, 22-24 s)
        from pilot.threads import set_torch_threads

        threads, why = set_torch_threads(args.threads)
        where = f"local, {threads} torch thread{'s' * (threads > 1)}: {why}"
    print(
        f"leaderboard {spec.name}: {len(spec.entries)} entries × {len(spec.tracks)} tracks × "
        f"{len(spec.seeds)} seeds = {plan.total} records; {len(plan.done)} done, "
        f"{len(plan.todo)} to play ({where})",
        flush=True,
    )
    for entry, track, why in plan.not_played:
        print(f"  {entry} does not play {track}: {why}")
    for job, why in plan.redo:
        moved = supersede(job)
        print(f"  {job.label}: {why}; playing it again (old record kept in {moved})")
    _write_spec_info(results, spec)
    failures, busy = _play(plan.todo, args)
    if busy:
        print(f"  left to another run on {results}, which is playing them: {', '.join(busy)}")
    played = len(plan.todo) - len(failures) - len(busy)
    if not args.no_report and (plan.done or played > 0):
        _report(results, None)  # not when no cell was played: no record to report
    if failures:
        print(f"pilot: {len(failures)} of {len(plan.todo)} cells failed:", file=sys.stderr)
        for label, error in failures:
            print(f"  {label}: {error}", file=sys.stderr)
        return 1
    return 0


def _play(jobs: list, args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[str]]:
    """``(failed cells with their errors, cells another process was playing)``."""
    from pilot.eval.leaderboards.backends import execute
    from pilot.progress import Progress

    failures: list[tuple[str, str]] = []
    busy: list[str] = []
    if not jobs:
        return failures, busy
    bar = Progress(len(jobs), desc="leaderboard", unit="record", enabled=not args.no_progress)

    def done(outcome) -> None:
        if outcome.error is not None:
            failures.append((outcome.job.label, outcome.error))
        elif outcome.result.get("busy"):
            busy.append(outcome.job.label)
        bar.set_postfix_str(f"{outcome.job.label} done, {len(failures)} failed", refresh=False)
        bar.update(1)

    def moving(text: str) -> None:
        bar.set_postfix_str(text, refresh=False)
        bar.update(0)

    try:
        execute(jobs, args.backend, args.address, args.num_cpus, done, moving)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\ninterrupted: {bar.n:.0f} of {len(jobs)} records written; run the same "
            "command again to play the rest",
            file=sys.stderr,
        )
        raise
    finally:
        bar.close()
    return failures, busy


def _write_spec_info(results: Path, spec) -> None:
    from dataclasses import asdict

    from pilot.agents.common.checkpoint import versions
    from pilot.files import atomic_write
    from pilot.runs import git_commit

    results.mkdir(parents=True, exist_ok=True)
    info = {
        "spec": spec.name,
        "description": spec.description,
        "source": spec.source,
        "seeds": list(spec.seeds),
        "episodes": spec.episodes,
        "entries": [asdict(e) for e in spec.entries],
        "tracks": [asdict(t) for t in spec.tracks],
        "git_commit": git_commit(),
        "versions": versions(),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write(results / "leaderboard.json", json.dumps(info, indent=1, default=str).encode())


def _report(results: Path, out: Path | None) -> int:
    from pilot.eval.leaderboards.aggregate import aggregate
    from pilot.eval.leaderboards.report import write_report
    from pilot.eval.leaderboards.run import load_records

    if not results.is_dir():
        raise UserError(f"no such results folder: {results}")
    records = load_records(results)
    meta = {}
    info = results / "leaderboard.json"
    if info.is_file():
        try:
            meta = json.loads(info.read_text())
        except ValueError:
            raise UserError(f"{info} is not readable JSON") from None
    model = aggregate(records, _readable(meta))
    paths = write_report(model, out or results / "report")
    print(f"report: {', '.join(str(p) for p in paths.values())}")
    return 0


def _readable(info: dict) -> dict:
    """leaderboard.json as the report's header shows it: entries and tracks in words."""
    meta = dict(info)
    words = []
    for e in info.get("entries") or []:
        if e.get("builtin"):
            words.append(f"{e['name']} (built-in {e['builtin']})")
        elif e.get("checkpoint"):
            words.append(f"{e['name']} ({e['checkpoint']})")
        else:
            recipe = dict(e.get("train") or [])
            steps = f", {recipe['steps']:,} steps" if "steps" in recipe else ""
            words.append(f"{e['name']} (trained: {recipe.get('algo')}{steps})")
    if words:
        meta["entries"] = "; ".join(words)
    if info.get("tracks"):
        meta["tracks"] = "; ".join(
            f"{t['name']} ({t['env']}{', ' + t['protocol'] if t.get('protocol') else ''})"
            for t in info["tracks"]
        )
    return meta
