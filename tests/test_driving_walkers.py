"""Walkers at crosswalks with lights leave the kerb only on a red that lasts their crossing."""

from __future__ import annotations

import numpy as np
import pytest

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.envs import make_env
from pilot.envs.driving.roads import GREEN, RED

STAND = np.array([0.0, -1.0], dtype=np.float32)  # the ego brakes where its route begins


@pytest.mark.parametrize(
    ("env_id", "seed"),
    [
        ("pilot/Driving-Intersection-v0", 0),
        ("pilot/Driving-StopSign-v0", 0),
        ("pilot/Driving-Obstacles-v0", 0),
        *[("pilot/Driving-Town-v0", s) for s in range(4)],
    ],
)
def test_each_crosswalk_keeps_to_the_light_of_the_approach_it_crosses(env_id, seed):
    """A crosswalk's light is one whose stop line runs along it (parallel, within a few
    metres), each light serves one crosswalk, and one without a light has none near."""
    env = make_env(env_id)
    env.reset(seed=seed)
    net = env.unwrapped.net
    lit = net.crosswalk_light >= 0
    assert lit.sum() == len(net.lights)  # every approach with a light has its crosswalk
    assert len(set(net.crosswalk_light[lit].tolist())) == len(net.lights)
    for c, k in enumerate(net.crosswalk_light):
        walk = net.crosswalks[c]
        if k < 0:
            if len(net.lights):
                gaps = np.linalg.norm(net.light_mids - walk.mean(axis=0), axis=1)
                assert gaps.min() > 8.0
            continue
        line = np.asarray(net.lights[k].stop_line)
        along, across = walk[1] - walk[0], line[1] - line[0]
        sine = (along[0] * across[1] - along[1] * across[0]) / (
            np.linalg.norm(along) * np.linalg.norm(across)
        )
        assert abs(sine) < 1e-6  # the stop line runs along the crosswalk
        assert np.linalg.norm(line.mean(axis=0) - walk.mean(axis=0)) < 5.0
    env.close()


def _departures(env_id: str, seed: int, steps: int) -> list[tuple[float, int, float, float]]:
    """Every time a walker leaves a kerb in ``steps`` steps with the ego standing: the
    time, its light's state then, the seconds its red has left and the crossing's
    length over the walker's speed (in seconds)."""
    env = make_env(env_id)
    env.reset(seed=seed)
    world = env.unwrapped
    net, out = world.net, []
    for _ in range(steps):
        sim = world._sim
        peds, t = sim.peds, sim.t
        length = net.crosswalk_lengths[peds.crosswalk]
        at_kerb = peds.active & ((peds.u <= 0.0) | (peds.u >= length))
        states, red_left = net.light_states(t), net.crosswalk_red_left(t)
        env.step(STAND)
        moved = at_kerb & (peds.u > 0.0) & (peds.u < length)
        for p in np.flatnonzero(moved):
            c = peds.crosswalk[p]
            k = net.crosswalk_light[c]
            state = int(states[k]) if k >= 0 else -1
            out.append((t, state, float(red_left[c]), float(length[p] / peds.speed[p])))
    env.close()
    return out


@pytest.mark.parametrize("seed", range(4))
def test_walkers_leave_the_kerb_only_on_a_red_that_outlasts_their_crossing(seed):
    """Over 60 s at the junction, every walker leaving a kerb does so on red with at least
    its crossing's time of red to come (12-15 departures a seed). Before, they crossed
    whatever the light: on seed 3, 5 of 16 departures were on green or yellow and one on
    a red too short for the crossing."""
    seen = _departures("pilot/Driving-Intersection-v0", seed, 600)
    assert len(seen) >= 8  # they do cross
    for t, state, left, crossing in seen:
        assert state == RED, (t, state)
        assert left >= crossing, (t, left, crossing)


def test_a_walker_keeps_to_its_light_in_the_town():
    """The town's lights hold their walkers as the junction's do; crosswalks of all-way
    stops have no light, and their walkers go when their pause ends."""
    seen = _departures("pilot/Driving-Town-v0", 0, 400)
    lit = [d for d in seen if d[1] != -1]
    assert lit and len(seen) > len(lit)  # both kinds of crosswalk see walkers leave
    assert all(state == RED and left >= crossing for _, state, left, crossing in lit)


def test_a_walker_placed_at_the_kerb_goes_at_once_whatever_the_light():
    """A scripted walker (``reset(options=...)``) walks from the first step, so scenario
    tests place it in the car's way when they mean to; only a walker at the end of its
    pause waits for the light."""
    env = make_env("pilot/Driving-Intersection-v0")
    env.reset(seed=0)
    net = env.unwrapped.net
    light = next(i for i, lt in enumerate(net.lights) if lt.state(0.0) == GREEN)
    crosswalk = int(np.flatnonzero(net.crosswalk_light == light)[0])
    env.reset(
        seed=0,
        options={"vehicles": [], "pedestrians": [{"crosswalk": crosswalk, "u": 0.0, "speed": 1.2}]},
    )
    env.step(STAND)
    assert env.unwrapped._sim.peds.u[0] == pytest.approx(1.2 * env.unwrapped.config.dt)
    assert net.crosswalk_red_left(0.0)[crosswalk] == 0.0  # its light is green
    env.close()
