"""PPO with the multi-input torso learns lane keeping from camera + lidar + state (slow).

The preset for ``pilot/Driving-LaneKeep-v0`` turns the camera on beside the lidar and the
ego state; the policy then has a Nature CNN for the image and MLPs for the vectors. The
test trains it on a reduced budget and checks route completion on held-out routes.
"""

from __future__ import annotations

import numpy as np
import pytest
from learning_cases import LANEKEEP, lane_keeping, lane_keeping_speed

import pilot.envs  # noqa: F401 - registers the pilot/... ids
from pilot.agents import build_config, env_family
from pilot.agents.common.networks import MultiInputTorso, NatureCNN
from pilot.agents.ppo import PPO
from pilot.envs import make_env


def test_the_driving_preset_feeds_the_camera_to_a_cnn():
    """Every driving id takes the ``driving`` family; LaneKeep's policy sees the camera
    (H x W x 3 uint8) through a Nature CNN and acts on a real observation."""
    from pilot.envs.driving.registration import DRIVING

    assert {env_family(env_id) for env_id in DRIVING} == {"driving"}
    cfg = build_config("ppo", LANEKEEP)
    assert set(cfg.env["sensors"]) == {"camera", "lidar", "state"}
    agent = PPO(LANEKEEP, cfg, seed=0, device="cpu")
    assert isinstance(agent.policy.torso, MultiInputTorso)
    assert isinstance(agent.policy.torso.parts["camera"], NatureCNN)
    env = make_env(LANEKEEP, **cfg.env)
    obs, _ = env.reset(seed=0)
    env.close()
    action = agent.act({k: v[None] for k, v in obs.items()})
    assert action.shape == (1, 2) and np.isfinite(action).all()


# Measured with the preset (64 x 64 camera, 360-ray lidar, ego state) on a reduced budget
# of 24,576 agent steps (24 rollouts of 8 envs x 128 steps), on the 20 held-out routes,
# deterministic actions, one torch thread (`python bench/learning_seeds.py
# driving-lanekeep-ppo`, AMD EPYC, 2 cores; the function is learning_cases.lane_keeping).
# In the world with drag, engine braking and the speed rules, agent seeds 0-9 (0-5 in one
# run, 6-9 in a later one; min and max over all ten, medians per run):
#
# | | min | median 0-5 / 6-9 | max |
# |---|---|---|---|
# | route completion before | 0.071 | 0.076 / 0.074 | 0.077 |
# | route completion after | 0.721 | 1.000 / 1.000 | 1.000 |
# | return before | -7.80 | -7.43 / -7.30 | -6.87 |
# | return after | 3.4 | 12.6 / 10.8 | 17.5 |
# | mean speed after (m/s) | 11.3 | 12.9 / 12.8 | 16.6 |
#
# (Before the second edition of the world, seeds 0-9 completed 0.935-1.000 at 14-18 m/s.)
# The untrained policy leaves the road within ~55 steps. With learning off (lr 0) the
# weights do not move, so "after" is "before". The bars (completion 0.6, return +8) sit
# below the worst seed (the lowest return after, 3.4, is ~+10.5 over the returns before)
# and far above the untrained policy. On this budget the camera policy does not yet hold
# its speed (5 of 10 seeds above the limit for over 40% of the time, the worst 58%);
# holding the speed is tested on the state-only run below.
@pytest.mark.slow
def test_ppo_learns_lane_keeping_from_camera_lidar_and_state():
    assert set(build_config("ppo", LANEKEEP).env["sensors"]) == {"camera", "lidar", "state"}
    out = lane_keeping(seed=0)
    assert out["before"] <= 0.2
    assert out["after"] >= 0.6
    assert out["after_return"] >= out["before_return"] + 8.0


# PPO on the ego state alone, trained through `pilot train` (its preset, 81,920 steps, one
# torch thread), then driven from the saved checkpoint on the 20 held-out routes
# (learning_cases.lane_keeping_speed; `python bench/learning_seeds.py
# driving-lanekeep-speed-cli --seeds 0-9`, AMD EPYC, 2 cores shared with other work).
# Target 10 m/s, limit 15 m/s; agent seeds 0-9:
#
# | | min | median | max |
# |---|---|---|---|
# | route completion | 1.000 | 1.000 | 1.000 |
# | mean speed (m/s) | 10.45 | 10.92 | 11.42 |
# | time above the limit | 0 | 0 | 0 |
#
# Seed 0 (this test) drove 11.27 m/s. On 49,152 steps the speeds were 10.8-11.7 (four seeds
# past +15%); without the `speed_change` shaping 14.5-18 m/s (one pedal for every state).
# With learning off (lr 0) the car leaves the road: completion 0.08.
@pytest.mark.slow
def test_ppo_trained_through_the_cli_holds_the_target_speed():
    out = lane_keeping_speed(seed=0)
    assert out["completion"] >= 0.9
    assert out["speed"] == pytest.approx(10.0, rel=0.15)  # the bar: ±15%
    assert out["speeding"] < 0.05  # share of the time above the limit
