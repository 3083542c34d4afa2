"""The route follower, the driving leaderboard's floor: it keeps its lane where nothing is
in the way, and logs the infractions the modular stack avoids (it ignores red lights)."""

from __future__ import annotations

import pytest

from pilot.cli import main
from pilot.envs import make_env
from pilot.errors import UserError
from pilot.planning.route_follower import RouteFollower


def drive(env, agent, steps: int) -> dict:
    info = {}
    for _ in range(steps):
        _, _, term, trunc, info = env.step(agent.act(None, envs=[env])[0])
        if term or trunc:
            break
    return info


def test_completes_lanekeep_without_infractions():
    env_id = "pilot/Driving-LaneKeep-v0"
    env = make_env(env_id)
    env.reset(seed=0)
    try:
        info = drive(env, RouteFollower(env_id), 600)
    finally:
        env.close()
    assert {k: n for k, n in info["infraction_counts"].items() if n} == {}
    assert info["outcome"] == "route_completed" and info["route_completion"] == 1.0


def test_runs_the_red_light_the_stack_stops_at():
    # the scenario of test_modular_stack's red-light test: red for the next 27 s
    env_id = "pilot/Driving-Intersection-v0"
    env = make_env(env_id)
    env.reset(seed=0, options={"vehicles": [], "pedestrians": []})
    u = env.unwrapped
    light = u.net.lights[u.net.lanes[u.route.lanes[0]].light]
    red_from = light.start + light.green + light.yellow
    env.reset(seed=0, options={"vehicles": [], "pedestrians": [], "start_time": red_from})
    try:
        info = drive(env, RouteFollower(env_id), 600)
    finally:
        env.close()
    assert info["infraction_counts"]["red_light"] == 1
    assert info["outcome"] == "route_completed"


def test_config_and_listing():
    with pytest.raises(UserError, match="unknown config key 'sped'"):
        RouteFollower.configure("pilot/Driving-LaneKeep-v0", {"sped": 3})
    with pytest.raises(UserError, match="Box\\(2\\) driving envs"):
        RouteFollower("pilot/Driving-Highway-Meta-v0", None)
    assert RouteFollower.configure("pilot/Driving-LaneKeep-v0", {"speed": "6"}) == {"speed": 6.0}
    # the CLI configures, then the agent is built from that config: the default survives
    default = RouteFollower.configure("pilot/Driving-LaneKeep-v0", {})
    assert RouteFollower("pilot/Driving-LaneKeep-v0", default).config == {"speed": None}


def test_listed_and_evaluated_by_name(capsys):
    assert main(["list"]) == 0
    assert "route" in capsys.readouterr().out
    assert main(["eval", "route", "--env", "pilot/Driving-LaneKeep-v0", "--set", "sped=3"]) == 2
    assert "unknown config key 'sped'" in capsys.readouterr().err


def test_evaluated_as_built_in_not_as_checkpoint_step_0(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.chdir(tmp_path)
    argv = ["eval", "route", "--env", "pilot/Driving-LaneKeep-v0", "--seeds", "0"]
    assert main([*argv, "--episodes", "1", "--max-steps", "20"]) == 0
    said = capsys.readouterr().out
    assert "evaluating route on pilot/Driving-LaneKeep-v0 (built-in)" in said
    assert "checkpoint step" not in said
    (summary,) = tmp_path.glob("runs/**/*.json")
    assert json.loads(summary.read_text())["checkpoint_step"] is None  # not trained
