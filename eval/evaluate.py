"""Run a policy for evaluation episodes and keep per-episode results in the real score.

Episodes are laid out as (seed, index): for each seed one env is created and reset with
that seed once, then plays ``episodes_per_seed`` episodes in a row (later resets draw from
the env's own generator), so results are reproducible from the seed list alone. All seeds'
envs advance in lockstep so the policy sees one batch per step (one network call).

An ε-greedy evaluation (the Atari protocols') draws its coin flips and random actions from
one generator per seed, seeded from that seed, so it is reproducible from the seed list too.
"""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
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

#: Why an episode ended, beyond the env's own ``info["outcome"]`` (the driving world's
#: route_completed, collision, off_road, route_deviation, agent_blocked).
TERMINATED, TIME_LIMIT, MAX_STEPS = "terminated", "time_limit", "max_steps"


@dataclass(frozen=True)
class EpisodeResult:
    seed: int
    episode: int
    ret: float
    length: int
    terminated: bool
    success: bool | None = None  # the env's info["success"] at the episode's end, if it says
    driving: DrivingScore | None = None  # driving worlds: the route's leaderboard scores
    end: str = ""  # why it ended: the env's info["outcome"], terminated, time_limit, max_steps
    #: navigation worlds: {"path_length", "optimal_length"} of the episode (for SPL)
    navigation: dict[str, float] | None = None


class EpsilonGreedy:
    """With probability ``epsilon`` replace an action by one drawn uniformly from
    ``n_actions``. A coin flip and a random action are drawn on every call, so the draws
    depend only on ``seed`` and the number of steps, not on what the agent chose."""

    def __init__(self, epsilon: float, n_actions: int, seed: int) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon, self.n_actions = float(epsilon), int(n_actions)
        # a stream of its own: the env seeded with the same number draws from another one
        self.rng = np.random.default_rng([0xE95, int(seed)])

    def __call__(self, action: Any) -> Any:
        if self.epsilon <= 0.0:
            return action
        explore = self.rng.random() < self.epsilon
        random_action = self.rng.integers(self.n_actions)
        return random_action if explore else action


def end_reason(info: dict[str, Any], terminated: bool, truncated: bool) -> str:
    """Why an episode ended: the env's ``info["outcome"]`` when it names one, else
    ``terminated``, ``time_limit`` (the env's truncation) or ``max_steps`` (cut by the caller)."""
    if terminated:
        return str(info.get("outcome") or TERMINATED)
    return TIME_LIMIT if truncated else MAX_STEPS


def run_episodes(
    act: Callable[[Any, list[gym.Env]], np.ndarray],
    env_id: str,
    seeds: Sequence[int],
    episodes_per_seed: int,
    env_kwargs: dict[str, Any] | None = None,
    max_steps: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    epsilon: float = 0.0,
    fixed_episodes: bool = False,
) -> list[EpisodeResult]:
    """Play ``episodes_per_seed`` episodes per seed with ``act(batch_obs, envs) -> actions``
    (``envs``: the envs behind the batch, in order, for agents that plan through them).

    ``max_steps`` cuts an episode short (recorded with ``terminated=False``); the env's
    own time limit applies otherwise. ``epsilon`` > 0 plays ε-greedy around ``act``'s
    actions (Discrete action spaces), drawn per seed as :class:`EpsilonGreedy` does.
    ``progress(episodes_done, steps)`` is called after every lockstep, so a caller can
    show that long episodes are moving. ``fixed_episodes`` resets every episode with its
    own seed (:func:`episode_seed`), so episode ``k`` of a seed starts from the same route,
    map or game state whatever happened in the episodes before it, and every agent meets
    the same ones (a leaderboard's rows); otherwise later resets draw from the env's own
    generator, which the episodes before may have advanced differently.
    """
    kwargs = dict(env_kwargs or {})
    kwargs.pop("training", None)
    envs = [make_env(env_id, **kwargs) for _ in seeds]
    space = envs[0].observation_space
    explore = (
        [EpsilonGreedy(epsilon, int(envs[0].action_space.n), int(s)) for s in seeds]
        if epsilon > 0
        else None
    )
    try:
        first = [episode_seed(s, 0) if fixed_episodes else int(s) for s in seeds]
        obs = [env.reset(seed=s)[0] for env, s in zip(envs, first, strict=True)]
        done_count = [0] * len(envs)
        rets = [0.0] * len(envs)
        lens = [0] * len(envs)
        steps = 0
        results: list[EpisodeResult] = []
        active = [episodes_per_seed > 0] * len(envs)
        while any(active):
            idx = [i for i, a in enumerate(active) if a]
            actions = act(stack_obs([obs[i] for i in idx], space), [envs[i] for i in idx])
            for j, i in enumerate(idx):
                action = actions[j] if explore is None else explore[i](actions[j])
                o, r, term, trunc, info = envs[i].step(action)
                rets[i] += float(r)
                lens[i] += 1
                steps += 1
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
                            end_reason(info, bool(term), bool(trunc)),
                            _navigation(info),
                        )
                    )
                    done_count[i] += 1
                    rets[i], lens[i] = 0.0, 0
                    if done_count[i] >= episodes_per_seed:
                        active[i] = False
                        continue
                    again = episode_seed(seeds[i], done_count[i]) if fixed_episodes else None
                    o, _ = envs[i].reset(seed=again)
                obs[i] = o
            if progress is not None:
                progress(len(results), steps)
    finally:
        for env in envs:
            env.close()
    results.sort(key=lambda e: (e.seed, e.episode))
    return results


def episode_seed(seed: int, episode: int) -> int:
    """The reset seed of episode ``episode`` of ``seed`` in fixed-episode play: a hash of
    both (NumPy's SeedSequence), so neighbouring seeds do not share episodes."""
    return int(np.random.SeedSequence([int(seed), int(episode)]).generate_state(1)[0])


def _navigation(info: dict[str, Any]) -> dict[str, float] | None:
    """The path the agent drove and the shortest one, where the env reports both."""
    if "path_length" in info and "optimal_length" in info:
        return {k: float(info[k]) for k in ("path_length", "optimal_length")}
    return None


def success_rate(results: list[EpisodeResult]) -> float | None:
    """Share of episodes the env called a success; None when the env does not say."""
    known = [r.success for r in results if r.success is not None]
    return sum(known) / len(known) if known else None


_DRIVING_COLUMNS = (
    "driving_score",
    "driving_score_without_min_speed",
    "route_completion",
    "infraction_penalty",
    "infractions_per_km",
    "outside_lane_fraction",
    "speeding_fraction",
)


def driving_summary(results: list[EpisodeResult]) -> dict[str, float] | None:
    """Mean Driving Score, Route Completion, Infraction Penalty and infractions per km
    over the routes (driving worlds only; None elsewhere)."""
    scores = [r.driving for r in results if r.driving is not None]
    return mean_scores(scores) if scores else None


def end_counts(results: list[EpisodeResult]) -> dict[str, int]:
    """How many episodes ended for each reason, most frequent first."""
    return dict(Counter(r.end for r in results).most_common())


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
        header = ["seed", "episode", "return", "length", "terminated", "success", "end"]
        w.writerow(header + (list(_DRIVING_COLUMNS) if driving else []))
        for r in results:
            success = "" if r.success is None else int(r.success)
            row = [r.seed, r.episode, r.ret, r.length, int(r.terminated), success, r.end]
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
        "end_reasons": end_counts(results),
        "driving": driving_summary(results),
        "episodes": [asdict(r) for r in results],
    }
    json_path.write_text(json.dumps(payload, indent=2))
    return csv_path, json_path, summary
