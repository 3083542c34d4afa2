"""Sweeps: many ordinary training runs (a hyperparameter grid x seeds), spread over Ray.

A sweep folder (``runs/sweeps/<name>/``) holds::

    sweep.json        the spec, every trial (params, seed, folder, status, error) and
                      the final return of each finished one; rewritten as trials end
    summary.json/csv  per config: mean and 95% bootstrap CI over seeds of the final return
    <trial>/          one folder per trial (``learning_rate=0.0003__seed1``), holding
                      the trial's run directory (exactly what ``pilot train`` makes), its
                      ``trial.log`` (the run's own output) and ``attempts.log``
    tune/             Ray Tune's experiment files (only with the ASHA scheduler)

A trial is a pure function of its folder: it trains a new run there, or resumes the run it
finds from the run's latest checkpoint (same step counter, as ``pilot train --resume``).
That is what makes retries after a killed worker, Ctrl-C and ``pilot sweep --resume`` all
the same thing, and why a trial is never written twice: a run that died before its first
checkpoint is removed and started again. The final return of a run is the mean of its last
100 training episodes (``episodes.csv``), the number ``pilot train`` ends with.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import itertools
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pilot.config import _FLOAT, field, from_dict, merge, to_dict
from pilot.errors import UserError
from pilot.runs import run_dirs
from pilot.threads import quiet_openmp

FORMAT = "pilot-sweep/1"
STATE = "sweep.json"
PID_FILE = "worker.pid"
RECENT = 100  # episodes behind a run's final return, as the Recorder keeps them
SEED_LIMIT = 2**32
FINISHED = ("done", "stopped")  # a resumed sweep skips these


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """What a sweep trains: the keys of a spec YAML, the same as ``pilot sweep``'s flags."""

    algo: str = field("", "algorithm: dqn, ppo, a2c, reinforce, mcts")
    env: str = field("", "environment id, such as CartPole-v1")
    seeds: tuple[int, ...] | int | str = field("0", "seeds: a list, one number or a range '0-4'")
    grid: dict | None = field(None, "config key -> list of values; trials are every combination")
    steps: int | None = field(None, "step budget of every trial (default: the preset's)")
    set: dict | None = field(None, "config values every trial shares (like pilot train --set)")
    scheduler: Literal["none", "asha"] = field("none", "none: every trial runs to the end")
    asha_grace_period: int | None = field(None, "steps before ASHA may stop a trial (steps/8)")
    asha_reduction_factor: float = field(3.0, "ASHA keeps 1 of this many trials at each rung")
    cpus_per_trial: float = field(1.0, "CPUs each trial declares to Ray")
    gpus_per_trial: float = field(0.0, "GPUs each trial declares to Ray (0: train on the CPU)")
    max_retries: int = field(2, "times a trial whose worker died is started again")
    name: str | None = field(None, "sweep name (default: the spec file's name, or env__algo)")
    out: str | None = field(None, "sweep folder (default: runs/sweeps/<name>)")


