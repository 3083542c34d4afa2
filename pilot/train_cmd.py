"""`pilot train`: train an agent into a run directory, or --resume one.

Everything a user can get wrong is checked before torch is imported — argument values, the
files, the algorithm, the env id, every config key and value, the checkpoint to resume —
so a mistake is answered in a fraction of a second instead of after torch's import. The
step budget has one home, the config's ``steps`` (``--steps`` sets it), which config.yaml,
run.json and the checkpoints all record.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from pilot.errors import TrainingDiverged, UserError, close_matches
from pilot.threads import set_torch_threads

EXIT_DIVERGED = 1
SEED_LIMIT = 2**32  # numpy, torch and the envs all take seeds in [0, 2**32)
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` on the CLI's subparsers."""
    t = subparsers.add_parser("train", help="train an agent (or --resume a run)")
    t.add_argument("algo", nargs="?", help="algorithm: dqn, ppo, a2c, reinforce, mcts")
    t.add_argument("--env", help="environment id, e.g. CartPole-v1 or pilot/Atari-Pong-v0")
    t.add_argument("--steps", type=int, help="total agent steps (default: the preset's)")
    t.add_argument("--seed", type=int, help="seed of the run (default 0)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 for vector observations; for images, the "
        "cores not busy with other work when training starts)",
    )
    t.add_argument("--config", help="YAML file of config values (over the preset)")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable), e.g. --set learning_rate=3e-4",
    )
    t.add_argument(
        "--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint"
    )
    t.add_argument(
        "--checkpoint",
        metavar="NAME",
        help="with --resume: continue from this checkpoint (e.g. step_000040000), not the latest",
    )
    t.add_argument(
        "--save-replay",
        action="store_true",
        help="dqn: save the replay buffer with each checkpoint, so --resume goes on learning "
        "at once (as large as the buffer: up to ~7.5 GB for the Atari preset)",
    )
    t.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--help-config",
        action="store_true",
        help="list the algorithm's config keys with their defaults (with --env: the values "
        "the preset, --config and --set give) and exit",
    )
    return t


@dataclasses.dataclass
class Plan:
    """What a checked command will do; nothing in it needed torch."""

    algo: str
    env_id: str
    config: Any  # the algorithm's config; its ``steps`` is the step budget
    seed: int
    save_replay: bool
    run: Any = None  # resume: the run directory (pilot.runs.Run)
    checkpoint: Path | None = None  # resume: the verified checkpoint file
    start_step: int = 0
    has_replay: bool = False  # resume: the checkpoint carries a replay buffer
    replay_steps: int = 0  # resume: the agent steps that saved buffer has collected


def run(args: argparse.Namespace) -> int:
    _check_values(args)
    plan = _plan_resume(args) if args.resume else _plan_new(args)
    if plan is None:  # --help-config
        return 0
    return _train(args, plan)


# ------------------------------------------------------------------------- checks
def _check_values(args: argparse.Namespace) -> None:
    """Argument values on their own (no files yet)."""
    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    cores = os.cpu_count() or 1
    if args.threads is not None and args.threads > 4 * cores:
        raise UserError(f"--threads {args.threads} is more than 4 per core ({cores} cores here)")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.seed is not None and not 0 <= args.seed < SEED_LIMIT:
        raise UserError(f"--seed must lie in [0, 2**32), got {args.seed}")
    if not _DEVICE.match(args.device):
        hint = close_matches(args.device, ["auto", "cpu", "cuda"])
        raise UserError(f"unknown device '{args.device}'{hint}; use auto, cpu, cuda or cuda:N")
    if args.checkpoint and not args.resume:
        raise UserError("--checkpoint picks the checkpoint of --resume RUN_DIR; add --resume")
    if args.resume:
        flags = {"algo": "ALGO", "env": "--env", "config": "--config", "seed": "--seed"}
        given = [flag for f, flag in flags.items() if getattr(args, f) is not None]
        given += ["--set"] if args.overrides else []
        given += ["--help-config"] if args.help_config else []
        if given:
            raise UserError(f"--resume continues a run as it was configured; drop {given[0]}")


def _plan_new(args: argparse.Namespace) -> Plan | None:
    from pilot import runs
    from pilot.agents import algorithm_name, build_config, config_class
    from pilot.config import load_yaml, parse_overrides
    from pilot.envs import check_id

    if not args.algo or (not args.env and not args.help_config):
        raise UserError("train needs ALGO and --env (or --resume RUN_DIR)")
    algo = algorithm_name(args.algo)
    if args.env:
        check_id(args.env)
    file_values = load_yaml(args.config, empty_ok=False) if args.config else {}
    overrides = parse_overrides(args.overrides)
    if args.help_config and not args.env:
        _print_config(algo, config_class(algo), None, None)
        return None
    config = build_config(algo, args.env, file_values, overrides)
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps)
    if args.help_config:
        _print_config(algo, config_class(algo), config, args.env)
        return None
    runs.check_root(args.runs_dir)
    seed = args.seed if args.seed is not None else 0
    return Plan(algo, args.env, config, seed, save_replay=args.save_replay)


