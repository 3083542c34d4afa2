"""Run a policy for evaluation episodes and keep per-episode results in the real score.

Episodes are laid out as (seed, index): for each seed one env is created and reset with
that seed once, then plays ``episodes_per_seed`` episodes in a row (later resets draw from
the env's own generator), so results are reproducible from the seed list alone. All seeds'
envs advance in lockstep so the policy sees one batch per step (one network call).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from pilot.envs import make_env
from pilot.envs.vector import episode_success, stack_obs

from .driving import DrivingScore, episode_score, mean_scores
from .stats import Summary, summarize


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    episode: int
    ret: float
    length: int
    terminated: bool
    success: bool | None = None  # the env's info["success"] at the episode's end, if it says
    driving: DrivingScore | None = None  # driving worlds: the route's leaderboard scores


def run_episodes(
    act: Callable[[Any, list[gym.Env]], np.ndarray],
    env_id: str,
    seeds: Sequence[int],
    episodes_per_seed: int,
    env_kwargs: dict[str, Any] | None = None,
    max_steps: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[EpisodeResult]:
    """Play ``episodes_per_seed`` episodes per seed with ``act(batch_obs, envs) -> actions``
    (``envs``: the envs behind the batch, in order, for agents that plan through them).

    ``max_steps`` cuts an episode short (recorded with ``terminated=False``); the env's
    own time limit applies otherwise.
    """
    kwargs = dict(env_kwargs or {})
    kwargs.pop("training", None)
    envs = [make_env(env_id, **kwargs) for _ in seeds]
    space = envs[0].observation_space
    try:
        obs = [env.reset(seed=int(s))[0] for env, s in zip(envs, seeds, strict=True)]
        done_count = [0] * len(envs)
        rets = [0.0] * len(envs)
        lens = [0] * len(envs)
        results: list[EpisodeResult] = []
        active = [episodes_per_seed > 0] * len(envs)
        while any(active):
            idx = [i for i, a in enumerate(active) if a]
            actions = act(stack_obs([obs[i] for i in idx], space), [envs[i] for i in idx])
            for j, i in enumerate(idx):
                o, r, term, trunc, info = envs[i].step(actions[j])
                rets[i] += float(r)
                lens[i] += 1
                cut = max_steps is not None and lens[i] >= max_steps
                if term or trunc or cut:
                    success = episode_success(info)
                    driving = (
                        episode_score(info, truncated=bool(trunc or cut) and not term)
                        if "route_completion" in info and "infraction_counts" in info
                        else None
                    )
                    results.append(
                        EpisodeResult(
                            int(seeds[i]),
                            done_count[i],
                            rets[i],
                            lens[i],
                            bool(term),
                            success,
                            driving,
                        )
                    )
                    if progress is not None:
                        progress(len(results))
                    done_count[i] += 1
                    rets[i], lens[i] = 0.0, 0
                    if done_count[i] >= episodes_per_seed:
                        active[i] = False
                        continue
                    o, _ = envs[i].reset()
                obs[i] = o
    finally:
        for env in envs:
            env.close()
    results.sort(key=lambda e: (e.seed, e.episode))
    return results


def success_rate(results: list[EpisodeResult]) -> float | None:
    """Share of episodes the env called a success; None when the env does not say."""
    known = [r.success for r in results if r.success is not None]
    return sum(known) / len(known) if known else None


_DRIVING_COLUMNS = (
    "driving_score",
    "route_completion",
    "infraction_penalty",
    "infractions_per_km",
    "outside_lane_fraction",
)


def driving_summary(results: list[EpisodeResult]) -> dict[str, float] | None:
    """Mean Driving Score, Route Completion, Infraction Penalty and infractions per km
    over the routes (driving worlds only; None elsewhere)."""
    scores = [r.driving for r in results if r.driving is not None]
    return mean_scores(scores) if scores else None


def write_results(
    folder: str | Path, results: list[EpisodeResult], meta: dict[str, Any]
) -> tuple[Path, Path, Summary]:
    """Write ``episodes.csv`` and ``summary.json`` (what leaderboards read) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary = summarize([r.ret for r in results])
    csv_path = folder / "episodes.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        driving = any(r.driving is not None for r in results)
        header = ["seed", "episode", "return", "length", "terminated", "success"]
        w.writerow(header + (list(_DRIVING_COLUMNS) if driving else []))
        for r in results:
            success = "" if r.success is None else int(r.success)
            row = [r.seed, r.episode, r.ret, r.length, int(r.terminated), success]
            if driving:
                d = r.driving
                row += ["" if d is None else getattr(d, c) for c in _DRIVING_COLUMNS]
            w.writerow(row)
    json_path = folder / "summary.json"
    payload = {
        **meta,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "summary": asdict(summary),
        "success_rate": success_rate(results),
        "driving": driving_summary(results),
        "episodes": [asdict(r) for r in results],
    }
    json_path.write_text(json.dumps(payload, indent=2))
    return csv_path, json_path, summary
