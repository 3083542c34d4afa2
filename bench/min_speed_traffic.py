"""CARLA's minimum-speed test applied to the driving world's own traffic: what drivers
that keep every rule the way the traffic does score on it at the junctions. It is the
reference for an agent's shortfall on the test: the test compares a car with the mean
speed of the others, so the traffic itself, judged car by car, does not score 100.

Each vehicle's complete trips through the junction (from coming in at the start of an
approach to leaving the network at the end of an exit road, ~135 m) over a long window
(``--seconds``, 600) are cut into the test's stretches (the env's
``min_speed_checkpoints``, 4) and compared, step by step, with the mean speed of the other
vehicles, as the env judges the ego (:func:`~pilot.envs.driving.speed_rules.min_speed_percentages`).
A trip's score is the Driving Score of a route completed with the test as its only
infraction. Trips still under way when the window ends are left out (the window is long
so that slow trips are not).

The ego stands where its route begins for the whole window ("agent blocked" off). A car
that was placed behind it waits there for good; such cars are left out of the others'
mean (a car that can never move is not traffic to keep up with).

    python bench/min_speed_traffic.py [--scenarios Intersection,StopSign] [--seeds 10]
                                      [--seconds 600]

Prints, per scenario, the trips' mean score with its 95% bootstrap CI, the median, the
share of trips at 90 or more, and the trips' mean length and duration.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import pilot.envs  # noqa: F401 - registers the ids
from pilot.envs import make_env
from pilot.envs.driving.speed_rules import min_speed_percentages
from pilot.eval.driving import driving_score
from pilot.eval.stats import bootstrap_ci

SCENARIOS = ("Intersection", "StopSign")
STAND = np.array([0.0, -1.0], dtype=np.float32)  # full brake: the ego never moves


def trip_scores(scenario: str, seed: int, seconds: float) -> list[tuple[float, float, float]]:
    """``(score, metres, seconds)`` of every trip completed in one window."""
    env = make_env(
        f"pilot/Driving-{scenario}-v0", blocked_time=seconds + 1.0, max_episode_steps=10**9
    )
    env.reset(seed=seed)
    u = env.unwrapped
    dt, checkpoints, sources = u.config.dt, u.config.min_speed_checkpoints, set(u.net.sources)
    steps = int(round(seconds / dt))
    tr = u._sim.traffic
    open_trips: list[list | None] = [None] * len(tr.v)  # per vehicle: (progress, v, others)
    done: list[list] = []
    prev_s, prev_active = tr.s.copy(), tr.active.copy()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(STAND)
        tr, ego = u._sim.traffic, u._sim.ego
        here = u.net.locate(ego.x, ego.y, ego.yaw)
        moving = tr.active & ~((tr.lane == here.lane) & (tr.s < here.s))  # not stuck behind
        for i in np.flatnonzero(prev_active | tr.active):
            came_in = tr.active[i] and tr.lane[i] in sources and tr.s[i] < prev_s[i]
            if open_trips[i] is not None and (came_in or not tr.active[i]):
                done.append(open_trips[i])  # it left the network: a whole trip
                open_trips[i] = None
            if came_in and prev_active[i]:
                open_trips[i] = []
            trip = open_trips[i]
            if trip is not None:
                others = moving.copy()
                others[i] = False
                mean = float(tr.v[others].mean()) if others.any() else np.nan
                trip.append(((trip[-1][0] if trip else 0.0) + tr.v[i] * dt, tr.v[i], mean))
        prev_s, prev_active = tr.s.copy(), tr.active.copy()
        if terminated or truncated:
            break
    env.close()
    out = []
    for trip in done:
        progress, v, others = np.array(trip, dtype=np.float64).T
        length = float(progress[-1])
        failed = min_speed_percentages(progress, v, others, length, checkpoints)
        score = driving_score(1.0, {}, length, min_speed_percentages=failed).driving_score
        out.append((score, length, len(trip) * dt))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--seeds", type=int, default=10, help="windows per scenario")
    ap.add_argument("--seconds", type=float, default=600.0, help="length of each window")
    args = ap.parse_args()
    scenarios = args.scenarios.split(",")
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r}; one of {', '.join(SCENARIOS)}")
    if args.seeds < 1 or args.seconds <= 0:
        ap.error("need --seeds >= 1 and --seconds > 0")
    for scenario in scenarios:
        rows = [r for seed in range(args.seeds) for r in trip_scores(scenario, seed, args.seconds)]
        if not rows:
            print(f"{scenario}: no trip completed in the windows; give more --seconds")
            continue
        scores = np.array([r[0] for r in rows])
        lo, hi = bootstrap_ci(scores)
        print(
            f"{scenario}: {len(rows)} trips, score {scores.mean():.1f} [{lo:.1f}, {hi:.1f}], "
            f"median {statistics.median(scores):.1f}, {100 * np.mean(scores >= 90):.0f}% at 90 "
            f"or more; a trip {np.mean([r[1] for r in rows]):.0f} m in "
            f"{np.mean([r[2] for r in rows]):.0f} s on average, "
            f"{100 * np.mean([r[2] > 60.0 for r in rows]):.0f}% over 60 s (the junctions' limit)",
            flush=True,
        )


if __name__ == "__main__":
    main()
