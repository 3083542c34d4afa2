"""The `pilot` command line: list, train, watch, eval, plan, bench.

The parser and dispatch live here, each command in its ``*_cmd`` module; these are the only
places that read argv or the environment. A user mistake ends with a
one-line ``pilot: error: ...`` on stderr and exit code 2; a run whose training diverges
stops with exit code 1 and keeps its last good checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pilot import eval_cmd, plan_cmd, train_cmd, watch_cmd
from pilot.errors import UserError, close_matches

EXIT_USER = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pilot", description="Train agents, watch rollouts, evaluate.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="registered environments and algorithms")

    train_cmd.add_parser(sub)
    watch_cmd.add_parser(sub)
    eval_cmd.add_parser(sub)
    plan_cmd.add_parser(sub)

    b = sub.add_parser(
        "bench", help="run a benchmark from bench/ (pilot and its peers side by side)"
    )
    b.add_argument("name", nargs="?", help="benchmark name; without one, list them")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    return p


# --------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from pilot.agents import ALGORITHMS
    from pilot.envs import list_envs

    envs = list_envs()
    width = max(len(k) for k in envs)
    print("Environments:")
    for env_id, text in envs.items():
        print(f"  {env_id:<{width}}  {text}")
    print("\nAlgorithms:")
    for name, (_, text) in ALGORITHMS.items():
        print(f"  {name:<{width}}  {text}")
    return 0


# --------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    """``pilot bench NAME ARGS...`` runs ``bench/NAME.py`` as a script; no NAME lists them."""
    import importlib
    import pkgutil
    import runpy

    package = importlib.import_module("pilot.bench")
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    if not args.name:
        for name in names:
            spec = importlib.util.find_spec(f"pilot.bench.{name}")
            source = Path(spec.origin).read_text() if spec and spec.origin else ""
            doc = source.split('"""')[1].strip().splitlines()[0] if '"""' in source else ""
            print(f"{name:<12} {doc}")
        print("run one: pilot bench NAME [--help]")
        return 0
    if args.name not in names:
        raise UserError(f"unknown benchmark '{args.name}'{close_matches(args.name, names)}")
    argv = sys.argv
    # argparse inside the script names itself after argv[0]; alter_sys=True would replace
    # it with the script's file path
    sys.argv = [f"pilot bench {args.name}", *args.args]
    try:
        runpy.run_module(f"pilot.bench.{args.name}", run_name="__main__", alter_sys=False)
    except SystemExit as exc:  # argparse --help / errors inside the script
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.argv = argv
    return 0


COMMANDS = {
    "list": cmd_list,
    "train": train_cmd.run,
    "watch": watch_cmd.run,
    "eval": eval_cmd.run,
    "plan": plan_cmd.run,
    "bench": cmd_bench,
}


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_USER
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"pilot: error: {exc}", file=sys.stderr)
        return EXIT_USER


if __name__ == "__main__":
    sys.exit(main())