@dataclasses.dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to train (or resume) one trial; no torch inside."""

    id: str
    folder: str  # absolute: Ray workers and Tune trials may run in another directory
    algo: str
    env: str
    config: dict[str, Any]  # resolved config (preset <- set <- grid point), steps included
    seed: int
    device: str
    command: str
    sweep: str


# ------------------------------------------------------------------------- the spec
def load_spec(data: dict[str, Any], where: str) -> SweepSpec:
    """A spec from a mapping (a YAML file or the flags); unknown keys name close matches."""
    try:
        spec = from_dict(SweepSpec, {str(k).replace("-", "_"): v for k, v in data.items()})
    except UserError as exc:  # from_dict speaks of configs; this is a sweep spec
        text = str(exc).replace("config key", "sweep key").replace(" for SweepSpec", "")
        raise UserError(f"{where}: {text}") from None
    if not spec.algo or not spec.env:
        raise UserError(f"{where}: a sweep needs an algo and an env")
    return spec


def parse_seeds(value: Any) -> list[int]:
    """``'0-4'``, ``'0,2,7'``, ``3`` or ``[0, 1]`` -> a list of distinct seeds."""
    if isinstance(value, int):
        seeds = [value]
    elif isinstance(value, tuple | list):
        seeds = list(value)
    else:
        seeds = []
        for part in str(value).split(","):
            m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
            if not m or (m[2] and int(m[2]) < int(m[1])):
                raise UserError(f"seeds: '{value}' is not a list like 0-4 or 0,2,7")
            seeds += range(int(m[1]), int(m[2] or m[1]) + 1)
    if not seeds:
        raise UserError("seeds: no seed given")
    if any(not 0 <= s < SEED_LIMIT for s in seeds) or len(set(seeds)) < len(seeds):
        raise UserError(f"seeds must be distinct and lie in [0, 2**32), got {seeds}")
    return seeds


def _scalar(value: Any) -> Any:
    return float(value) if isinstance(value, str) and _FLOAT.fullmatch(value.strip()) else value


def parse_grid_flags(pairs: list[str]) -> dict[str, list[Any]]:
    """``['learning_rate=1e-4,3e-4']`` -> ``{'learning_rate': [0.0001, 0.0003]}``."""
    import yaml

    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--grid expects key=v1,v2,..., got '{pair}'")
        values = [v for v in raw.split(",") if v.strip()]
        try:
            grid[key.strip()] = [_scalar(yaml.safe_load(v)) for v in values]
        except yaml.YAMLError:
            raise UserError(f"--grid {pair}: a value is not readable") from None
    return grid


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{'net.hidden': x}`` -> ``{'net': {'hidden': x}}``, as ``--set`` spells keys."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def _label(params: dict[str, Any]) -> str:
    text = ",".join(f"{k}={v}" for k, v in params.items()) or "default"
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)


def plan_trials(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every trial of ``spec``, checked in full before any work starts: the algorithm,
    the env id and the whole config of every grid point (keys and values)."""
    from pilot.agents import algorithm_name, build_config
    from pilot.envs import check_id

    algo = algorithm_name(spec.algo)
    check_id(spec.env)
    seeds = parse_seeds(spec.seeds)
    grid = spec.grid
    if grid is not None:
        if not grid:
            raise UserError("the grid is empty: give at least one key with values")
        for key, values in grid.items():
            if not isinstance(values, list | tuple) or not values:
                raise UserError(f"grid key '{key}' needs a non-empty list of values")
    keys = list(grid or {})
    points = [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid or {}).values())
    ]
    if spec.steps is not None and spec.steps < 1:
        raise UserError(f"steps must be at least 1, got {spec.steps}")
    if spec.cpus_per_trial <= 0 or spec.gpus_per_trial < 0 or spec.max_retries < 0:
        raise UserError("cpus_per_trial must be above 0; gpus_per_trial, max_retries at least 0")
    trials = []
    for point in points:
        params = {k: _scalar(v) for k, v in point.items()}
        overrides = merge(_nest(dict(spec.set or {})), _nest(params))  # the grid wins
        config = build_config(algo, spec.env, {}, overrides)
        if spec.steps is not None:
            config = dataclasses.replace(config, steps=spec.steps)
        row = {"params": params, "config": to_dict(config), "status": "pending"}
        trials += [{"id": f"{_label(params)}__seed{s}", "seed": s, **row} for s in seeds]
    return trials


def default_name(spec: SweepSpec, spec_path: str | None) -> str:
    if spec.name:
        return spec.name
    if spec_path:
        return Path(spec_path).stem
    return f"{spec.env.replace('/', '-')}__{spec.algo}"


# ------------------------------------------------------------------------ the state
def new_state(spec: SweepSpec, trials: list[dict[str, Any]]) -> dict[str, Any]:
    spec_dict = to_dict(spec)
    spec_dict["seeds"] = parse_seeds(spec.seeds)
    return {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "spec": spec_dict,
        "trials": trials,
    }


def save_state(folder: Path, state: dict[str, Any]) -> None:
    from pilot.files import atomic_write

    atomic_write(folder / STATE, (json.dumps(state, indent=2) + "\n").encode())


