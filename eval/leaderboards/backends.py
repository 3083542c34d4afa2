"""Where a grid's cells run: one after another here (``local``) or as Ray tasks (``ray``).

Both call the same :func:`~pilot.eval.leaderboards.run.run_job`, which writes its own
record, so the two give the same numbers for the same spec and seeds; a cell that fails is
reported with its error and the other cells go on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .run import Job, run_job

BACKENDS = ("local", "ray")


@dataclass
class Outcome:
    job: Job
    result: dict[str, Any] | None
    error: str | None


def execute(
    jobs: list[Job],
    backend: str = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    on_done: Callable[[Outcome], None] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """Run ``jobs`` on ``backend``; ``on_done`` sees each outcome as it finishes."""
    if backend == "local":
        return [_local(job, on_done, on_progress) for job in jobs]
    if backend == "ray":
        return _ray(jobs, address, num_cpus, on_done)
    raise ValueError(f"unknown backend {backend!r}")


def _local(
    job: Job,
    on_done: Callable[[Outcome], None] | None,
    on_progress: Callable[[str], None] | None,
) -> Outcome:
    try:
        outcome = Outcome(job, run_job(job, on_progress), None)
    except Exception as exc:  # one cell's failure does not stop the grid
        outcome = Outcome(job, None, f"{type(exc).__name__}: {exc}")
    if on_done is not None:
        on_done(outcome)
    return outcome


def _ray(
    jobs: list[Job],
    address: str | None,
    num_cpus: int | None,
    on_done: Callable[[Outcome], None] | None,
) -> list[Outcome]:
    from pilot.ray_backend import map_tasks, ray_session

    outcomes: list[Outcome | None] = [None] * len(jobs)

    def finished(i: int, value: Any) -> None:
        if isinstance(value, BaseException):
            outcomes[i] = Outcome(jobs[i], None, f"{type(value).__name__}: {value}")
        else:
            outcomes[i] = Outcome(jobs[i], value, None)
        if on_done is not None:
            on_done(outcomes[i])

    with ray_session(address, num_cpus):
        map_tasks(run_job, jobs, num_cpus=1, on_done=finished)
    return [o for o in outcomes if o is not None]
