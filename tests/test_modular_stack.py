"""The modular driving stack in scripted scenarios (traffic placed by ``reset(options=...)``),
its config errors and its registration as a built-in agent."""

from __future__ import annotations

import numpy as np
import pytest

from pilot.cli import main
from pilot.envs import make_env
from pilot.envs.driving.roads import GREEN, RED
from pilot.errors import UserError
from pilot.planning.stack.agent import ModularAgent
from pilot.planning.stack.config import build_config

INTERSECTION = "pilot/Driving-Intersection-v0"


def drive(env, agent: ModularAgent, steps: int, on_step=None) -> dict:
    """Play up to ``steps`` steps; returns the last info (``on_step(env, info)`` each step)."""
    info = {}
    for _ in range(steps):
        action = agent.act(None, envs=[env])[0]
        _, _, term, trunc, info = env.step(action)
        if on_step is not None:
            on_step(env, info)
        if term or trunc:
            break
    return info


def assert_clean(info: dict) -> None:
    """No infraction of any kind was logged in the episode."""
    counts = {k: n for k, n in info["infraction_counts"].items() if n}
    assert counts == {}, counts


def test_stops_at_red_light_and_goes_on_green():
    # seed 0's route goes straight over the junction (turns are measured in the README)
    env = make_env(INTERSECTION)
    env.reset(seed=0, options={"vehicles": [], "pedestrians": []})
    u = env.unwrapped
    light = u.net.lights[u.net.lanes[u.route.lanes[0]].light]
    red_from = light.start + light.green + light.yellow  # red for the next 27 s
    env.reset(seed=0, options={"vehicles": [], "pedestrians": [], "start_time": red_from})
    agent = ModularAgent(INTERSECTION)
    seen = {"stopped_on_red": False, "moving_on_green": False}

    def watch(env, info):
        state = light.state(env.unwrapped.get_state().sim.t)
        if state == RED and info["speed"] < 0.05:
            seen["stopped_on_red"] = True
        if state == GREEN and seen["stopped_on_red"] and info["speed"] > 3.0:
            seen["moving_on_green"] = True

    try:
        info = drive(env, agent, 600, watch)
    finally:
        env.close()
    assert seen == {"stopped_on_red": True, "moving_on_green": True}
    assert_clean(info)
    assert info["outcome"] == "route_completed" and info["route_completion"] == 1.0


def test_follows_a_slower_lead_without_collision():
    env_id = "pilot/Driving-LaneKeep-v0"
    env = make_env(env_id, vehicles=1)
    env.reset(seed=0, options={"vehicles": [{"ahead": 25.0, "speed": 5.0}]})
    # one lateral target: it must follow, not overtake
    agent = ModularAgent(env_id, build_config(env_id, {"lateral_offsets": [0.0]}))
    gaps = []

    def watch(env, info):
        u = env.unwrapped
        sim = u.get_state().sim
        x, y, _ = u.traffic_model.poses(sim.traffic)
        gaps.append(float(np.hypot(x[0] - sim.ego.x, y[0] - sim.ego.y)))

    try:
        info = drive(env, agent, 300, watch)
    finally:
        env.close()
    assert_clean(info)
    assert min(gaps) > 4.5 + 2.0  # bumper to bumper more than the jam distance's bulk
    assert abs(info["speed"] - 5.0) < 0.5  # settled behind the lead at its speed
    assert 0.45 < info["route_completion"] < 0.6  # 30 s at about 5 m/s on a 300 m route


def test_passes_a_static_obstacle_blocking_its_lane():
    env_id = "pilot/Driving-Obstacles-v0"
    env = make_env(env_id)
    env.reset(seed=0, options={"obstacles": [{"ahead": 40.0}], "vehicles": [], "pedestrians": []})
    agent = ModularAgent(env_id)
    try:
        info = drive(env, agent, 600)
    finally:
        env.close()
    assert_clean(info)
    assert info["outcome"] == "route_completed" and info["route_completion"] == 1.0


def test_config_errors_are_one_line():
    with pytest.raises(UserError, match="unknown config key 'trackr'.*tracker"):
        build_config(INTERSECTION, {"trackr": "mpc"})
    with pytest.raises(UserError, match="must be one of"):
        build_config(INTERSECTION, {"tracker": "lqr"})
    with pytest.raises(UserError, match="not wired"):
        build_config(INTERSECTION, {"perception": "runs/some_run"})
    with pytest.raises(UserError, match="Box\\(2\\) driving envs"):
        ModularAgent("pilot/Driving-Highway-Meta-v0")


def test_eval_by_name_checks_its_flags(capsys):
    assert main(["eval", "modular", "--env", INTERSECTION, "--set", "percepton=x"]) == 2
    assert "did you mean: perception" in capsys.readouterr().err
    assert main(["eval", "modular"]) == 2
    assert "needs --env" in capsys.readouterr().err
    assert main(["list"]) == 0
    assert "modular" in capsys.readouterr().out