def load_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / STATE
    if not path.is_file():
        raise UserError(f"{folder} holds no sweep ({STATE} missing)")
    try:
        state = json.loads(path.read_text())
    except ValueError as exc:
        raise UserError(f"{path} is unreadable: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path} is not a pilot sweep file")
    return state


# ----------------------------------------------------------------- one trial (worker)


def final_return(run_dir: str | Path) -> tuple[float, int]:
    """Mean return of the run's last 100 training episodes, and how many there were."""
    path = Path(run_dir) / "episodes.csv"
    if not path.is_file():
        return math.nan, 0
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    returns = []
    for row in rows[-RECENT:]:
        with contextlib.suppress(TypeError, ValueError):
            returns.append(float(row["return"]))
    return (sum(returns) / len(returns), len(returns)) if returns else (math.nan, 0)


def _reporting_recorder(report: Callable[[int, float], None] | None) -> type:
    from pilot.agents.common.recorder import Recorder

    class Reporting(Recorder):
        """A Recorder that also tells the scheduler the recent mean return at each log."""

        def log(self, step: int, metrics: dict[str, float]) -> None:
            super().log(step, metrics)
            if report is not None and self.recent:
                self.flush()  # the files hold what the scheduler judged, if it stops us
                report(step, self.mean_recent_return)

    return Reporting


