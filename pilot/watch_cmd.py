"""`pilot watch`: render rollouts of a trained agent, live or to a video."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from pilot.errors import UserError
from pilot.playing import act, batch1, load_for_playing


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``watch`` on the CLI's subparsers."""
    w = subparsers.add_parser("watch", help="render rollouts of a trained agent")
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

    return w


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from pilot import video
    from pilot.envs import make_env

    if args.episodes < 1:
        raise UserError("--episodes must be at least 1")
    agent, loaded, run = load_for_playing(args.target, args.device)
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
                batch = batch1(obs)
                action = act(agent, batch, args.deterministic, [env])[0]
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
