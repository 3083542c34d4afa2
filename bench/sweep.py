"""Ray sweep vs the same runs one after another: wall time, and Ray's cost per task.

Four PPO CartPole trials (2 learning rates x 2 seeds, ``--steps`` each) are trained twice
with the same trial function ``pilot sweep`` uses (``pilot.sweep.run_trial``):

  sequential   one after another in this process (torch already loaded after the first)
  ray          as Ray tasks on a local Ray with ``--num-cpus`` CPUs, 1 CPU per trial;
               timed with and without starting and stopping Ray

Then ``--tasks`` no-op tasks measure what Ray adds per task (submit, schedule, return)
when the workers are warm. Prints seconds, the ratio sequential / ray, and ms per task.

    python bench/sweep.py                 # ~1 min on 2 cores
    python bench/sweep.py --steps 50000 --num-cpus 4
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time
from pathlib import Path


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _noop(x: int) -> int:
    return x


def _jobs(root: Path, steps: int) -> list:
    from pilot import sweep

    spec = sweep.SweepSpec(
        algo="ppo",
        env="CartPole-v1",
        seeds="0-1",
        grid={"learning_rate": [3e-4, 1e-3]},
        steps=steps,
        set={"log_every": 1024},
    )
    return [
        sweep.TrialJob(
            id=t["id"],
            folder=str(root / t["id"]),
            algo="ppo",
            env="CartPole-v1",
            config=t["config"],
            seed=t["seed"],
            device="cpu",
            command="bench/sweep.py",
            sweep="bench",
        )
        for t in sweep.plan_trials(spec)
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000, help="agent steps per trial")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    p.add_argument("--tasks", type=int, default=200, help="no-op tasks for the overhead")
    args = p.parse_args()

    from pilot import ray_backend, sweep

    ray_backend.require_ray()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = _jobs(root / "sequential", args.steps)
        t0 = time.perf_counter()
        for job in jobs:
            sweep.run_trial(job)
        sequential = time.perf_counter() - t0

        jobs = [
            dataclasses.replace(j, folder=str(root / "ray" / Path(j.folder).name))
            for j in _jobs(root, args.steps)
        ]
        t0 = time.perf_counter()
        with ray_backend.ray_session(None, args.num_cpus):
            t1 = time.perf_counter()
            results = ray_backend.map_tasks(sweep.run_trial, jobs)
            on_ray = time.perf_counter() - t1
            bad = [r for r in results if isinstance(r, BaseException)]
            if bad:
                raise SystemExit(f"a trial failed on Ray: {bad[0]!r}")
            ray_backend.map_tasks(_noop, range(8), num_cpus=0.01)  # warm the workers
            t2 = time.perf_counter()
            ray_backend.map_tasks(_noop, range(args.tasks), num_cpus=0.01)
            per_task = (time.perf_counter() - t2) / args.tasks
            t3 = time.perf_counter()
            for i in range(20):
                ray_backend.map_tasks(_noop, [i], num_cpus=0.01)
            round_trip = (time.perf_counter() - t3) / 20
            t4 = time.perf_counter()
        with_start = (t1 - t0) + on_ray + (time.perf_counter() - t4)  # start + trials + stop
    finals = [r["final_return"] for r in results]

    print(f"CPU: {_cpu_model()}; local Ray with {args.num_cpus} CPUs, 1 CPU per trial")
    print(f"4 trials of {args.steps:,} PPO CartPole steps (final returns {finals})")
    print(f"  sequential, this process     {sequential:7.1f} s")
    print(f"  ray tasks                    {on_ray:7.1f} s   ratio {sequential / on_ray:.2f}x")
    print(
        f"  ray incl. start/stop         {with_start:7.1f} s   ratio {sequential / with_start:.2f}x"
    )
    print(f"Ray per task ({args.tasks} no-op tasks in flight): {1e3 * per_task:.2f} ms")
    print(f"Ray round trip of one task (submit, run, return): {1e3 * round_trip:.2f} ms")


if __name__ == "__main__":
    main()