def _plan_resume(args: argparse.Namespace) -> Plan:
    from pilot import runs
    from pilot.agents import algorithm_name, config_class
    from pilot.agents.common import checkpoint as ckpt
    from pilot.config import from_dict
    from pilot.envs import check_id

    run = runs.open_run(args.resume)
    removed = run.clean_orphans()
    if removed:
        print(f"removed {len(removed)} unfinished temporary file(s) a killed save left behind")
    again = run.info.get("command") or "pilot train ALGO --env ENV ..."
    folder = run.checkpoints
    if not args.checkpoint and not (folder / "latest.json").is_file():
        intact = ckpt.newest_intact(folder) if folder.is_dir() else None
        if intact is None:
            raise UserError(
                f"{run.path} has no checkpoint yet: the run stopped before its first save; "
                f"start it again: {again}"
            )
        raise UserError(
            f"{folder} lacks latest.json; resume from its newest intact checkpoint with: "
            f"pilot train --resume {run.path} --checkpoint {intact.stem}"
        )
    try:
        pt, meta = ckpt.verify(run.path, args.checkpoint)
    except ckpt.CheckpointRefused as exc:
        if exc.intact is None:
            raise UserError(f"{exc}; no intact checkpoint is left: start again: {again}") from None
        raise UserError(
            f"{exc}; resume from it with: pilot train --resume {run.path} "
            f"--checkpoint {exc.intact.stem}"
        ) from None
    for key in ("algo", "env_id", "config", "step"):
        if key not in meta:
            raise UserError(f"{pt} metadata lacks '{key}': not a pilot agent checkpoint")
    algo = algorithm_name(str(meta["algo"]))
    check_id(meta["env_id"])
    config = from_dict(config_class(algo), meta["config"])
    step = int(meta["step"])
    total = args.steps or int(run.info.get("total_steps") or config.steps)
    if total <= step:
        raise UserError(f"run is already at step {step:,}; pass --steps above that to train on")
    return Plan(
        algo,
        meta["env_id"],
        dataclasses.replace(config, steps=total),
        int(meta.get("seed", 0)),
        save_replay=args.save_replay or bool(run.info.get("save_replay")),
        run=run,
        checkpoint=pt,
        start_step=step,
        has_replay="replay" in meta,
        replay_steps=int((meta.get("replay") or {}).get("collected", 0)),
    )