def run_trial(job: TrialJob, report: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train ``job`` into its folder, resuming the run already there; runs on a worker.

    Its output goes to ``trial.log`` in the folder; the worker's pid goes to
    ``worker.pid`` and each start is a line of ``attempts.log``.
    """
    folder = Path(job.folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PID_FILE).write_text(f"{os.getpid()}\n")
    with (folder / "attempts.log").open("a") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()}\n")
    with (
        (folder / "trial.log").open("a") as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        return _train(job, folder, report)


def _train(
    job: TrialJob, folder: Path, report: Callable[[int, float], None] | None
) -> dict[str, Any]:
    from pilot import runs, train_cmd
    from pilot.agents import config_class, get_algorithm, load_agent, save_agent

    quiet_openmp()
    total = int(job.config["steps"])
    found = run_dirs(folder)
    if len(found) > 1:
        raise RuntimeError(f"{folder} holds {len(found)} runs; a trial has one")
    if found and not (found[0] / "checkpoints" / "latest.json").is_file():
        shutil.rmtree(found[0])  # killed before its first checkpoint: nothing to keep
        found = []
    if found:
        step = checkpoint_step(found[0])
        if step >= total:  # finished, but the driver never heard of it
            return _result(found[0], step)
        args = argparse.Namespace(
            resume=str(found[0]), checkpoint=None, steps=total, save_replay=False
        )
        plan = train_cmd._plan_resume(args)
    else:
        config = from_dict(
            config_class(job.algo),
            {k: v for k, v in job.config.items() if k not in ("algo", "env_id", "seed")},
        )
        plan = train_cmd.Plan(job.algo, job.env, config, job.seed, save_replay=False)
    cls = get_algorithm(plan.algo)
    if plan.run is None:
        agent = cls(plan.env_id, plan.config, seed=plan.seed, device=job.device)
    else:
        agent, _ = load_agent(
            plan.checkpoint, device=job.device, weights_only=False, config=plan.config
        )
    threads, _ = train_cmd._choose_threads(None, agent)
    if plan.run is None:
        run = runs.create(
            folder, plan.algo, plan.env_id, plan.seed,
            {"algo": plan.algo, "env_id": plan.env_id, "seed": plan.seed, **to_dict(plan.config)},
            total_steps=total, device=str(agent.device), threads=threads, save_replay=False,
            command=job.command, sweep={"name": job.sweep, "trial": job.id},
        )  # fmt: skip
    else:
        run = plan.run
        run.update_info(resumed=run.info.get("resumed", []) + [agent.step], threads=threads)
    print(f"{job.id}: {run.path} from step {agent.step:,} to {total:,}", flush=True)

    def save(a: Any) -> None:
        save_agent(a, run.checkpoints, run=run.path.name)

    recorder = _reporting_recorder(report)(
        run.path,
        total,
        start_step=agent.step,
        checkpoint_every=agent.config.checkpoint_every,
        save=save,
    )
    try:
        agent.learn(total, recorder)
        recorder.maybe_checkpoint(agent, force=True)
    except KeyboardInterrupt:  # asked to stop: keep what was learned
        recorder.maybe_checkpoint(agent, force=True)
        raise
    finally:
        recorder.close()
    return _result(run.path, agent.step)


def checkpoint_step(run_dir: str | Path) -> int:
    """The step of the run's latest checkpoint (0 without one)."""
    from pilot.agents.common import checkpoint as ckpt

    try:
        return int(ckpt.read_meta(run_dir).get("step", 0))
    except UserError:
        return 0


def _result(run_dir: Path, step: int) -> dict[str, Any]:
    ret, n = final_return(run_dir)
    return {"run_dir": str(run_dir), "step": step, "final_return": ret, "episodes": n}


# --------------------------------------------------------------------------- summary
def summarize(state: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """Per config: the final return over its finished seeds (mean, 95% bootstrap CI),
    read back from the run directories; the best mean is marked."""
    import numpy as np

    from pilot.eval.stats import bootstrap_ci

    groups: dict[str, dict[str, Any]] = {}
    for t in state["trials"]:
        key = json.dumps(t["params"], sort_keys=True)
        empty = dict(params=t["params"], returns=[], seeds=[], failed=0, stopped=0, unfinished=0)
        g = groups.setdefault(key, empty)
        if t["status"] == "done" and t.get("run_dir"):
            ret, _ = final_return(folder / t["run_dir"])
            g["returns"].append(ret)
            g["seeds"].append(t["seed"])
        else:
            g[t["status"] if t["status"] in ("failed", "stopped") else "unfinished"] += 1
    rows = []
    for g in groups.values():
        values = [r for r in g.pop("returns") if math.isfinite(r)]
        mean = float(np.mean(values)) if values else math.nan
        lo, hi = bootstrap_ci(values) if values else (math.nan, math.nan)
        rows.append(
            {**g, "n": len(values), "mean": mean, "ci_low": lo, "ci_high": hi, "best": False}
        )
    scored = [r for r in rows if math.isfinite(r["mean"])]
    if scored:
        max(scored, key=lambda r: r["mean"])["best"] = True
    return rows


def write_summary(folder: Path, rows: list[dict[str, Any]]) -> None:
    from pilot.files import atomic_write

    clean = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        for r in rows
    ]
    atomic_write(folder / "summary.json", (json.dumps(clean, indent=2) + "\n").encode())
    keys = sorted({k for r in rows for k in r["params"]})
    lines = [",".join([*keys, "n", "mean", "ci_low", "ci_high", "failed", "stopped", "best"])]
    for r in rows:
        cells = [str(r["params"].get(k, "")) for k in keys]
        cells += [str(r["n"]), *(f"{r[k]:.6g}" for k in ("mean", "ci_low", "ci_high"))]
        cells += [str(r["failed"]), str(r["stopped"]), "1" if r["best"] else "0"]
        lines.append(",".join(cells))
    atomic_write(folder / "summary.csv", ("\n".join(lines) + "\n").encode())


def format_summary(rows: list[dict[str, Any]]) -> str:
    """The table printed at the end of a sweep."""
    heads = ["config", "seeds", "final return (mean [95% CI])", "failed"]
    body = []
    for r in sorted(rows, key=lambda r: -r["mean"] if math.isfinite(r["mean"]) else math.inf):
        label = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "(preset)"
        score = (
            "-"
            if not math.isfinite(r["mean"])
            else f"{r['mean']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        )
        extra = f" +{r['stopped']} stopped" if r["stopped"] else ""
        body.append(
            [("* " if r["best"] else "  ") + label, f"{r['n']}{extra}", score, str(r["failed"])]
        )
    widths = [max(len(x) for x in col) for col in zip(heads, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*row).rstrip() for row in (heads, *body)]
    return "\n".join(lines) + "\n(* best mean; CI: percentile bootstrap over seeds)"
