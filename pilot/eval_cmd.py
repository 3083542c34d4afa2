"""`pilot eval`: play evaluation episodes and write the summary leaderboards read."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pilot.errors import UserError
from pilot.playing import (
    add_acting_flags,
    add_builtin_flags,
    check_at_least,
    check_device,
    check_epsilon,
    check_writable,
    choose_acting,
    default_folder,
    play_env,
    plural,
    read_target,
    trained_label,
    training_step,
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``eval`` on the CLI's subparsers."""
    e = subparsers.add_parser("eval", help="evaluate a trained agent: mean, std, 95%% bootstrap CI")
    e.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    e.add_argument(
        "--episodes",
        type=int,
        default=10,
        help="episodes per seed: the evaluation plays episodes × seeds (default 10 × 3 = 30)",
    )
    e.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="env seeds, each >= 0 (default 0 1 2); each seed's env plays --episodes episodes",
    )
    add_builtin_flags(e)
    add_acting_flags(
        e, "default: the Atari protocol's, 0.05 for deepmind and 0.001 for machado; else 0"
    )
    e.add_argument("--protocol", choices=["deepmind", "machado"], help="Atari evaluation protocol")
    e.add_argument(
        "--max-steps", type=int, default=None, help="cut each episode at this many steps"
    )
    e.add_argument("--out", help="results folder (default: RUN_DIR/eval/<time>)")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help='ray: each seed\'s episodes as a Ray task (same episodes; pip install -e ".[ray]")',
    )
    e.add_argument("--address", help="ray: join this cluster (auto or ray://host:port)")
    e.add_argument("--num-cpus", type=int, help="ray: CPUs of the local Ray (default: all)")
    return e


def _check(args: argparse.Namespace) -> dict[str, Any]:
    """Every argument, before anything imports torch; returns the target's metadata."""
    check_at_least(args.episodes, 1, "--episodes")
    negative = [s for s in args.seeds if s < 0]
    if negative:
        raise UserError(f"--seeds must be >= 0, got {negative[0]}")
    repeated = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
    if repeated:
        raise UserError(
            f"--seeds lists {repeated[0]} more than once (it would replay the same episodes)"
        )
    check_at_least(args.max_steps, 1, "--max-steps")
    check_epsilon(args.epsilon)
    check_device(args.device)
    if args.backend != "ray" and (args.address or args.num_cpus is not None):
        raise UserError("--address and --num-cpus size the Ray backend; add --backend ray")
    check_at_least(args.num_cpus, 1, "--num-cpus")
    if args.backend == "ray":
        from pilot.ray_backend import require_ray

        require_ray()
    meta = read_target(args.target, args.env, args.overrides)
    from pilot.envs import is_atari

    if args.protocol and not is_atari(meta["env_id"]):
        raise UserError(f"--protocol applies to Atari envs, not {meta['env_id']}")
    folder = (
        Path(args.out)
        if args.out
        else default_folder(meta) / "eval" / time.strftime("%Y%m%d-%H%M%S")
    )
    if folder.exists() and not folder.is_dir():
        raise UserError(
            f"--out {folder} is a file; give a folder for episodes.csv and summary.json"
        )
    if (folder / "episodes.csv").exists() and not (folder / "summary.json").exists():
        raise UserError(
            f"--out {folder} holds an episodes.csv that is not an evaluation's "
            "(a run directory?); choose another folder"
        )
    check_writable(folder / "summary.json", "--out")
    meta["_folder"] = folder
    return meta


