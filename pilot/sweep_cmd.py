"""`pilot sweep`: train a hyperparameter grid x seeds as ordinary runs, spread over Ray.

The spec (a YAML file, flags, or both: flags win) is checked in full before Ray starts:
the keys, the algorithm, the env id and every trial's config. Then each unfinished trial
becomes a Ray task (or a Tune trial under ASHA) declaring its CPU/GPU share; the sweep
folder's ``sweep.json`` is rewritten as each one ends, so Ctrl-C and ``--resume`` lose no
finished trial and unfinished ones continue from their checkpoints (see pilot.sweep).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

from pilot.errors import UserError

EXIT_FAILED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``sweep`` on the CLI's subparsers."""
    s = subparsers.add_parser(
        "sweep",
        help="train a grid of configs x seeds as runs on Ray (a local Ray or a cluster)",
        description="Train every combination of --grid values and --seeds as ordinary run "
        "directories, in parallel on Ray; print mean and 95%% CI per config.",
    )
    s.add_argument("spec", nargs="?", metavar="SPEC.yaml", help="sweep spec; flags override it")
    s.add_argument("--algo", help="algorithm: dqn, ppo, a2c, reinforce, mcts")
    s.add_argument("--env", help="environment id, such as CartPole-v1")
    s.add_argument("--seeds", help="seeds: a range 0-4 or a list 0,2,7 (default 0)")
    s.add_argument(
        "--grid",
        action="append",
        metavar="KEY=V1,V2",
        help="config values to sweep (repeatable); trials are every combination",
    )
    s.add_argument("--steps", type=int, help="step budget of each trial (default: preset's)")
    s.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="a config value every trial shares (repeatable), as in pilot train",
    )
    s.add_argument("--scheduler", choices=["none", "asha"], help="asha: stop weak trials early")
    s.add_argument("--cpus-per-trial", type=float, help="CPUs each trial declares (default 1)")
    s.add_argument("--gpus-per-trial", type=float, help="GPUs each trial declares (default 0)")
    s.add_argument("--max-retries", type=int, help="restarts of a trial whose worker died (2)")
    s.add_argument("--name", help="sweep name (default: the spec's file name, or ENV__ALGO)")
    s.add_argument("--out", help="sweep folder (default: runs/sweeps/NAME)")
    s.add_argument(
        "--address", help="join a running Ray cluster: auto or ray://HOST:PORT (default: local)"
    )
    s.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    s.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="SWEEP_DIR",
        help="continue a sweep: finished trials are kept, the others resume",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    return s


_FLAGS = {
    "algo": "algo",
    "env": "env",
    "seeds": "seeds",
    "steps": "steps",
    "scheduler": "scheduler",
    "cpus_per_trial": "cpus_per_trial",
    "gpus_per_trial": "gpus_per_trial",
    "max_retries": "max_retries",
    "name": "name",
    "out": "out",
}


def run(args: argparse.Namespace) -> int:
    from pilot import sweep

    folder, state = _prepare(args)
    return _execute(args, folder, state, sweep.load_spec(state["spec"], str(folder / "sweep.json")))


# ------------------------------------------------------------------------ checks
def _spec_from_args(args: argparse.Namespace) -> tuple[Any, str | None]:
    from pilot import sweep
    from pilot.config import load_yaml, merge, parse_overrides

    spec_path = args.spec
    if isinstance(args.resume, str) and args.resume.endswith((".yaml", ".yml")) and not spec_path:
        spec_path = args.resume  # `pilot sweep --resume SPEC.yaml`
    data = load_yaml(spec_path, empty_ok=False) if spec_path else {}
    for flag, key in _FLAGS.items():
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    if args.grid:
        data["grid"] = {**(data.get("grid") or {}), **sweep.parse_grid_flags(args.grid)}
    if args.overrides:
        data["set"] = merge(data.get("set") or {}, parse_overrides(args.overrides))
    return sweep.load_spec(data, spec_path or "pilot sweep"), spec_path


