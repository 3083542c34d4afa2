"""The `pilot` command line: list, train, watch, eval.

This is the only place that reads argv or the environment. A user mistake ends with a
one-line ``pilot: error: ...`` on stderr and exit code 2; a run whose training diverges
stops with exit code 1 and keeps its last good checkpoint.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from pilot import plan_cmd
from pilot.errors import TrainingDiverged, UserError, close_matches

EXIT_USER = 2
EXIT_DIVERGED = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports mistakes in one line instead of usage + error."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="pilot", description="Train agents, watch rollouts, evaluate.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("list", help="registered environments and algorithms")

    t = sub.add_parser("train", help="train an agent (or --resume a run)")
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

    w = sub.add_parser("watch", help="render rollouts of a trained agent")
    w.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    w.add_argument("--episodes", type=int, default=1)
    w.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_true",
        default=True,
        help="greedy/mean actions (default)",
    )
    w.add_argument(
        "--stochastic", dest="deterministic", action="store_false", help="sample actions"
    )
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--out", help="video path (.mp4 or .gif); default: RUN_DIR/videos/...")
    w.add_argument("--format", choices=["mp4", "gif", "both"], default="mp4")
    w.add_argument(
        "--live",
        choices=["auto", "yes", "no"],
        default="auto",
        help="live window: auto = when a display exists and no --out is given",
    )
    w.add_argument(
        "--max-steps", type=int, default=None, help="cut each episode at this many steps"
    )
    w.add_argument("--fps", type=int, default=None)
    w.add_argument("--device", default="auto")
    w.add_argument(
        "--show-probs", action="store_true", help="draw the action distribution under the frame"
    )

    e = sub.add_parser("eval", help="evaluate a trained agent: mean, std, 95%% bootstrap CI")
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


# --------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
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


def _load_for_playing(target: str, device: str):
    from pilot import runs
    from pilot.agents import load_agent

    agent, loaded = load_agent(target, device=device)
    run = runs.run_of_checkpoint(loaded.path)
    return agent, loaded, run


# --------------------------------------------------------------------------- watch
def cmd_watch(args: argparse.Namespace) -> int:
    import numpy as np

    from pilot import video
    from pilot.envs import make_env

    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    agent, loaded, run = _load_for_playing(args.target, args.device)
    live = args.live == "yes" or (args.live == "auto" and video.has_display() and not args.out)
    if args.live == "yes" and not video.has_display():
        raise UserError("--live yes needs a display (DISPLAY/WAYLAND_DISPLAY is not set)")
    if not live:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering, no window
    env_kwargs = {k: v for k, v in agent.config.env.items() if k != "training"}
    env = make_env(agent.env_id, render_mode="rgb_array", **env_kwargs)
    fps = args.fps or int(env.metadata.get("render_fps", 30) or 30)
    labels = getattr(env.unwrapped, "action_meanings", None)  # Atari: NOOP, FIRE, ...
    window = video.LiveWindow(f"pilot watch — {agent.env_id}", fps) if live else None
    frames: list[np.ndarray] = []
    returns = []
    try:
        obs, _ = env.reset(seed=args.seed)
        _show_plan(env)
        for ep in range(args.episodes):
            ret, t, done = 0.0, 0, False
            while not done:
                batch = _batch1(obs)
                action = _act(agent, batch, args.deterministic, [env])[0]
                frame = video.fit_frame(_watch_picture(env, video))
                frame = video.caption(
                    frame,
                    [
                        f"{agent.name} step {loaded.meta['step']:,}",
                        f"ep {ep + 1}  t {t}  return {ret:.1f}",
                    ],
                )
                if args.show_probs:
                    probs = agent.action_distribution(batch)
                    if probs is not None:
                        frame = np.concatenate(
                            [frame, video.bar_chart(probs[0], labels, frame.shape[1])], axis=0
                        )
                if window is not None:
                    if not window.show(frame):
                        break
                else:
                    frames.append(frame)
                obs, r, term, trunc, _ = env.step(action)
                ret += float(r)
                t += 1
                done = term or trunc or (args.max_steps is not None and t >= args.max_steps)
            returns.append(ret)
            print(f"episode {ep + 1}: return {ret:.2f}, length {t}")
            obs, _ = env.reset()
            _show_plan(env)
    finally:
        env.close()
        if window is not None:
            window.close()
    if window is not None:
        print(f"showed {window.shown} frames live")
        return 0
    if args.out:
        paths = [Path(args.out)]
    else:
        folder = (run.path if run else loaded.path.parent) / "videos"
        stem = folder / f"watch_step{loaded.meta['step']}_{time.strftime('%Y%m%d-%H%M%S')}"
        suffixes = [".mp4", ".gif"] if args.format == "both" else [f".{args.format}"]
        paths = [stem.with_suffix(s) for s in suffixes]
    for path in paths:
        video.write_video(frames, path, fps)
        print(f"video: {path} ({len(frames)} frames)")
    return 0


def _watch_picture(env: Any, video: Any):
    """The env's rendered frame, or, where the env offers its sensors' pictures (the
    driving world: camera, lidar, BEV), those side by side with their titles."""
    panels = getattr(env.unwrapped, "sensor_panels", None)
    if panels is None:
        return env.render()
    return video.panel_row(panels())


def _show_plan(env: Any) -> None:
    """On navigation worlds, draw the A* plan from start to goal under the robot's trail.

    The planner returns data; drawing it is the env's render (here, at the edge, we only
    hand the path over), so the video shows the plan and the agent following it or not.
    """
    from pilot.envs.navigation.env import ContinuousNavEnv, GridNavEnv

    base = env.unwrapped
    if not isinstance(base, GridNavEnv | ContinuousNavEnv):
        return
    from pilot.planning.grid import astar  # loads the compiled search: only where it is used

    path, info = astar(base.grid.blocked, base.start_cell, base.goal_cell)
    if info.success:
        # the grid robot takes (row, col) cells; the continuous robot metres (x, y)
        base.overlay_path = path if isinstance(base, GridNavEnv) else path[:, ::-1] + 0.5


def _act(agent: Any, batch: Any, deterministic: bool, envs: list) -> Any:
    """Actions for a batch; a searching agent (MCTS) also gets the live envs to plan from."""
    if agent.uses_simulator:
        return agent.act(batch, deterministic=deterministic, envs=envs)
    return agent.act(batch, deterministic=deterministic)


def _batch1(obs: Any) -> Any:
    import numpy as np

    if isinstance(obs, dict):
        return {k: np.asarray(v)[None] for k, v in obs.items()}
    return np.asarray(obs)[None]


# --------------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    from pilot.envs import is_atari
    from pilot.eval.evaluate import driving_summary, run_episodes, success_rate, write_results

    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    agent, loaded, run = _load_for_playing(args.target, args.device)
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

    def act(obs, envs):
        return _act(agent, obs, not args.stochastic, envs)

    start = time.perf_counter()
    results = run_episodes(
        act,
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
    "train": cmd_train,
    "watch": cmd_watch,
    "eval": cmd_eval,
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