def run(args: argparse.Namespace) -> int:
    meta = _check(args)
    env_id = meta["env_id"]
    from pilot.envs import is_atari, make_env

    atari = is_atari(env_id)
    env_kwargs, protocol, mapping = play_env(meta, args.protocol)
    acting = choose_acting(args, env_id, protocol)
    probe = make_env(env_id, **env_kwargs)  # the action set, before anything plays
    n_actions = getattr(probe.action_space, "n", None)
    table = probe.unwrapped.minimal_action_indices if mapping != "none" else None
    probe.close()
    if acting.epsilon > 0 and n_actions is None:
        raise UserError(f"--epsilon needs discrete actions; {env_id} has continuous ones")

    from pilot.eval.evaluate import (
        driving_summary,
        end_counts,
        run_episodes,
        success_rate,
        write_results,
    )
    from pilot.playing import load_for_playing, policy
    from pilot.progress import Progress

    agent, loaded = load_for_playing(args.target, args.device, meta)
    if table is not None and len(table) != int(agent.action_space.n):
        raise UserError(
            f"the agent has {agent.action_space.n} actions, the game's minimal set "
            f"{len(table)}: cannot map them onto the full action set"
        )
    total = args.episodes * len(args.seeds)
    seeds = ", ".join(str(s) for s in args.seeds)
    print(
        f"evaluating {agent.name} on {env_id} ({trained_label(meta)}): "
        f"{plural(args.episodes, 'episode')} per seed × {plural(len(args.seeds), 'seed')} "
        f"({seeds}) = {plural(total, 'episode')}; {acting.describe()}",
        flush=True,
    )
    if table is not None:
        print(
            f"  on the full {n_actions}-action set ({protocol} protocol): the agent's "
            f"{len(table)} minimal actions are sent as their full-set indices",
            flush=True,
        )

    play = policy(agent, acting.sample, table)

    bar = Progress(total, desc="eval", unit="ep")

    def progress(done: int, steps: int) -> None:
        bar.set_postfix_str(f"{steps:,} steps", refresh=False)
        bar.update(done - bar.n)

    start = time.perf_counter()
    try:
        if args.backend == "ray":
            from pilot.eval_seeds import SeedJob, play_on_ray

            jobs = [
                SeedJob(args.target, args.device, meta, env_id, env_kwargs, table,
                        acting.sample, acting.epsilon, args.episodes, args.max_steps, seed)
                for seed in args.seeds
            ]  # fmt: skip
            results = play_on_ray(jobs, args.address, args.num_cpus, bar.update)
        else:
            results = run_episodes(
                play,
                env_id,
                args.seeds,
                args.episodes,
                env_kwargs,
                args.max_steps,
                progress=progress,
                epsilon=acting.epsilon,
            )
    finally:
        bar.close()
    summary_meta = {
        "algo": agent.name,
        "env_id": env_id,
        "checkpoint": str(loaded.path),
        "checkpoint_step": training_step(meta),
        "seeds": args.seeds,
        "episodes_per_seed": args.episodes,
        "episodes_total": total,
        "acting": acting.describe(),
        "deterministic": not acting.sample and acting.epsilon == 0,
        "sampled": acting.sample,
        "epsilon": acting.epsilon,
        "protocol": protocol,
        "full_action_space": env_kwargs.get("full_action_space") if atari else None,
        "action_mapping": mapping if atari else None,
        "max_steps": args.max_steps,
        "backend": args.backend,
        "env_kwargs": env_kwargs,
        "wall_s": round(time.perf_counter() - start, 2),
    }
    csv_path, json_path, summary = write_results(meta["_folder"], results, summary_meta)
    print(
        f"{agent.name} on {env_id} ({trained_label(meta)}), "
        f"{plural(len(results), 'episode')} over seeds {args.seeds}, {acting.describe()}:"
    )
    print(f"  {summary.line()}")
    ends = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in end_counts(results).items())
    print(f"  ended: {ends}")
    rate = success_rate(results)
    if rate is not None:
        print(f"  success {rate:.1%} ({sum(bool(r.success) for r in results)}/{len(results)})")
    driving = driving_summary(results)
    if driving is not None:
        print(
            f"  Driving Score {driving['driving_score']:.1f} "
            f"({driving['driving_score_without_min_speed']:.1f} without the minimum-speed "
            "test), route completion "
            f"{driving['route_completion']:.1f}%, infraction penalty "
            f"{driving['infraction_penalty']:.3f}, {driving['infractions_per_km']:.2f} "
            "infractions/km"
        )
    print(f"  results: {csv_path}  {json_path}")
    return 0
