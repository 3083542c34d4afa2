"""`pilot eval --backend ray`: each seed's episodes as one Ray task.

A seed's episodes depend only on the seed (its env, its ε-greedy stream), so playing each
seed in a task of its own gives the same episodes as playing them all here in lockstep —
for a deterministic policy; a sampled one draws from the worker's torch generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SeedJob:
    """Everything a worker needs to play one seed (picklable)."""

    target: str
    device: str
    meta: dict[str, Any]
    env_id: str
    env_kwargs: dict[str, Any]
    table: Any  # minimal → full action indices, or None
    sample: bool
    epsilon: float
    episodes: int
    max_steps: int | None
    seed: int


def play_seed(job: SeedJob) -> list:
    """The seed's episodes (:class:`pilot.eval.evaluate.EpisodeResult`), played by a
    freshly loaded copy of the agent."""
    from pilot.eval.evaluate import run_episodes
    from pilot.playing import load_for_playing, policy

    agent, _ = load_for_playing(job.target, job.device, job.meta)
    return run_episodes(
        policy(agent, job.sample, job.table),
        job.env_id,
        [job.seed],
        job.episodes,
        job.env_kwargs,
        job.max_steps,
        epsilon=job.epsilon,
    )


def play_on_ray(
    jobs: list[SeedJob],
    address: str | None,
    num_cpus: int | None,
    on_done: Callable[[int], None] | None = None,
) -> list:
    """Every job's episodes, sorted by (seed, episode); a failed seed is a UserError that
    names it and its error."""
    from pilot.errors import UserError
    from pilot.ray_backend import map_tasks, ray_session

    def finished(index: int, value: Any) -> None:
        if on_done is not None and not isinstance(value, BaseException):
            on_done(len(value))

    with ray_session(address, num_cpus):
        outcomes = map_tasks(play_seed, jobs, num_cpus=1, on_done=finished)
    results = []
    for job, value in zip(jobs, outcomes, strict=True):
        if isinstance(value, BaseException):
            raise UserError(f"seed {job.seed} failed on Ray: {type(value).__name__}: {value}")
        results += value
    return sorted(results, key=lambda r: (r.seed, r.episode))
