"""`pilot eval`: play evaluation episodes and write the summary leaderboards read."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pilot.errors import UserError
from pilot.playing import act, load_for_playing


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``eval`` on the CLI's subparsers."""
    e = subparsers.add_parser("eval", help="evaluate a trained agent: mean, std, 95%% bootstrap CI")
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument("--episodes", type=int, default=10, help="episodes per seed")
    e.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="env seeds (default 0 1 2)"
    )
    e.add_argument(
        "--stochastic", action="store_true", help="sample actions instead of greedy/mean"
    )
    e.add_argument("--protocol", choices=["deepmind", "machado"], help="Atari evaluation protocol")
    e.add_argument("--max-steps", type=int, default=None)
    e.add_argument("--out", help="results folder (default: RUN_DIR/eval/<time>)")
    e.add_argument("--device", default="auto")

    return e


def run(args: argparse.Namespace) -> int:
    from pilot.envs import is_atari
    from pilot.eval.evaluate import driving_summary, run_episodes, success_rate, write_results

    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    agent, loaded, run = load_for_playing(args.target, args.device)
    env_kwargs = {k: v for k, v in agent.config.env.items() if k != "training"}
    if args.protocol:
        if not is_atari(agent.env_id):
            raise UserError(f"--protocol applies to Atari envs, not {agent.env_id}")
        env_kwargs["protocol"] = args.protocol
        # Machado et al. use the full 18-action set; an agent trained on the minimal set
        # keeps its own action set (sticky actions and no life loss still apply).
        env_kwargs.setdefault("full_action_space", int(agent.action_space.n) == 18)
    total = args.episodes * len(args.seeds)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="ep", desc="eval", disable=not sys.stderr.isatty())

    def policy(obs, envs):
        return act(agent, obs, not args.stochastic, envs)

    start = time.perf_counter()
    results = run_episodes(
        policy,
        agent.env_id,
        args.seeds,
        args.episodes,
        env_kwargs,
        args.max_steps,
        progress=lambda n: bar.update(n - bar.n),
    )
    bar.close()
    meta = {
        "algo": agent.name,
        "env_id": agent.env_id,
        "checkpoint": str(loaded.path),
        "checkpoint_step": loaded.meta["step"],
        "seeds": args.seeds,
        "episodes_per_seed": args.episodes,
        "deterministic": not args.stochastic,
        "env_kwargs": env_kwargs,
        "wall_s": round(time.perf_counter() - start, 2),
    }
    if args.out:
        folder = Path(args.out)
    else:
        base = run.path if run else loaded.path.parent
        folder = base / "eval" / time.strftime("%Y%m%d-%H%M%S")
    csv_path, json_path, summary = write_results(folder, results, meta)
    print(
        f"{agent.name} on {agent.env_id} (checkpoint step {loaded.meta['step']:,}), "
        f"{len(results)} episodes over seeds {args.seeds}:"
    )
    print(f"  {summary.line()}")
    rate = success_rate(results)
    if rate is not None:
        print(f"  success {rate:.1%} ({sum(bool(r.success) for r in results)}/{len(results)})")
    driving = driving_summary(results)
    if driving is not None:
        print(
            f"  Driving Score {driving['driving_score']:.1f}, route completion "
            f"{driving['route_completion']:.1f}%, infraction penalty "
            f"{driving['infraction_penalty']:.3f}, {driving['infractions_per_km']:.2f} "
            "infractions/km"
        )
    print(f"  results: {csv_path}  {json_path}")
    return 0