def _warn_short_budget(plan: Plan, steps_given: bool) -> None:
    """One line when the budget ends before the first update or the first metrics row."""
    cfg, start, total = plan.config, plan.start_step, plan.config.steps
    need = max(cfg.n_envs, cfg.steps_before_learning() - plan.replay_steps)
    every = cfg.log_every
    late_log = every > 0 and (start // every + 1) * every > total
    budget = f"--steps {total:,}" if steps_given else f"the budget of {total:,} steps"
    if total - start < need:
        where = f"after {need:,} steps" + (" from the resume" if start else "")
        print(
            f"pilot: warning: {budget} ends before {plan.algo}'s first update, which comes "
            f"{where} with this config: this run will learn nothing (raise --steps, or see "
            f"`pilot train {plan.algo} --help-config`)",
            file=sys.stderr,
        )
    elif late_log:
        print(
            f"pilot: warning: {budget} ends before the first metrics row (log_every "
            f"{every:,}): metrics.csv will stay empty (--set log_every=N logs more often)",
            file=sys.stderr,
        )


def _print_config(algo: str, cls: type, config: Any, env_id: str | None) -> None:
    from pilot.config import describe

    if config is None:
        print(f"{algo} config keys and defaults (set with --set KEY=VALUE or --config FILE.yaml;")
        print(f"  `pilot train {algo} --env ENV --help-config` shows what a preset sets):")
    else:
        print(f"{algo} config for {env_id} (preset <- --config <- --set; * differs from default):")
    defaults = cls()  # defaults as a config holds them (env: {} rather than None)
    for name, tname, default, text in describe(cls):
        if config is None:
            print(f"  {name:<26} {tname:<12} {default!r:<14} {text}")
            continue
        value, default = config, defaults
        for part in name.split("."):
            value, default = getattr(value, part), getattr(default, part)
        mark = "*" if value != default else " "
        print(f"  {name:<26} {tname:<12} {mark}{value!r:<14} {text}")


# ------------------------------------------------------------------------ threads
def _choose_threads(requested: int | None, agent: Any) -> tuple[int, str]:
    """Set torch's CPU threads; returns the count and why, for the header line.

    Small vector nets run fastest on one thread (measured on 2 cores with one busy: PPO on
    CartPole 8,700 steps/s on one thread, ~150 on two). Image nets gain from more threads
    only on cores nobody else uses: see bench/threads.py.
    """
    from pilot.agents.common.networks import is_image_space

    spaces = getattr(agent.observation_space, "spaces", {"obs": agent.observation_space})
    image = any(is_image_space(s) for s in spaces.values())
    threads, why = set_torch_threads(requested, image)
    return threads, f"image network; {why}" if image and requested is None else why


# ------------------------------------------------------------------------- training
def _train(args: argparse.Namespace, plan: Plan) -> int:
    import torch

    from pilot import runs
    from pilot.agents import get_algorithm, load_agent, restore_replay, save_agent
    from pilot.agents.common.recorder import Recorder
    from pilot.config import to_dict

    cls = get_algorithm(plan.algo)
    if plan.save_replay and not cls.has_replay:
        raise UserError(f"--save-replay: {plan.algo} keeps no replay buffer")
    total = plan.config.steps
    if plan.run is None:
        agent = cls(plan.env_id, plan.config, seed=plan.seed, device=args.device)
    else:
        agent, loaded = load_agent(
            plan.checkpoint, device=args.device, weights_only=False, config=plan.config
        )
    _warn_short_budget(plan, args.steps is not None)  # once the env is known to fit
    threads, why = _choose_threads(args.threads, agent)
    if plan.run is None:
        run = runs.create(
            args.runs_dir,
            plan.algo,
            plan.env_id,
            plan.seed,
            {"algo": plan.algo, "env_id": plan.env_id, "seed": plan.seed, **to_dict(plan.config)},
            total_steps=total,
            device=str(agent.device),
            threads=threads,
            save_replay=plan.save_replay,
            command=" ".join(sys.argv),
        )
        print(f"run directory: {run.path}")
    else:
        run = plan.run
        run.set_steps(total)
        resumed = run.info.get("resumed", []) + [agent.step]
        run.update_info(resumed=resumed, save_replay=plan.save_replay, threads=threads)
        print(
            f"resuming {run.path} at step {agent.step:,} (checkpoint {loaded.path.name}), "
            f"to {total:,}"
        )
        if plan.has_replay:
            try:
                held = restore_replay(agent, loaded)
                print(f"replay buffer restored: {held:,} transitions")
            except UserError as exc:
                print(f"pilot: warning: {exc}; starting with an empty buffer", file=sys.stderr)
    print(
        f"{plan.algo} on {plan.env_id}, seed {plan.seed}: {total:,} steps on {agent.device}, "
        f"{threads} torch thread{'s' if threads > 1 else ''} ({why})"
    )

    def save(a: Any) -> None:
        save_agent(a, run.checkpoints, replay=plan.save_replay, run=run.path.name)

    recorder = Recorder(
        run.path,
        total,
        start_step=agent.step,
        checkpoint_every=agent.config.checkpoint_every,
        save=save,
        progress_bar=not args.no_progress,
    )
    start, start_step = time.perf_counter(), agent.step
    torch.set_float32_matmul_precision("high")
    status = 0
    try:
        agent.learn(total, recorder)
        recorder.maybe_checkpoint(agent, force=True)
    except TrainingDiverged as exc:
        recorder.close()  # before printing, so the progress bar does not swallow the line
        last = _latest(run.checkpoints)
        print(f"pilot: training stopped: {exc}; last good checkpoint: {last}", file=sys.stderr)
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        recorder.maybe_checkpoint(agent, force=True)
        print(
            f"\ninterrupted at step {agent.step:,}; saved. Continue with: pilot train --resume {run.path}"
        )
        status = 130
    finally:
        recorder.close()
    elapsed = time.perf_counter() - start
    sps = (agent.step - start_step) / max(elapsed, 1e-9)
    print(
        f"trained to step {agent.step:,} in {elapsed:.1f} s ({sps:,.0f} steps/s); "
        f"{_episodes_summary(recorder)}"
    )
    # the run directory was printed at the start; end with what to do with it
    print(f"  watch: pilot watch {run.path}\n  eval:  pilot eval {run.path}")
    return status


def _episodes_summary(recorder: Any) -> str:
    n = len(recorder.recent)
    if n == 0:
        return "no episode finished"
    text = f"mean return of the last {n} episode{'s' if n > 1 else ''}: {recorder.mean_recent_return:.2f}"
    if recorder.recent_success:
        text += f", success {recorder.success_rate:.0%} of the last {len(recorder.recent_success)}"
    return text


def _latest(folder: Path) -> str:
    from pilot.agents.common import checkpoint

    try:
        return str(checkpoint.resolve(folder))
    except UserError:
        return "none (no checkpoint was written before the failure)"
