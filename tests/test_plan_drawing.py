"""The modular stack's plan drawn on the BEV panel: the pixels where the plan lies take its
colours, in the env's BEV geometry, and ``pilot watch modular`` writes such frames."""

from __future__ import annotations

import math

import numpy as np

from pilot.cli import main
from pilot.envs import make_env
from pilot.plan_drawing import OCCUPANCY, PLAN, draw_plan, to_pixels, with_plan
from pilot.planning.stack.agent import ModularAgent

INTERSECTION = "pilot/Driving-Intersection-v0"


def _planned_env():
    env = make_env(INTERSECTION, render_mode="rgb_array")
    env.reset(seed=0, options={"vehicles": [], "pedestrians": []})
    # one pedestrian walking on the crosswalk nearest the route 30 m on, so there is an
    # occupancy in view to draw
    u = env.unwrapped
    ahead = u.route.point_at(30.0)
    walk = min(
        range(len(u.net.crosswalks)),
        key=lambda i: float(np.linalg.norm(u.net.crosswalks[i].mean(axis=0) - ahead)),
    )
    peds = [{"crosswalk": walk, "u": 1.0, "speed": 1.2}]
    env.reset(seed=0, options={"vehicles": [], "pedestrians": peds})
    agent = ModularAgent(INTERSECTION)
    for _ in range(10):
        env.step(agent.act(None, envs=[env])[0])
    agent.act(None, envs=[env])
    return env, agent


def test_overlay_paints_the_plan_where_it_lies():
    env, agent = _planned_env()
    try:
        u = env.unwrapped
        ego = u.get_state().sim.ego
        pose = (ego.x, ego.y, ego.yaw)
        bev = u.bev_image(320)
        plan = agent.last_plans[0]
        drawn = draw_plan(bev, plan, pose)
    finally:
        env.close()
    size = bev.shape[0]
    # the geometry is the env's: the car's centre pixel is the ego red in its BEV
    c, r = np.round(to_pixels(np.array([[ego.x, ego.y]]), pose, size)[0]).astype(int)
    assert tuple(bev[r, c]) == (220, 40, 40)
    # every planned position in view now has the plan colour, which the BEV never used
    pts = np.round(to_pixels(plan.chosen.xy[1:], pose, size)).astype(int)
    inside = [(u_, v) for u_, v in pts.tolist() if 4 <= u_ < size - 4 and 4 <= v < size - 4]
    assert len(inside) >= 10  # the car is moving: the plan reaches well ahead
    assert all(tuple(drawn[v, u_]) == PLAN for u_, v in inside)
    assert not any(tuple(bev[v, u_]) == PLAN for u_, v in inside)
    # the pedestrian's predicted footprint is tinted towards the occupancy colour, most now
    occ = plan.occupancy
    now = np.round(to_pixels(occ.centres[0, 0, 1:2], pose, size)[0]).astype(int)
    later = np.round(to_pixels(occ.centres[-1, 0, 1:2], pose, size)[0]).astype(int)
    assert math.dist(now, later) > 5  # it walks: its footprint moves over the horizon

    def pull(px) -> float:
        """How much nearer the occupancy colour the pixel got (RGB distance)."""
        before, after = bev[px[1], px[0]].astype(float), drawn[px[1], px[0]].astype(float)
        target = np.array(OCCUPANCY, float)
        return np.linalg.norm(before - target) - np.linalg.norm(after - target)

    assert pull(now) > 30.0
    assert pull(now) > pull(later) > 0.0  # fading with time


def test_only_the_bev_panel_of_a_planning_agent_changes():
    env, agent = _planned_env()
    try:
        panels = env.unwrapped.sensor_panels()
        titles = [t for t, _ in with_plan(panels, agent, env)]
        assert titles[-1] == "BEV + plan" and titles[:-1] == [t for t, _ in panels[:-1]]
        assert with_plan(panels, object(), env) is panels  # an RL agent: nothing to draw
    finally:
        env.close()


def test_watch_modular_writes_a_video(tmp_path, capsys):
    out = tmp_path / "watch.gif"
    code = main(["watch", "modular", "--env", INTERSECTION, "--out", str(out), "--max-steps", "3"])
    assert code == 0 and out.stat().st_size > 10_000
    said = capsys.readouterr().out
    assert f"watching modular on {INTERSECTION} (built-in)" in said  # not "step 0"
