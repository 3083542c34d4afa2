"""Driving world benchmark: steps/s of pilot's driving envs beside highway-env, one run.

Rows (one CPU core: torch/BLAS threads 1, and the process pinned to one core on Linux):

* (a) state + 360-ray lidar, on ``pilot/Driving-LaneKeep-v0`` (no traffic), on
  ``pilot/Driving-Highway-v0`` (12 IDM vehicles) and on the town
  (``pilot/Driving-Town-Empty-v0``, buildings and trees along every street, and
  ``pilot/Driving-Town-v0`` with 30 vehicles and 12 pedestrians), one town per row
  (``town_maps=1``) so that its one-off build stays out of the timed resets;
* (b) an 84×84 camera + the lidar + state, on the loop;
* (c) a 160×120 camera + the lidar + state, on the loop;
* highway-env's ``highway-fast-v0`` (its default kinematics observation, IDLE meta action).

Only ``env.step`` is timed; the driving policy (pure pursuit on the route, so episodes run
their full length) is computed between timed calls, and resets are timed apart. Every row
runs the same number of steps. Ratios are against highway-env measured in this run, and
the town rows also against the loop row. A last line times town resets: the first reset
in a town builds it (network, clutter, traffic model), later ones only draw a route and
traffic.

    pip install -e ".[bench]"        # highway-env is in the bench extra
    python bench/driving.py                        # 3,000 steps per row
    python bench/driving.py --steps 1000 --no-highway-env
    python bench/driving.py --soak                 # 2,000 resets and 100,000 steps, RSS
    python bench/driving.py --baseline 8704929     # and the loop row of pilot at a commit

``--baseline REV`` also times the loop row of pilot as it was at git revision ``REV`` (a
checkout in a temporary directory, run in a subprocess pinned to the same core), so a row
can be set against the world as it was when a target was set: 8704929 is the world before
its second edition, whose target for the town is 70 % of that loop's steps/s. The loop at
``REV`` and the town are timed in turn for ``--rounds`` rounds (3), and the town's share
printed per round, of the medians and of the bests (as ``timeit`` reports the best): on a
shared machine one row's speed moves by a third from minute to minute.

Machines are shared and noisy: compare the ratios of one run, not absolute numbers.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import pilot.envs  # noqa: E402, F401 - registers the ids
from pilot.envs import make_env  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process now (Linux), in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def follower(env) -> np.ndarray:
    return env.unwrapped.follow_route()


def time_env(env, steps: int, policy, seed: int = 0) -> dict:
    """Time ``steps`` env.step calls (and the resets between episodes, apart)."""
    step_t = reset_t = 0.0
    resets = 0
    t0 = time.perf_counter()
    env.reset(seed=seed)
    reset_t += time.perf_counter() - t0
    for _ in range(steps):
        action = policy(env)
        t0 = time.perf_counter()
        _, _, term, trunc, _ = env.step(action)
        step_t += time.perf_counter() - t0
        if term or trunc:
            t0 = time.perf_counter()
            env.reset()
            reset_t += time.perf_counter() - t0
            resets += 1
    return {
        "steps_per_s": steps / step_t,
        "with_resets": steps / (step_t + reset_t),
        "reset_ms": 1000.0 * reset_t / (resets + 1),
        "episodes": resets + 1,
    }


_ONE_TOWN = {"town_maps": 1}


def pilot_rows(steps: int) -> list[tuple[str, dict]]:
    rows = []
    cases = [
        ("(a) state + lidar 360, loop", "pilot/Driving-LaneKeep-v0", {}),
        ("(a) state + lidar 360, highway 12 cars", "pilot/Driving-Highway-v0", {}),
        ("(a) state + lidar 360, town, no traffic", "pilot/Driving-Town-Empty-v0", _ONE_TOWN),
        ("(a) state + lidar 360, town 30 cars 12 peds", "pilot/Driving-Town-v0", _ONE_TOWN),
        (
            "(b) camera 84x84 + lidar + state, loop",
            "pilot/Driving-LaneKeep-v0",
            {"sensors": ("state", "lidar", "camera"), "camera": {"width": 84, "height": 84}},
        ),
        (
            "(c) camera 160x120 + lidar + state, loop",
            "pilot/Driving-LaneKeep-v0",
            {"sensors": ("state", "lidar", "camera"), "camera": {"width": 160, "height": 120}},
        ),
    ]
    for label, env_id, kwargs in cases:
        env = make_env(env_id, **kwargs)
        time_env(env, min(200, steps), follower)  # warm up (caches, first-touch memory)
        rows.append((label, time_env(env, steps, follower, seed=1)))
        env.close()
    return rows


def town_resets(towns: int = 10, resets: int = 20) -> str:
    """Milliseconds of a town's first reset (its build), median and slowest over ``towns``
    new towns, and the median of later resets in a kept town."""
    builds = []
    for k in range(towns):
        env = make_env("pilot/Driving-Town-v0", town_maps=1, town_seed=k)
        t0 = time.perf_counter()
        env.reset(seed=0)
        builds.append(time.perf_counter() - t0)
        if k < towns - 1:
            env.close()
    times = []
    for seed in range(1, resets + 1):
        t0 = time.perf_counter()
        env.reset(seed=seed)
        times.append(time.perf_counter() - t0)
    env.close()
    return (
        f"town reset: first (builds the town) median {1000 * float(np.median(builds)):.0f} ms, "
        f"slowest {1000 * max(builds):.0f} ms over {towns} towns; later (median of {resets}) "
        f"{1000 * float(np.median(times)):.1f} ms"
    )


_BASELINE_RUN = """
import json, os, sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path.insert(0, {shim!r})
os.sched_setaffinity(0, {{{core}}})
import importlib.util
spec = importlib.util.spec_from_file_location("bench_driving", {bench!r})
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
import pilot.envs
assert pilot.envs.__file__.startswith({shim!r}), pilot.envs.__file__
env = bench.make_env("pilot/Driving-LaneKeep-v0")
bench.time_env(env, min(200, {steps}), bench.follower)
print(json.dumps(bench.time_env(env, {steps}, bench.follower, seed=1)))
"""


def check_revision(rev: str) -> None:
    """Exit 2 with one line unless ``rev`` names a commit of this checkout's repository."""
    root = Path(__file__).resolve().parent.parent
    found = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        print(f"driving.py: error: --baseline {rev}: no such commit here", file=sys.stderr)
        raise SystemExit(2)