def _prepare(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The sweep folder and its state: a new sweep checked in full, or the one to resume."""
    from pilot import runs, sweep

    if args.num_cpus is not None and args.num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, got {args.num_cpus}")
    resume_dir = args.resume if isinstance(args.resume, str) else None
    if resume_dir and not resume_dir.endswith((".yaml", ".yml")):
        given = [f"--{f.replace('_', '-')}" for f in _FLAGS if getattr(args, f) is not None]
        given += ["SPEC"] if args.spec else []
        given += ["--grid"] if args.grid else []
        given += ["--set"] if args.overrides else []
        if given:
            raise UserError(
                f"--resume SWEEP_DIR continues a sweep as it was given; drop {given[0]}"
            )
        folder = Path(resume_dir)
        return folder, sweep.load_state(folder)
    spec, spec_path = _spec_from_args(args)
    trials = sweep.plan_trials(spec)  # every check happens here, before Ray starts
    name = sweep.default_name(spec, spec_path)
    folder = Path(spec.out or Path("runs") / "sweeps" / name)
    if args.resume:
        state = sweep.load_state(folder)
        if [t["id"] for t in state["trials"]] != [t["id"] for t in trials]:
            raise UserError(
                f"the spec no longer gives the trials of the sweep in {folder}; resume it "
                f"as it was with: pilot sweep --resume {folder}"
            )
        return folder, state
    if (folder / sweep.STATE).exists():
        raise UserError(
            f"{folder} already holds a sweep; continue it with `pilot sweep --resume {folder}` "
            "or choose another --name/--out"
        )
    runs.check_root(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = sweep.new_state(dataclasses.replace(spec, name=name), trials)
    sweep.save_state(folder, state)
    return folder, state


# ------------------------------------------------------------------------- driving
def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def _execute(args: argparse.Namespace, folder: Path, state: dict[str, Any], spec: Any) -> int:
    from pilot import ray_backend, sweep
    from pilot.progress import Progress

    ray_backend.require_ray()
    trials = state["trials"]
    todo = [i for i, t in enumerate(trials) if t["status"] not in sweep.FINISHED]
    command = " ".join(["pilot", *sys.argv[1:]])
    device = "cuda" if spec.gpus_per_trial > 0 else "cpu"
    jobs = [
        sweep.TrialJob(
            id=trials[i]["id"],
            folder=str((folder / trials[i]["id"]).resolve()),
            algo=spec.algo,
            env=spec.env,
            config=trials[i]["config"],
            seed=trials[i]["seed"],
            device=device,
            command=command,
            sweep=spec.name or folder.name,
        )
        for i in todo
    ]
    done_before = len(trials) - len(todo)
    print(
        f"sweep {folder}: {len(trials)} trials ({done_before} finished before), "
        f"{spec.cpus_per_trial:g} CPU / {spec.gpus_per_trial:g} GPU each"
        + (", ASHA" if spec.scheduler == "asha" else "")
    )
    bar = Progress(
        len(trials), desc="sweep", unit="trial", initial=done_before, enabled=not args.no_progress
    )
    tally = {"done": done_before, "failed": 0, "best": -math.inf, "best_id": "", "slots": 1}

    def postfix() -> None:
        left = len(trials) - tally["done"] - tally["failed"]
        best = f"{tally['best']:.1f} ({tally['best_id']})" if tally["best_id"] else "-"
        bar.set_postfix_str(
            f"{tally['done']} finished, {min(left, tally['slots'])} running, "
            f"{tally['failed']} failed, best {best}"
        )

    def score(trial_id: str, value: float) -> None:
        if math.isfinite(value) and value > tally["best"]:
            tally["best"], tally["best_id"] = value, trial_id

    def on_done(k: int, outcome: Any) -> None:
        t = trials[todo[k]]
        found = sweep.run_dirs(folder / t["id"])
        step = sweep.checkpoint_step(found[0]) if found else 0
        if found:
            t["run_dir"] = str(found[0].relative_to(folder))
            t["final_return"], t["episodes"] = sweep.final_return(found[0])
            t["step"] = step
        if isinstance(outcome, BaseException):
            t.update(status="failed", error=_one_line(outcome))
            tally["failed"] += 1
        else:  # ASHA ends a trial early without an error: it did not reach its budget
            full = step >= int(t["config"]["steps"])
            t.update(status="done" if full else "stopped", error=None)
            tally["done"] += 1
            score(t["id"], t.get("final_return", math.nan))
        sweep.save_state(folder, state)
        postfix()
        bar.update(1)

    status = 0
    try:
        with ray_backend.ray_session(args.address, args.num_cpus):
            tally["slots"] = ray_backend.cluster_slots(spec.cpus_per_trial, spec.gpus_per_trial)
            postfix()
            resources = {
                "num_cpus": spec.cpus_per_trial,
                "num_gpus": spec.gpus_per_trial,
                "max_retries": spec.max_retries,
                "on_done": on_done,
            }
            if spec.scheduler == "asha":
                steps = int(trials[0]["config"]["steps"])
                outcomes = ray_backend.tune_map(
                    sweep.run_trial,
                    jobs,
                    names=[j.id for j in jobs],
                    storage_path=str(folder.resolve()),
                    max_t=steps,
                    grace_period=spec.asha_grace_period or max(1, steps // 8),
                    reduction_factor=spec.asha_reduction_factor,
                    on_result=lambda k, _step, value: (score(jobs[k].id, value), postfix()),
                    **resources,
                )
                if any(o == "unfinished" for o in outcomes):
                    raise KeyboardInterrupt  # Tune stopped early on a SIGINT of its own
            else:
                ray_backend.map_tasks(sweep.run_trial, jobs, **resources)
    except KeyboardInterrupt:
        status = 130
    finally:
        bar.close()
        for t in trials:
            if t["status"] not in (*sweep.FINISHED, "failed"):
                t["status"] = "interrupted" if status else t["status"]
        sweep.save_state(folder, state)
    if status:
        print(f"\nsweep interrupted; trials keep their checkpoints. Continue with: "
              f"pilot sweep --resume {folder}")  # fmt: skip
        return status
    return _report(folder, state)


def _report(folder: Path, state: dict[str, Any]) -> int:
    from pilot import sweep

    rows = sweep.summarize(state, folder)
    sweep.write_summary(folder, rows)
    print(sweep.format_summary(rows))
    failed = [t for t in state["trials"] if t["status"] == "failed"]
    for t in failed:
        print(f"failed: {t['id']}: {t['error']} (log: {folder / t['id'] / 'trial.log'})")
    print(f"summary: {folder / 'summary.csv'}; runs: {folder}/*/  (tensorboard --logdir {folder})")
    return EXIT_FAILED if failed else 0
