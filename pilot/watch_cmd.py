"""`pilot watch`: render rollouts of a trained agent, live or to a video."""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import Any

from pilot.errors import UserError
from pilot.playing import (
    EXPLAIN_METHODS,
    add_acting_flags,
    add_builtin_flags,
    check_at_least,
    check_device,
    check_epsilon,
    check_writable,
    choose_acting,
    default_folder,
    plural,
    read_target,
    trained_label,
    training_step,
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``watch`` on the CLI's subparsers."""
    w = subparsers.add_parser("watch", help="render rollouts of a trained agent")
    w.add_argument("target", metavar="RUN_DIR_OR_CHECKPOINT")
    w.add_argument("--episodes", type=int, default=1, help="episodes to play (default 1)")
    add_builtin_flags(w)
    add_acting_flags(
        w, "default: the Atari protocol's, 0.05 for deepmind and 0.001 for machado; else 0"
    )
    w.add_argument("--seed", type=int, default=0, help="env seed (>= 0)")
    w.add_argument("--out", help="video path (.mp4 or .gif); default: RUN_DIR/videos/...")
    w.add_argument(
        "--format",
        choices=["mp4", "gif", "both"],
        default=None,
        help="video format without --out (default mp4); with --out its suffix decides",
    )
    w.add_argument(
        "--live",
        choices=["auto", "yes", "no"],
        default="auto",
        help="live window: auto = when a display exists and no --out is given",
    )
    w.add_argument(
        "--max-steps", type=int, default=None, help="cut each episode at this many steps"
    )
    w.add_argument(
        "--max-seconds",
        type=float,
        default=120.0,
        help="cut each episode's video at this length at --fps (default 120: two minutes)",
    )
    w.add_argument("--fps", type=int, default=None, help="frames per second (default: the env's)")
    w.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    w.add_argument(
        "--show-probs", action="store_true", help="draw the action distribution under the frame"
    )
    w.add_argument(
        "--explain",
        nargs="?",
        const="ig",
        choices=EXPLAIN_METHODS,
        metavar="{ig,gradcam}",
        help="draw beside each frame a saliency map of the chosen action over the agent's "
        "image input (ig: integrated gradients, the default; gradcam: Grad-CAM on the last "
        "convolution); agents with image observations only",
    )
    return w


def _check(args: argparse.Namespace, has_display: bool) -> tuple[dict[str, Any], list[Path]]:
    """Every argument, before anything imports torch or plays: (target metadata, video
    paths; none for a live window)."""
    from pilot import video

    check_at_least(args.episodes, 1, "--episodes")
    check_at_least(args.seed, 0, "--seed")
    check_at_least(args.max_steps, 1, "--max-steps")
    check_epsilon(args.epsilon)
    check_at_least(args.fps, 1, "--fps")
    if not args.max_seconds > 0 or not math.isfinite(args.max_seconds):
        raise UserError(f"--max-seconds must be a positive number, got {args.max_seconds:g}")
    if args.live == "yes" and not has_display:
        raise UserError("--live yes needs a display (DISPLAY/WAYLAND_DISPLAY is not set)")
    if args.live == "yes" and args.out:
        raise UserError("--live yes shows a window; drop --out, or use --live no to write it")
    paths: list[Path] = []
    if args.out:
        out = video.check_video_path(args.out)
        if args.format and args.format != out.suffix.lower()[1:]:
            raise UserError(f"--format {args.format} does not match --out {out}")
        paths = [out]
    check_device(args.device)
    meta = read_target(args.target, args.env, args.overrides)
    live = args.live == "yes" or (args.live == "auto" and has_display and not args.out)
    if live:
        return meta, []
    if not paths:
        step = training_step(meta)
        trained = "builtin" if step is None else f"step{step}"
        stem = default_folder(meta) / "videos" / f"watch_{trained}_{time.strftime('%Y%m%d-%H%M%S')}"
        fmt = args.format or "mp4"
        paths = [stem.with_suffix(s) for s in ([".mp4", ".gif"] if fmt == "both" else [f".{fmt}"])]
    for path in paths:
        check_writable(path, "--out" if args.out else "the video")
    return meta, paths


def run(args: argparse.Namespace) -> int:
    from pilot import video

    meta, paths = _check(args, video.has_display())
    from pilot.envs import make_env
    from pilot.eval.evaluate import EpsilonGreedy

    if paths:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # off-screen rendering, no window
    env_id = meta["env_id"]
    env_kwargs = {k: v for k, v in (meta["config"].get("env") or {}).items() if k != "training"}
    env = make_env(env_id, render_mode="rgb_array", **env_kwargs)
    sink = window = None
    try:
        if args.explain:
            from pilot.playing import check_explainable

            check_explainable(env.observation_space, env_id)
        fps = args.fps or int(env.metadata.get("render_fps", 30) or 30)
        cap = max(1, math.ceil(args.max_seconds * fps))
        acting = choose_acting(args, env_id, env_kwargs.get("protocol", "deepmind"))
        n_actions = getattr(env.action_space, "n", None)
        if acting.epsilon > 0 and n_actions is None:
            raise UserError(f"--epsilon needs discrete actions; {env_id} has continuous ones")
        from pilot.playing import load_for_playing

        agent, _ = load_for_playing(args.target, args.device, meta)
        explainer = None
        if args.explain:
            from pilot.playing import ActionExplainer

            explainer = ActionExplainer(agent, args.explain, env.observation_space)
        print(
            f"watching {meta['algo']} on {env_id} ({trained_label(meta)}): "
            f"{plural(args.episodes, 'episode')} from seed {args.seed}, {acting.describe()}; "
            f"at most {plural(cap, 'frame')} per episode ({args.max_seconds:g} s at {fps} fps)",
            flush=True,
        )
        explore = EpsilonGreedy(acting.epsilon, n_actions or 1, args.seed)
        player = _Player(
            args, env, agent, trained_label(meta, ""), acting, explore, cap, fps, explainer
        )
        if paths:
            sink = video.VideoWriter(paths, fps)
            frames = player.play(sink.append)
        else:
            window = video.LiveWindow(f"pilot watch — {env_id}", fps)
            frames = player.play(window.show)
    except BaseException:
        if sink is not None:
            sink.close(keep=False)
        raise
    finally:
        env.close()
        if window is not None:
            window.close()
    if window is not None:
        print(f"showed {plural(frames, 'frame')} live")
        return 0
    sink.close(keep=frames > 0)
    if not frames:
        raise UserError(f"{env_id} gave no rgb_array frames: no video written")
    for path in sink.paths:
        print(f"video: {path} ({plural(frames, 'frame')}, {frames / fps:.1f} s)")
    return 0


class _Player:
    """Plays the episodes, handing each captioned frame to a sink (a video writer, or a
    live window whose ``show`` returns False once closed), and says how each one ended."""

    def __init__(
        self, args, env, agent, trained: str, acting, explore, cap: int, fps: int, explainer=None
    ) -> None:
        self.args, self.env, self.agent, self.trained = args, env, agent, trained
        self.acting, self.explore, self.cap, self.fps = acting, explore, cap, fps
        self.explainer = explainer  # saliency maps of the chosen action, or None
        if acting.sample:
            self.mode = "sampled"
        else:
            self.mode = f"ε-greedy {acting.epsilon:g}" if acting.epsilon else "greedy"

    def play(self, sink) -> int:
        """Frames shown or written; 0 when the env renders nothing."""
        from pilot.progress import Progress

        args, env = self.args, self.env
        bar = Progress(args.episodes * self.cap, desc="watch", unit="frame")
        frames = 0
        try:
            for ep in range(args.episodes):
                # seeded once; later episodes draw from the env's own generator, as in eval
                obs, _ = env.reset(seed=args.seed if ep == 0 else None)
                _show_plan(env)
                t, why = self._episode(obs, ep, sink, bar)
                frames += t
                if t == 0 and why == "no frames":
                    return 0
                bar.total -= self.cap - t
                print(f"episode {ep + 1}: return {self.ret:.2f}, {plural(t, 'step')}, {why}")
                if why == "window closed":
                    break
        finally:
            bar.close()
        return frames

    def _episode(self, obs, ep: int, sink, bar) -> tuple[int, str]:
        """Play one episode from ``obs``: (frames, why it ended)."""
        import numpy as np

        from pilot import video
        from pilot.eval.evaluate import end_reason
        from pilot.playing import act, batch1

        args, env, agent = self.args, self.env, self.agent
        labels = getattr(env.unwrapped, "action_meanings", None)  # Atari: NOOP, FIRE, ...
        self.ret, t = 0.0, 0
        while True:
            batch = batch1(obs)
            chosen = act(agent, batch, not self.acting.sample, [env])[0]
            action = self.explore(chosen)
            picture = _watch_picture(env, video, agent)
            if picture is None:
                return t, "no frames"
            picture = video.fit_frame(picture)
            if self.explainer is not None:  # the network's choice, before any ε
                h = picture.shape[0] - 24
                panels = [
                    (title, video.heat_overlay(image, heat, h))
                    for title, image, heat in self.explainer(batch, chosen)
                ]
                picture = video.beside(picture, panels)
            frame = video.caption(
                picture,
                [
                    f"{agent.name} {self.trained}  ({self.mode})",
                    f"ep {ep + 1}/{args.episodes}  t {t}  return {self.ret:.1f}",
                ],
            )
            if args.show_probs:
                probs = agent.action_distribution(batch)
                if probs is not None:
                    chart = video.bar_chart(probs[0], labels, frame.shape[1])
                    frame = np.concatenate([frame, chart], axis=0)
            if sink(frame) is False:
                return t, "window closed"
            bar.update(1)
            obs, r, term, trunc, info = env.step(action)
            self.ret += float(r)
            t += 1
            if term or trunc:
                return t, end_reason(info, term, trunc).replace("_", " ")
            if args.max_steps is not None and t >= args.max_steps:
                return t, f"cut by --max-steps {args.max_steps}"
            if t >= self.cap:
                seconds = f"{self.cap / self.fps:g} s at {self.fps} fps"
                return t, f"cut at {plural(self.cap, 'frame')} ({seconds}; --max-seconds)"


def _watch_picture(env: Any, video: Any, agent: Any = None):
    """The env's rendered frame, or, where the env offers its sensors' pictures (the
    driving world: camera, lidar, BEV), those side by side with their titles; a planning
    agent's plan (the modular stack's) is drawn on the BEV."""
    panels = getattr(env.unwrapped, "sensor_panels", None)
    if panels is None:
        return env.render()
    from pilot.plan_drawing import with_plan

    return video.panel_row(with_plan(panels(), agent, env))


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