def baseline_row(rev: str, steps: int, core: int) -> tuple[str, dict]:
    """The loop row of pilot at git revision ``rev``: its tree unpacked in a temporary
    directory, imported as ``pilot`` in a subprocess (ahead of this checkout), timed by
    this file's :func:`time_env` on the same core."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(root), "archive", "--format=tar", rev],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            why = archive.stderr.decode().strip().splitlines()[-1:] or ["git archive failed"]
            print(f"driving.py: error: --baseline {rev}: {why[0]}", file=sys.stderr)
            raise SystemExit(2)  # a revision that is not there: bad input
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        # the packages as its pyproject.toml maps them (pilot.envs is envs/, ...)
        text = (tree / "pyproject.toml").read_text()
        section = text.split("[tool.setuptools.package-dir]", 1)[1].split("\n[", 1)[0]
        shim = Path(tmp) / "shim"
        for name, where in re.findall(r'^"([\w.]+)" = "([\w/]+)"$', section, re.M):
            link = shim / name.replace(".", "/")
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(tree / where)
        code = _BASELINE_RUN.format(shim=str(shim), core=core, bench=__file__, steps=steps)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"--baseline {rev} failed:\n{run.stderr[-2000:]}")
    return (f"(a) state + lidar 360, loop, at {rev}", json.loads(run.stdout.splitlines()[-1]))


def against_baseline(rev: str, steps: int, core: int, rounds: int) -> None:
    """The town with traffic against the loop row at ``rev``, timed in turn."""
    town = make_env("pilot/Driving-Town-v0", **_ONE_TOWN)
    time_env(town, min(200, steps), follower)
    then, now = [], []
    for k in range(rounds):
        then.append(baseline_row(rev, steps, core)[1]["steps_per_s"])
        now.append(time_env(town, steps, follower, seed=1)["steps_per_s"])
        print(
            f"round {k + 1}: loop at {rev} {then[-1]:.0f} steps/s, town 30 cars 12 peds "
            f"{now[-1]:.0f}: {100 * now[-1] / then[-1]:.0f}%"
        )
    town.close()
    print(
        f"town 30 cars 12 peds against the loop at {rev}: medians {np.median(now):.0f} / "
        f"{np.median(then):.0f} = {100 * np.median(now) / np.median(then):.0f}%, bests "
        f"{max(now):.0f} / {max(then):.0f} = {100 * max(now) / max(then):.0f}%"
    )


def highway_env_row(steps: int) -> tuple[str, dict] | None:
    try:
        import gymnasium as gym
        import highway_env  # noqa: F401 - registers highway-fast-v0
    except ImportError:
        print("highway-env is not installed (pip install -e '.[bench]'); skipping it")
        return None
    env = gym.make("highway-fast-v0")
    idle = 1  # DiscreteMetaAction IDLE
    time_env(env, min(50, steps), lambda e: idle)
    row = ("highway-env highway-fast-v0 (kinematics)", time_env(env, steps, lambda e: idle, 1))
    env.close()
    return row


def soak(
    resets: int,
    steps: int,
    env_id: str = "pilot/Driving-Intersection-v0",
    warm_up: int = 100,
    **kwargs,
) -> tuple[float, float, float]:
    """``resets`` episodes adding up to ``steps`` steps on ``env_id`` (by default the
    intersection, the busiest of the small scenarios) with every sensor, reporting RSS
    before, after ``warm_up`` resets and at the end; returns the three (MiB). ``kwargs``
    go to the env."""
    env = make_env(
        env_id,
        sensors=("state", "lidar", "camera", "depth", "segmentation", "lidar_bev"),
        render_mode="rgb_array",
        blocked_time=1e9,
        **kwargs,
    )
    per_episode = max(steps // resets, 1)
    rng = np.random.default_rng(0)
    start = rss_mb()
    warm = None
    t0 = time.perf_counter()
    done_steps = 0
    for k in range(resets):
        env.reset(seed=int(rng.integers(2**31)))
        for _ in range(per_episode):
            _, _, term, trunc, _ = env.step(follower(env))
            done_steps += 1
            if term or trunc:
                env.reset()
        if k % 100 == 0:
            env.render()
        if k == min(warm_up, resets - 1):
            warm = rss_mb()
        if (k + 1) % 500 == 0:
            print(f"  {k + 1} resets, {done_steps} steps, RSS {rss_mb():.1f} MiB")
    end = rss_mb()
    env.close()
    print(
        f"soak: {resets} resets, {done_steps} steps in {time.perf_counter() - t0:.0f} s; "
        f"RSS start {start:.1f} MiB, after {warm_up} resets {warm:.1f} MiB, end {end:.1f} MiB "
        f"(growth after warm-up {end - warm:+.1f} MiB)"
    )
    return start, warm, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="timed steps per row")
    parser.add_argument("--no-highway-env", action="store_true", help="skip highway-env")
    parser.add_argument("--soak", action="store_true", help="run the memory soak instead")
    parser.add_argument("--soak-resets", type=int, default=2000)
    parser.add_argument("--soak-steps", type=int, default=100_000)
    parser.add_argument("--soak-env", default="pilot/Driving-Intersection-v0", help="env id")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to (Linux)")
    parser.add_argument("--baseline", metavar="REV", help="also the loop row at git revision REV")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the --baseline rows")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    if args.soak:
        soak(args.soak_resets, args.soak_steps, args.soak_env)
        return
    if args.baseline:
        check_revision(args.baseline)
    rows = pilot_rows(args.steps)
    ref = None if args.no_highway_env else highway_env_row(args.steps)
    base = ref[1]["steps_per_s"] if ref else None
    print(f"\n{'env':44s} {'steps/s':>9s} {'w/ resets':>10s} {'reset ms':>9s} {'× hw-env':>9s}")
    for label, r in rows + ([ref] if ref else []):
        ratio = f"{r['steps_per_s'] / base:9.1f}" if base else f"{'-':>9s}"
        print(
            f"{label:44s} {r['steps_per_s']:9.0f} {r['with_resets']:10.0f} "
            f"{r['reset_ms']:9.1f} {ratio}"
        )
    loop = rows[0][1]["steps_per_s"]
    for label, r in rows:
        if "town" in label:
            print(f"{label}: {100 * r['steps_per_s'] / loop:.0f}% of the loop's steps/s")
    if args.baseline:
        against_baseline(args.baseline, args.steps, args.core, args.rounds)
    print(town_resets())


if __name__ == "__main__":
    main()
