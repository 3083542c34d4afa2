"""`pilot train`: train an agent into a run directory, or --resume one."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

from pilot.errors import TrainingDiverged, UserError

EXIT_DIVERGED = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` on the CLI's subparsers."""
    t = subparsers.add_parser("train", help="train an agent (or --resume a run)")
    t.add_argument("algo", nargs="?", help="algorithm: dqn, ppo, a2c, reinforce, mcts")
    t.add_argument("--env", help="environment id, e.g. CartPole-v1 or pilot/Atari-Pong-v0")
    t.add_argument("--steps", type=int, help="total agent steps (default: the preset's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto", help="auto, cpu or cuda")
    t.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 for vector observations, all cores for images)",
    )
    t.add_argument("--config", help="YAML file of config values (over the preset)")
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (repeatable), e.g. --set lr=3e-4",
    )
    t.add_argument(
        "--resume", metavar="RUN_DIR", help="continue this run from its latest checkpoint"
    )
    t.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--help-config", action="store_true", help="list the algorithm's config keys and exit"
    )

    return t


def run(args: argparse.Namespace) -> int:
    import torch

    from pilot import runs
    from pilot.agents import build_config, get_algorithm, load_agent, save_agent
    from pilot.agents.common.recorder import Recorder
    from pilot.config import describe, load_yaml, parse_overrides, to_dict
    from pilot.envs import check_id

    if args.threads is not None and args.threads < 1:
        raise UserError("--threads must be at least 1")
    if args.resume:
        for flag in ("algo", "env", "config"):
            if getattr(args, flag):
                raise UserError(f"--resume continues a run as it was configured; drop '{flag}'")
        if args.overrides:
            raise UserError("--resume continues a run as it was configured; drop --set")
        run = runs.open_run(args.resume)
        agent, loaded = load_agent(run.checkpoints, device=args.device, weights_only=False)
        total = args.steps if args.steps is not None else int(run.info["total_steps"])
        if total <= agent.step:
            raise UserError(
                f"run is already at step {agent.step}; pass --steps above that to train on"
            )
        run.update_info(total_steps=total, resumed=run.info.get("resumed", []) + [agent.step])
        print(
            f"resuming {run.path} at step {agent.step:,} (checkpoint {loaded.path.name}), to {total:,}"
        )
    else:
        if not args.algo or not args.env:
            raise UserError("train needs ALGO and --env (or --resume RUN_DIR)")
        cls = get_algorithm(args.algo)
        if args.help_config:
            print(f"{cls.name} config keys (set with --set KEY=VALUE or --config FILE.yaml):")
            for name, tname, default, text in describe(cls.Config):
                print(f"  {name:<22} {tname:<10} {default!r:<14} {text}")
            return 0
        check_id(args.env)
        file_values = load_yaml(args.config) if args.config else {}
        config = build_config(args.algo, args.env, file_values, parse_overrides(args.overrides))
        total = args.steps if args.steps is not None else config.steps
        if total < 1:
            raise UserError("--steps must be at least 1")
        agent = cls(args.env, config, seed=args.seed, device=args.device)
        run = runs.create(
            args.runs_dir,
            cls.name,
            args.env,
            args.seed,
            {"algo": cls.name, "env_id": args.env, "seed": args.seed, **to_dict(config)},
            total_steps=total,
            device=str(agent.device),
            command=" ".join(sys.argv),
        )
        print(f"run directory: {run.path}")

    def save(a: Any) -> None:
        save_agent(a, run.checkpoints, run=run.path.name)

    _set_threads(args.threads, agent)
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
    ret = recorder.mean_recent_return
    success = (
        f", success {recorder.success_rate:.0%} of the last {len(recorder.recent_success)}"
        if recorder.recent_success
        else ""
    )
    print(
        f"trained to step {agent.step:,} in {elapsed:.1f} s ({sps:,.0f} steps/s); "
        f"mean return of last {len(recorder.recent)} episodes: {'-' if math.isnan(ret) else f'{ret:.2f}'}"
        f"{success}"
    )
    # the run directory was printed at the start; end with what to do with it
    print(f"  watch: pilot watch {run.path}\n  eval:  pilot eval {run.path}")
    return status


def _set_threads(threads: int | None, agent: Any) -> None:
    """Pick torch's CPU threads: small vector-input nets run fastest on one thread.

    On a machine whose cores are also busy stepping envs, a second intra-op thread makes
    small matmuls wait on each other; measured on 2 cores with one busy, PPO on CartPole ran
    8,700 steps/s on one thread and ~150 on two (Stable-Baselines3: 4,060 vs 198).
    """
    import torch

    from pilot.agents.common.networks import is_image_space

    if threads is not None:
        torch.set_num_threads(threads)
    elif agent.device.type == "cpu":
        spaces = getattr(agent.observation_space, "spaces", {"obs": agent.observation_space})
        if not any(is_image_space(s) for s in spaces.values()):
            torch.set_num_threads(1)


def _latest(folder: Path) -> str:
    from pilot.agents.common import checkpoint

    try:
        return str(checkpoint.resolve(folder))
    except UserError:
        return "none (no checkpoint was written before the failure)"
