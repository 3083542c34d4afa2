"""The `pilot` command line: list, train, watch, eval, plan, bench.

The parser and dispatch live here, each command in its ``*_cmd`` module; these are the only
places that read argv or the environment. A user mistake ends with a
one-line ``pilot: error: ...`` on stderr and exit code 2; a run whose training diverges
stops with exit code 1 and keeps its last good checkpoint.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

from pilot import (
    eval_cmd,
    leaderboard_cmd,
    perception_cmd,
    plan_cmd,
    sweep_cmd,
    train_cmd,
    watch_cmd,
)
from pilot.errors import UserError, close_matches
from pilot.threads import quiet_openmp

EXIT_USER = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        wrong = re.match(r"argument .*: invalid choice: '(.*)' \(choose from (.*)\)$", message)
        if wrong:  # name the close choices first; argparse lists them all in order
            choices = re.findall(r"'([^']*)'", wrong.group(2))
            message += close_matches(wrong.group(1), choices)
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pilot", description="Train agents, watch rollouts, evaluate.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="registered environments and algorithms")

    train_cmd.add_parser(sub)
    watch_cmd.add_parser(sub)
    eval_cmd.add_parser(sub)
    plan_cmd.add_parser(sub)
    perception_cmd.add_parser(sub)
    sweep_cmd.add_parser(sub)
    leaderboard_cmd.add_parser(sub)

    b = sub.add_parser(
        "bench", help="run a benchmark from bench/ (pilot and its peers side by side)"
    )
    b.add_argument("name", nargs="?", help="benchmark name; without one, list them")
    b.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    return p


# --------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from pilot.agents import ALGORITHMS, BUILTIN
    from pilot.envs import list_envs

    envs = list_envs()
    width = max(len(k) for k in envs)
    print("Environments:")
    for env_id, text in envs.items():
        print(f"  {env_id:<{width}}  {text}")
    print("\nAlgorithms:")
    for name, (_, text) in ALGORITHMS.items():
        print(f"  {name:<{width}}  {text}")
    print("\nBuilt-in agents (no training; `pilot eval NAME --env ID`):")
    for name, (_, text) in BUILTIN.items():
        print(f"  {name:<{width}}  {text}")
    return 0


# --------------------------------------------------------------------------- bench
def _summary(origin: str | None) -> str:
    """First line of a benchmark script's docstring, without reST markup."""
    try:
        doc = (
            ast.get_docstring(ast.parse(Path(origin).read_text(encoding="utf-8")))
            if origin
            else None
        )
    except (OSError, SyntaxError, ValueError):
        doc = None
    return (doc or "").strip().splitlines()[0].replace("``", "`") if doc else ""


def cmd_bench(args: argparse.Namespace) -> int:
    """``pilot bench NAME ARGS...`` runs ``bench/NAME.py`` as a script; no NAME lists them."""
    import importlib
    import pkgutil
    import runpy

    package = importlib.import_module("pilot.bench")
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
    if not args.name:
        width = max(len(n) for n in names)
        for name in names:
            spec = importlib.util.find_spec(f"pilot.bench.{name}")
            print(f"{name:<{width}}  {_summary(spec.origin if spec else None)}")
        print("run one: pilot bench NAME [--help]")
        return 0
    if args.name not in names:
        raise UserError(
            f"unknown benchmark '{args.name}'{close_matches(args.name, names)}; "
            f"choose from {', '.join(names)}"
        )
    argv = sys.argv
    # argparse inside the script names itself after argv[0]; alter_sys=True would replace
    # it with the script's file path
    sys.argv = [f"pilot bench {args.name}", *args.args]
    # the script's own argparse reports a bad flag the way pilot does: one line, exit 2
    script_error = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _Parser.error  # type: ignore[method-assign]
    try:
        runpy.run_module(f"pilot.bench.{args.name}", run_name="__main__", alter_sys=False)
    except SystemExit as exc:  # argparse --help / errors inside the script
        if exc.code is None:
            return 0
        if isinstance(exc.code, int):
            return exc.code
        print(exc.code, file=sys.stderr)  # sys.exit("message"): Python prints it, status 1
        return 1
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] != "pilot":  # a peer package, not our bug
            raise UserError(
                f"benchmark '{args.name}' needs the package '{exc.name}', which is not "
                'installed; install the peers with: pip install -e ".[bench]"'
            ) from None
        raise
    finally:
        sys.argv = argv
        argparse.ArgumentParser.error = script_error  # type: ignore[method-assign]
    return 0


COMMANDS = {
    "list": cmd_list,
    "train": train_cmd.run,
    "watch": watch_cmd.run,
    "eval": eval_cmd.run,
    "plan": plan_cmd.run,
    "perception": perception_cmd.run,
    "sweep": sweep_cmd.run,
    "leaderboard": leaderboard_cmd.run,
    "bench": cmd_bench,
}


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if not args.command:
            raise UserError(f"missing COMMAND, one of {', '.join(COMMANDS)} (see `pilot --help`)")
        quiet_openmp()  # every command that loads torch: idle threads sleep, not spin
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"pilot: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("pilot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`pilot list | head -3`): stop quietly, and point stdout at
        # /dev/null so the interpreter's final flush does not fail a second time
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell tool killed by the closed pipe returns


if __name__ == "__main__":
    sys.exit(main())
